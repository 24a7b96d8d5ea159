"""What every video network of this project checks and does to its input before computing.

Inputs that would give silently wrong outputs are refused with a message saying what is
wrong (shape, empty batch, integer type, NaN/Inf, 0-255 range).
"""
import torch

from memdeblur.utils.naming import listed, non_finite_entries

# Inputs are refused outside this range: [0, 1] with room for overshooting augmentations or resampling.
INPUT_RANGE = (-0.5, 1.5)


def check_input_frames(lqs, name):
    """Refuse what would give silently wrong outputs: not (B, T, 3, H, W), empty, integer, non-finite
    or far outside [0, 1] (the usual cause: 0-255 values). ``name`` is the network, for messages."""
    if lqs.dim() != 5 or lqs.shape[2] != 3:
        raise ValueError(f'{name} expects (B, T, 3, H, W) frames, got shape {tuple(lqs.shape)}.')
    if lqs.shape[0] == 0 or lqs.shape[1] == 0:
        raise ValueError(f'{name} got an empty batch: shape {tuple(lqs.shape)} (B and T must be at least 1).')
    if not lqs.is_floating_point():
        raise TypeError(f'{name} expects floating-point frames in [0, 1], got {lqs.dtype}: convert with '
                        '`frames.float() / 255` (8-bit) or `/ 65535` (16-bit).')
    if lqs.device.type == 'meta':  # shapes only (complexity counting): there are no values to check
        return
    frames = [f'(batch {b}, frame {t})' for b in range(lqs.shape[0]) for t in range(lqs.shape[1])]
    bad = non_finite_entries(lqs.flatten(0, 1), frames)
    if bad:
        raise ValueError(f'{name} got non-finite (NaN or Inf) input frames: {listed(bad)}.')
    low, high = (v.item() for v in torch.aminmax(lqs.detach()))
    if low < INPUT_RANGE[0] or high > INPUT_RANGE[1]:
        hint = ' (0-255 values? divide by 255)' if high > 2 else ''
        raise ValueError(f'{name} expects frames in [0, 1], got values in [{low:.3g}, {high:.3g}]{hint}.')

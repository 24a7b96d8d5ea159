"""Frames as the ``Restorer`` takes and gives them: numpy (H, W, 3) or tensors (3, H, W), uint8 or uint16 as read
and written, float32 in [0, 1] as the networks take them; each frame copied as it is taken (``owned_frame``).

The video tool keeps frames waiting in a window as integers (a quarter or a half of their float32 size) and
converts a frame only when the network reads it; 16-bit frames (and 10-bit video) keep their depth.
"""
import numpy as np
import torch

from memdeblur.utils.errors import DataError

FRAME_TYPES = (torch.uint8, torch.uint16, torch.float32)


def to_float_frames(frames):
    """uint8 or uint16 (..., 3, H, W) -> float32 in [0, 1]."""
    return frames.float().div_(torch.iinfo(frames.dtype).max)


def to_integer_frames(restored, dtype=torch.uint8):
    """float (..., 3, H, W) in [0, 1] -> ``dtype`` (uint8 or uint16), rounded to the nearest level."""
    return restored.mul(torch.iinfo(dtype).max).round_().to(dtype)


def prepend(first, rest):
    """``first``, then the items of ``rest``."""
    yield first
    yield from rest


def owned_frame(frame, index):
    """A frame as a (3, H, W) CPU tensor of its own memory: a copy, since the caller may reuse its buffer for the
    next frame (OpenCV's ``cap.read(frame)``) or change it after handing it over, while a window holds frames
    past the call that gave them. Any strides are taken (``frame[..., ::-1]``, crops, ``permute``d tensors).

    Raises:
        DataError: naming frame ``index`` and what frames must be: numpy (H, W, 3) uint8/uint16, or tensors
            (3, H, W) uint8/uint16, or float32 with finite values in [0, 1].
    """
    if isinstance(frame, np.ndarray):
        if frame.dtype not in (np.uint8, np.uint16) or frame.ndim != 3 or frame.shape[2] != 3:
            raise DataError(f'frame {index}: numpy frames are (H, W, 3) uint8 or uint16, got {frame.shape} '
                            f'{frame.dtype}.')
        return torch.from_numpy(np.array(frame, order='C')).permute(2, 0, 1)
    if not torch.is_tensor(frame) or frame.dtype not in FRAME_TYPES or frame.ndim != 3 or frame.shape[0] != 3:
        shown = f'{tuple(frame.shape)} {frame.dtype}' if torch.is_tensor(frame) else type(frame).__name__
        raise DataError(f'frame {index}: tensors are (3, H, W) uint8, uint16 or float32 in [0, 1], got {shown}.')
    owned = frame.detach().to('cpu', copy=True)
    if owned.is_floating_point():
        low, high = torch.aminmax(owned) if owned.numel() else (torch.tensor(0.), torch.tensor(0.))
        if not (torch.isfinite(low) and torch.isfinite(high) and 0 <= low and high <= 1):
            raise DataError(f'frame {index}: float32 frames hold values in [0, 1], got values from {low.item():g} '
                            f'to {high.item():g} (scale 8-bit frames by 1/255, clamp, or give uint8).')
    return owned


def checked_frame(frame, index, first):
    """``owned_frame`` of ``frame``, which must have the shape and type of the sequence's ``first`` frame tensor."""
    tensor = owned_frame(frame, index)
    if tensor.shape != first.shape or tensor.dtype != first.dtype:
        raise DataError(f'frame {index} is {tuple(tensor.shape[-2:])} (height, width) {tensor.dtype}, the first '
                        f'frame {tuple(first.shape[-2:])} {first.dtype}: a sequence has one frame size and type.')
    return tensor


def numpy_layout(frame):
    """A (3, H, W) tensor as the (H, W, 3) numpy frame callers who gave numpy frames get back."""
    return frame.permute(1, 2, 0).numpy()


def tensor_layout(frame):
    """A (3, H, W) tensor as callers who gave tensors get it back: as it is."""
    return frame

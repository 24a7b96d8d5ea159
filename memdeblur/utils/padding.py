"""Padding in time and space for networks that cannot restore every frame or every frame size.

* In time: ESTRNN outputs no frame for the first ``past`` and last ``future`` frames of its input,
  a sliding-window network (EDVR) needs ``N // 2`` neighbours on each side. Sequences are
  extended by reflection about their end frames (``reflect_indices``), as ESTRNN's and EDVR's
  test code pad, so every frame gets an output.
* In space: some networks need sides that are multiples of a number (EDVR with ``hr_in``: 16) or
  at least a size (BasicVSR++ on full-resolution input: 256, since its flow network runs at 1/4), as their
  traits declare (``memdeblur.networks.traits.NetworkTraits.padding``).
  Frames are reflect-padded at the bottom and right (replicated where the image is too small to
  reflect) and the output cropped back (``SpatialPadding``).
"""
from dataclasses import dataclass

import torch.nn.functional as F


def round_up(value, multiple):
    """Smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-value // multiple) * multiple


def reflect_indices(num_frames, before, after):
    """Frame indices of a sequence extended by ``before``/``after`` frames reflected about its ends.

    ``reflect_indices(5, 2, 2) == [2, 1, 0, 1, 2, 3, 4, 3, 2]``; indices are clamped for sequences
    too short to reflect.
    """
    last = num_frames - 1
    indices = []
    for i in range(-before, num_frames + after):
        if i < 0:
            i = -i
        elif i > last:
            i = 2 * last - i
        indices.append(min(max(i, 0), last))
    return indices


@dataclass(frozen=True)
class SpatialPadding:
    """Pad (..., H, W) frames to sides that are multiples of ``multiple`` and at least ``min_size``.

    Attributes:
        multiple (int): Sides become multiples of this. Default: 1.
        min_size (int | tuple[int, int]): Sides become at least this (one value for both, or height and width).
            Default: 0.
    """

    multiple: int = 1
    min_size: int = 0

    def target(self, height, width):
        """The padded (height, width)."""
        lowest = self.min_size if isinstance(self.min_size, tuple) else (self.min_size, self.min_size)
        return tuple(round_up(max(side, low), self.multiple) for side, low in zip((height, width), lowest))

    def pad(self, frames):
        """(..., C, H, W) frames padded at the bottom and right."""
        h, w = frames.shape[-2:]
        target_h, target_w = self.target(h, w)
        if (target_h, target_w) == (h, w):
            return frames
        flat = frames.reshape(-1, *frames.shape[-3:])
        pad = (0, target_w - w, 0, target_h - h)
        mode = 'reflect' if target_h - h < h and target_w - w < w else 'replicate'
        return F.pad(flat, pad, mode=mode).view(*frames.shape[:-2], target_h, target_w)

    def run(self, net, frames, **kwargs):
        """``net(frames)`` on padded frames, every output (a tensor or a list of them) cropped back."""
        h, w = frames.shape[-2:]
        outputs = net(self.pad(frames), **kwargs)
        if isinstance(outputs, (list, tuple)):
            return [o[..., :h, :w] for o in outputs]
        return outputs[..., :h, :w]

"""Frames as tensors: uint8 or uint16 (..., 3, H, W) as read and written, float32 in [0, 1] as the networks take
them.

The video tool keeps frames waiting in a window as integers (a quarter or a half of their float32 size) and
converts a frame only when the network reads it; 16-bit frames (and 10-bit video) keep their depth.
"""
import torch


def to_float_frames(frames):
    """uint8 or uint16 (..., 3, H, W) -> float32 in [0, 1]."""
    return frames.float().div_(torch.iinfo(frames.dtype).max)


def to_integer_frames(restored, dtype=torch.uint8):
    """float (..., 3, H, W) in [0, 1] -> ``dtype`` (uint8 or uint16), rounded to the nearest level."""
    return restored.mul(torch.iinfo(dtype).max).round_().to(dtype)

"""Frames as tensors: uint8 (..., 3, H, W) as read and written, float32 in [0, 1] as the networks take them.

The video tool keeps frames waiting in a window as uint8 (a quarter of their float32 size) and converts a
frame only when the network reads it.
"""
import torch


def to_float_frames(frames):
    """uint8 (..., 3, H, W) -> float32 in [0, 1]."""
    return frames.float().div_(255)


def to_uint8_frames(restored):
    """float (..., 3, H, W) in [0, 1] -> uint8, rounded to the nearest level."""
    return restored.mul(255).round_().to(torch.uint8)

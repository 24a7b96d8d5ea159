"""Deblurring videos of any length and size: streaming I/O, windows in time, tiles in space, a fast path."""

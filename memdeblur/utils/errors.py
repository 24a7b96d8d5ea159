"""Exceptions for bad data; every message names the file, sequence or frame concerned."""


class DataError(ValueError):
    """Bad or inconsistent data set: missing, mismatched or mistyped frames, folders or keys."""


class FrameError(DataError):
    """A single frame that is missing, unreadable or in a format we refuse."""

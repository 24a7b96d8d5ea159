"""Saving checkpoints and training states so that a reader sees the old file or the complete new one.

A process killed while ``torch.save`` writes in place leaves a truncated checkpoint or training
state behind, and ``--auto_resume`` then dies on it. ``memdeblur.utils.outputs.atomic_file``
writes a temporary sibling and renames it over the target (atomic on POSIX and Windows).
"""
import os

import torch

from memdeblur.utils.outputs import atomic_file


def atomic_torch_save(obj, path):
    """``torch.save(obj, path)`` through a temporary sibling file, flushed to disk, then renamed over ``path``.

    Errors propagate (unlike BasicSR's saves, which log and carry on without the file).
    """
    with atomic_file(path) as tmp, open(tmp, 'wb') as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())

"""Writing files so that a reader sees the old file or the complete new one, never a partial one.

A process killed while ``torch.save`` writes in place leaves a truncated checkpoint or training
state behind, and ``--auto_resume`` then dies on it. Writing to a temporary file in the same
folder and renaming it over the target (atomic on POSIX and Windows) closes that window.
"""
import os
import os.path as osp
import tempfile

import torch


def _current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_torch_save(obj, path):
    """``torch.save(obj, path)`` through a temporary sibling file, flushed to disk, then renamed over ``path``.

    Errors propagate (unlike BasicSR's saves, which log and carry on without the file).
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.partial', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp's 0600 would hide the file from others
        os.replace(tmp_path, path)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise

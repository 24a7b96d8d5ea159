"""Keep freed memory in the process, so that every new feature map does not fault its pages in anew.

PyTorch takes CPU tensors from ``malloc``. With glibc's defaults, blocks above a threshold
(128 KiB, rising by itself up to 32 MiB) are mapped from the system and unmapped when freed,
and free memory at the top of the heap is given back beyond a trimming threshold. A video network
allocates and frees the same large feature maps for every frame, so their pages are faulted in
and zeroed by the kernel again and again: the released MemDeblur on 256x256 frames took about
19,000 minor page faults per frame (~75 MB zeroed, 15% of the fast path's time), and how many
depended on the order of earlier allocations, which made timings drift between runs.

Intel's CPU tuning guide for PyTorch preloads jemalloc or tcmalloc for this. glibc's own
``mallopt`` does the same without a preloaded library: blocks up to 32 MiB (glibc's ceiling)
come from the heap, and up to ``TRIM_THRESHOLD`` of free heap is kept for the next frame. The
process's peak memory does not grow (the same blocks are reused), but freed memory stays with the
process until it exits. It is a setting of the whole process, part of the fast path's entry points
on a CPU: ``tools/deblur_video.py`` (unless ``--plain``) and the models' ``val.fast``
(``tools/test.py``); ``inference_runner`` leaves it to its callers. A process that runs one
model after another gives the freed memory back between them (``release_freed_memory``), so that each model's peak
is its own (``tools/compare.py``).
"""
import ctypes
import platform
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024**2  # the largest glibc accepts on 64-bit systems
TRIM_THRESHOLD = 1024**3


def _glibc():
    """glibc, or None where the C library is another."""
    if not sys.platform.startswith('linux') or platform.libc_ver()[0] != 'glibc':
        return None
    return ctypes.CDLL(None)


def retain_freed_memory():
    """Make glibc's malloc reuse freed blocks up to 32 MiB instead of returning them to the system.

    Returns:
        bool: True when the settings were applied; False where the C library is not glibc (its
        allocator is left as it is).
    """
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def release_freed_memory():
    """Give the free memory glibc's heap keeps back to the system (``malloc_trim``). Returns whether it ran."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True

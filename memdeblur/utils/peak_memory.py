"""The peak memory of this process, measured so that child processes, and each of several runs in one process,
report their own.

``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is inherited across fork and exec on Linux: a
freshly started child reports at least its parent's peak. ``VmHWM`` in ``/proc/self/status``
is the high-water mark of the process's own address space, so benchmarks and tests that run
each measurement in a fresh process use it (``ru_maxrss`` where /proc is missing). Linux resets it to the current
resident size when ``5`` is written to ``/proc/self/clear_refs`` (``reset_peak_memory``), so that models evaluated one
after another in one process (``tools/compare.py``) each report the peak of their own run.
"""
import resource

import torch


def peak_rss_mib():
    """Peak resident memory of this process in MiB."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_mib(device):
    """(MiB, what it measures) of this process's peak memory so far: CUDA allocations on a GPU, resident memory
    on a CPU."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20, 'CUDA, allocated'
    return peak_rss_mib(), 'process peak resident memory'


def reset_peak_memory(device):
    """Start measuring the peak anew: CUDA's allocation peak on a GPU, the resident peak on a CPU (Linux; elsewhere
    the peak stays the process's). Returns whether it was reset."""
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False

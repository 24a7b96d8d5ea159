"""The peak resident memory of this process, measured so that child processes report their own.

``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is inherited across fork and exec on Linux: a
freshly started child reports at least its parent's peak. ``VmHWM`` in ``/proc/self/status``
is the high-water mark of the process's own address space, so benchmarks and tests that run
each measurement in a fresh process use it (``ru_maxrss`` where /proc is missing).
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


def peak_memory(device):
    """``peak_memory_mib`` as text, e.g. ``2031 MiB (process peak resident memory)``."""
    mib, kind = peak_memory_mib(device)
    return f'{mib:.0f} MiB ({kind})'

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


def peak_memory(device):
    """Peak memory of this process so far, as text: CUDA allocations on a GPU, resident memory on a CPU."""
    if device.type == 'cuda':
        return f'{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB (CUDA, allocated)'
    return f'{peak_rss_mib():.0f} MiB (process peak resident memory)'

"""Wall-clock time of work that may run on a GPU, where calls return before the work is done."""
import contextlib
import time
from types import SimpleNamespace

import torch


@contextlib.contextmanager
def timed(device):
    """Time the block on ``device``: CUDA work queued before it is finished first and the block's own is waited for.
    Yields an object whose ``seconds`` is set when the block ends."""
    clock = SimpleNamespace(seconds=None)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    yield clock
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    clock.seconds = time.perf_counter() - start

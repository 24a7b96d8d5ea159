"""Whole-sequence restoration in bounded memory: exact restoration, and whole windows in less memory.

Windowed restoration (``memdeblur.runtime.windows``) bounds memory by giving each window its own
recurrent passes, so its outputs differ slightly from processing the whole video at once (by how much:
``docs/benchmarks.md``). A network whose whole-sequence result needs a backward pass over every frame before the
first forward step keeps the per-frame results of all T frames in memory in its ``forward``, so its memory grows
with T.

``restore_exact`` runs the same computation for any network that speaks the whole-sequence protocol
(``restore_frames``, ``memdeblur.networks.frame_storage``) with its per-frame sequences placed so that memory
stays bounded:

* mapped sequences (prepared frames, encoder features) are recomputed when needed (``RecomputedFrames``), the
  last two kept;
* the sequences the network writes and reads back (backward states, coarser outputs) go to files in a scratch
  folder (``FileFrames``), read back with ``pread``, so they occupy neither the heap nor, as a memory map would,
  the process's resident set;
* the restored frames are handed to ``sink`` frame by frame, in order.

Memory is then that of a few frames plus whatever the network keeps itself; the price is disk space (the written
sequences, plus the decoded input the tool keeps) and the recomputed mapped items. The network's ``restore_frames``
docstring says what that is for it. The outputs equal ``forward``'s on the same device and precision (tested bit
for bit on CPU).

``whole_window_restorer`` applies the same placement to one window of the video tool, with the
written sequences in memory instead of files: a window's result as ``forward`` computes it, in less memory.
"""
import os
import os.path as osp
from collections import OrderedDict

import numpy as np
import torch

from memdeblur.utils.errors import DataError
from memdeblur.runtime.frames import to_float_frames, to_integer_frames
from memdeblur.networks.traits import bare_network, network_traits


class FileFrames:
    """A fixed-length sequence of same-shaped tensors stored in one file, one record per frame.

    Args:
        path (str): File to create (removed by ``close``).
        length (int): Number of frames.
        device (torch.device): Where items are returned.
        on_write (callable | None): Called after each write (progress).
    """

    def __init__(self, path, length, device, on_write=None):
        self.path, self.length, self.device, self.on_write = path, length, device, on_write
        self.shape = self.dtype = None
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.last = (None, None)  # (index, tensor): the backward pass reads what it just wrote

    def __len__(self):
        return self.length

    def append(self, tensor):
        """Add a frame at the end (for sequences whose length is known only once read)."""
        self.length += 1
        self[self.length - 1] = tensor

    def __setitem__(self, index, tensor):
        array = tensor.detach().cpu().contiguous().numpy()
        if self.shape is None:
            self.shape, self.dtype = array.shape, array.dtype
        elif array.shape != self.shape or array.dtype != self.dtype:
            raise ValueError(f'{self.path}: frame {index} is {array.shape} {array.dtype}, '
                             f'the others {self.shape} {self.dtype}.')
        data = array.tobytes()
        written = os.pwrite(self.fd, data, index * len(data))
        if written != len(data):
            raise OSError(f'{self.path}: wrote {written} of {len(data)} bytes (disk full?).')
        self.last = (index, tensor)
        if self.on_write:
            self.on_write()

    def __getitem__(self, index):
        if not 0 <= index < self.length:
            raise IndexError(index)
        if self.last[0] == index:
            return self.last[1]
        size = int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize
        data = os.pread(self.fd, size, index * size)
        if len(data) != size:
            raise IndexError(f'{self.path}: frame {index} was never written.')
        return torch.from_numpy(np.frombuffer(data, self.dtype).reshape(self.shape).copy()).to(self.device)

    def __iter__(self):
        return (self[i] for i in range(self.length))

    def close(self):
        os.close(self.fd)
        os.remove(self.path)


class RecomputedFrames:
    """``fn(items[i])`` computed on access; the last ``keep`` results are kept, older ones recomputed."""

    def __init__(self, fn, items, keep=2):
        self.fn, self.items, self.keep = fn, items, keep
        self.cache = OrderedDict()

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index not in self.cache:
            self.cache[index] = self.fn(self.items[index])
            while len(self.cache) > self.keep:
                self.cache.popitem(last=False)
        return self.cache[index]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class SinkFrames:
    """The restored frames: each one handed to ``sink(index, tensor)`` as it is written, in order."""

    def __init__(self, sink, length, on_write=None):
        self.sink, self.length, self.on_write, self.next = sink, length, on_write, 0

    def __len__(self):
        return self.length

    def __setitem__(self, index, tensor):
        if index != self.next:
            raise RuntimeError(f'final outputs must arrive in order: got frame {index}, expected {self.next}.')
        self.sink(index, tensor)
        self.next += 1
        if self.on_write:
            self.on_write()


class ScratchStorage:
    """The storage of the whole-sequence protocol (``memdeblur.networks.frame_storage``): mapped items recomputed,
    outputs handed to a sink, and the other per-frame sequences in files in ``folder`` (or, with ``folder=None``,
    lists in memory)."""

    def __init__(self, folder, device, sink, on_write=None):
        self.folder, self.device, self.sink, self.on_write = folder, device, sink, on_write
        self.files = []

    def outputs(self, length):
        return SinkFrames(self.sink, length, self.on_write)

    def frames(self, name, length):
        if self.folder is None:
            return [None] * length
        self.files.append(FileFrames(osp.join(self.folder, f'{name}.bin'), length, self.device, self.on_write))
        return self.files[-1]

    @staticmethod
    def mapped(name, fn, items):
        return RecomputedFrames(fn, items)

    def close(self):
        for store in self.files:
            store.close()
        self.files = []


def check_exact_supported(net):
    """The network inside ``net``'s wrappers; DataError unless it declares whole-sequence passes (``network_traits``:
    ``restore_frames``)."""
    module = bare_network(net)
    if not network_traits(module).whole_sequence_passes:
        raise DataError(f'exact whole-sequence restoration needs a network with whole-sequence passes '
                        f'(restore_frames); {type(module).__name__} is restored in windows.')
    return module


def restore_exact(net, frames, sink, scratch, device, on_write=None):
    """Restore a whole sequence exactly as ``net(frames)`` would, in bounded memory.

    Args:
        net (nn.Module): A network with whole-sequence passes, in eval mode, on ``device`` (possibly prepared by
            ``prepare_fast``).
        frames (Sequence[Tensor]): T frames (3, H, W) in [0, 1], any device, read on access.
        sink (callable): ``sink(index, frame)`` receives restored (3, H, W) frames in order,
            on the CPU, clamped to [0, 1].
        scratch (str | None): Existing folder for the scratch files (removed afterwards); None keeps
            the sequences the network writes (``storage.frames``) in memory (``whole_window_restorer``).
        device (torch.device): Where the network runs.
        on_write (callable | None): Called after each per-frame result (progress: the network's
            ``whole_sequence_passes`` per frame).
    """
    net = check_exact_supported(net)
    batched = RecomputedFrames(lambda frame: frame.to(device).unsqueeze(0), frames)

    def finish(index, output):
        sink(index, output[0].float().clamp(0, 1).cpu())

    storage = ScratchStorage(scratch, device, finish, on_write)
    try:
        net.restore_frames(batched, storage)
    finally:
        storage.close()


def whole_window_restorer(net, context, device):
    """A function restoring an integer window (T, 3, H, W; uint8 or uint16) to the same type, as
    ``net(whole window)`` does, in less memory.

    A network's ``forward`` holds every frame's per-frame results at once. Here ``restore_exact`` keeps only the
    sequences the network writes (``storage.frames``) in memory, recomputes the mapped ones, and converts each output
    to the window's type as it comes: less memory (``docs/benchmarks.md``), the results equal to ``forward``'s (bit
    for bit on the CPU), at the price of the recomputed items.

    Args:
        net (nn.Module): A network with whole-sequence passes, in eval mode on ``device`` (possibly from
            ``prepare_fast``; not compiled: ``restore_frames`` would bypass the compiled forward).
        context (callable): Context manager factory for the calls (``inference_runner``'s).
        device (torch.device): Where the network runs.
    """
    net = check_exact_supported(net)

    def restore(window):
        restored = torch.empty_like(window)

        def keep(index, frame):
            restored[index] = to_integer_frames(frame, window.dtype)

        with context():
            restore_exact(net, RecomputedFrames(to_float_frames, window), keep, None, device)
        return restored

    return restore

"""The whole-sequence protocol: a network restores a sequence frame by frame and asks a storage where to keep
every per-frame sequence it makes, so that the caller decides what lives in memory.

A network that speaks it defines ``restore_frames(frames, storage)`` and declares ``whole_sequence_passes`` in its
traits (``memdeblur.networks.traits``): how many per-frame results it writes to ``storage.frames`` and
``storage.outputs`` sequences per frame (a progress count). ``frames`` is a sequence of T blurry (B, 3, H, W)
frames in [0, 1] (``len`` and indexing; it may read from disk on access). ``storage`` provides

* ``frames(name, length)``: a writable sequence for per-frame results the network reads back later (a backward
  pass's states, a coarser scale's outputs);
* ``mapped(name, fn, items)``: ``fn`` applied to each item, on access or at once (frames prepared, features);
* ``outputs(length)``: the restored frames, written in order 0..T-1, final: (B, 3, H, W) in the input's range,
  not clamped. A network whose internal outputs need a last step hands ``FinishedOutputs`` on.

``InMemoryFrames`` keeps everything in lists, as a network's ``forward`` does; ``memdeblur.runtime.exact`` keeps
the sequences in files, recomputes mapped items and hands outputs on as they come: the same result in bounded
memory.
"""


class InMemoryFrames:
    """Every per-frame sequence a plain list (a network's ``forward``)."""

    @staticmethod
    def frames(name, length):
        return [None] * length

    @staticmethod
    def mapped(name, fn, items):
        return [fn(item) for item in items]

    @staticmethod
    def outputs(length):
        return [None] * length


class FinishedOutputs:
    """``storage`` with each output passed through ``finish`` before it is written (e.g. a centring offset added
    back and the padding cropped)."""

    def __init__(self, storage, finish):
        self.storage, self.finish = storage, finish

    def frames(self, name, length):
        return self.storage.frames(name, length)

    def mapped(self, name, fn, items):
        return self.storage.mapped(name, fn, items)

    def outputs(self, length):
        return _Finishing(self.storage.outputs(length), self.finish)


class _Finishing:
    """A writable sequence that stores ``finish(value)`` for every value written to it."""

    def __init__(self, target, finish):
        self.target, self.finish = target, finish

    def __len__(self):
        return len(self.target)

    def __setitem__(self, index, value):
        self.target[index] = self.finish(value)

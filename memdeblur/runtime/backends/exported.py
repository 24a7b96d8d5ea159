"""An exported model (``memdeblur.export``) as a clip model, whichever runtime runs its graph.

An export holds its network traced for a fixed number of frames and for frame sides that are multiples of its
``size_multiple`` and at least its traced size, or for its traced size only (``dynamic_size`` false; see
``memdeblur.export.onnx_export``: what a trace keeps constant). ``ExportedModel`` takes any clip of at most that many
frames: frames are padded at the bottom and right to the sizes the file takes (as ``SpatialPadding`` pads for PyTorch
networks) and the output cropped back; a clip of fewer frames (a sequence shorter than the export's window) is
extended by reflecting its end frames, and only its own frames' outputs are kept. The runtime itself is a session
factory of its backend module (``onnxruntime_backend``, ``openvino_backend``), which runs the model as
``load_export`` read and checked it, not the file read again.
"""
import numpy as np
import torch

from memdeblur.runtime.backends.base import ClipModel
from memdeblur.runtime.backends.export_file import VerifiedExport, load_export
from memdeblur.utils.errors import DataError
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.padding import SpatialPadding, reflect_indices
from memdeblur.utils.threads import process_governor


class ExportedModel(ClipModel):
    """An exported model run by one runtime.

    Args:
        export (str | VerifiedExport): The ``.onnx`` file, read and checked here, or as ``load_export`` read it.
        backend (str): The backend's name.
        make_session (callable): (export, precision, device, threads) -> a function running (1, T, 3, H, W) float32
            arrays; ``threads`` is the CPU thread count (None: the runtime's choice, and on a GPU).
        device (torch.device): Where it runs.
        precision (str): The precision the runtime computes in.
        adapts_threads (bool): Whether sessions of other thread counts may be made while a run goes on (the run's
            governor, ``memdeblur.utils.threads``, changes its count with the machine's load); OpenVINO keeps the count
            of its first session (compiled models of several counts in one process crashed its CPU plugin, seen here).
    """

    def __init__(self, export, backend, make_session, device, precision, adapts_threads=True):
        export = export if isinstance(export, VerifiedExport) else load_export(export)
        info = export.info
        self.backend, self.export, self.info = backend, export, info
        super().__init__(device, precision, f'{info["network"]}, {backend}', [export.path])
        self.path, self.frames = export.path, info['frames']
        self.margins = tuple(info['frame_margins'])
        self.fixed_window = self.frames - sum(self.margins)
        self.padding = SpatialPadding(info['size_multiple'], tuple(info['min_size']))
        self._make_session, self._adapts_threads = make_session, adapts_threads
        self._runs = {}  # thread count (None on a GPU) -> its session's run function
        self._run_with(self._threads())  # made now: a model the runtime cannot run is refused at once

    def _threads(self):
        """The CPU thread count the run's governor chose; None on a GPU."""
        if self.device.type != 'cpu':
            return None
        if self._runs and not self._adapts_threads:
            return next(iter(self._runs))
        return process_governor().threads

    def _run_with(self, threads):
        """The session of ``threads`` threads (runtimes fix their threads when a session is made), made once."""
        if threads not in self._runs:
            self._runs[threads] = self._make_session(self.export, self.precision, self.device, threads)
        return self._runs[threads]

    def restore_clip(self, clip):
        count, (height, width) = clip.shape[0], clip.shape[-2:]
        if count > self.frames:
            raise ValueError(f'{self.path}: exported for {self.frames} frames, given {count}.')
        if count < self.frames:  # a sequence shorter than the export's window
            clip = clip[reflect_indices(count, 0, self.frames - count)]
        if not self.info['dynamic_size'] and self.padding.target(height, width) != tuple(self.info['min_size']):
            size = 'x'.join(map(str, self.info['min_size']))
            raise DataError(f'{self.path} takes frames of {size} only (exported at a size too small for dynamic '
                            f'sizes); restore {height}x{width} frames in tiles of at most that size, or export again '
                            'at a larger size.')
        padded = np.ascontiguousarray(self.padding.pad(clip).unsqueeze(0).numpy(), dtype=np.float32)
        restored = torch.from_numpy(self._run_with(self._threads())(padded))[0, :count - sum(self.margins), :,
                                                                              :height, :width]
        return restored.clamp(0, 1)


def refuse_network_options(export, fast, compile_net):
    """Raise ``OptionError`` for the PyTorch-only ways of running a network asked of an exported model."""
    if compile_net or not fast:
        name = getattr(export, 'path', export)
        raise OptionError(f'{name}: an exported model runs as exported (its fast path built in): no compile, no '
                          'plain network.')

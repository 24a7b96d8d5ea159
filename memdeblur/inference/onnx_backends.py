"""Running an exported model (``tools/export_onnx.py``) in ONNX Runtime or OpenVINO, as a clip restorer of the
``Restorer``.

An export holds its network traced for a fixed number of frames and for frame sides that are multiples of its
``size_multiple`` and at least its traced size, or for its traced size only (``dynamic_size`` false; see
``memdeblur.inference.onnx_export``: what a trace keeps constant).
``ExportedModel`` takes any clip of at most that many frames: frames are padded at the bottom and right to the sizes
the file takes (as ``SpatialPadding`` pads for PyTorch networks) and the output cropped back; a clip of fewer frames
(a sequence shorter than the export's window) is extended by reflecting its end frames, and only its own frames'
outputs are kept.

Backends: ``onnxruntime`` (float32; CPU, or CUDA where its CUDA provider is installed) and ``openvino`` (CPU; float32,
or bfloat16 on CPUs with BF16 instructions, OpenVINO's ``INFERENCE_PRECISION_HINT``). Both are optional
dependencies (``pip install 'memdeblur[onnx]'`` / ``'memdeblur[openvino]'``). Either runs the model as
``memdeblur.inference.onnx_export.load_export`` read and checked it (a file changed after its export is refused),
not the file read again.
"""
import numpy as np
import torch

from memdeblur.utils.errors import DataError
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.optional_imports import require
from memdeblur.utils.padding import SpatialPadding, reflect_indices
from memdeblur.utils.precision import cpu_has_native_bfloat16
from memdeblur.utils.threads import process_governor

BACKENDS = ('onnxruntime', 'openvino')
OPENVINO_PRECISIONS = {'float32': 'f32', 'bfloat16': 'bf16'}


def onnxruntime_session(export, precision, device, threads=None):
    """A function running ``export`` (a ``VerifiedExport``) in ONNX Runtime: (1, T, 3, H, W) float32 array -> its
    output; ``threads``: its intra-op threads on the CPU (None: ONNX Runtime's choice)."""
    path = export.path
    ort = require('onnxruntime', 'onnx', f'run {path} in ONNX Runtime')
    if precision != 'float32':
        raise OptionError(f'{path}: ONNX Runtime runs exported models in float32; for {precision} use the '
                          'openvino backend (CPU) or the PyTorch path.')
    providers = ['CPUExecutionProvider']
    if device.type == 'cuda':
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise OptionError(f'{path}: this ONNX Runtime has no CUDA provider (pip install onnxruntime-gpu), or '
                              'run on the CPU (--device cpu).')
        providers.insert(0, ('CUDAExecutionProvider', {'device_id': device.index or 0}))
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(export.model, options, providers=providers)
    name = session.get_inputs()[0].name
    return lambda clip: session.run(None, {name: clip})[0]


def openvino_session(export, precision, device, threads=None):
    """A function running ``export`` (a ``VerifiedExport``) in OpenVINO on the CPU: (1, T, 3, H, W) float32 array ->
    its output; ``precision`` is OpenVINO's inference precision hint, ``threads`` its ``INFERENCE_NUM_THREADS``
    (None: OpenVINO's choice)."""
    path = export.path
    ov = require('openvino', 'openvino', f'run {path} in OpenVINO')
    if device.type != 'cpu':
        raise OptionError(f'{path}: the openvino backend runs on the CPU here (--device cpu), not {device}.')
    if precision not in OPENVINO_PRECISIONS:
        raise OptionError(f'{path}: OpenVINO runs exported models in float32 or bfloat16 on a CPU, not {precision}.')
    if precision == 'bfloat16' and not cpu_has_native_bfloat16():
        raise OptionError(f'{path}: this CPU has no bfloat16 instructions; OpenVINO would emulate them, slower '
                          'than float32: use --precision float32.')
    core = ov.Core()
    settings = {'INFERENCE_PRECISION_HINT': OPENVINO_PRECISIONS[precision]}
    if threads:
        settings['INFERENCE_NUM_THREADS'] = threads
    compiled = core.compile_model(core.read_model(export.model), 'CPU', settings)
    request = compiled.create_infer_request()
    output = compiled.output(0)

    def run(clip):
        return request.infer({0: clip})[output]

    return run


SESSIONS = {'onnxruntime': onnxruntime_session, 'openvino': openvino_session}


class ExportedModel:
    """An exported model as a clip restorer: (n, 3, H, W) float [0, 1] on the CPU, n <= ``frames``, -> its
    (n - margins, 3, H, W) restored frames, clamped, on the CPU.

    Args:
        model (str | VerifiedExport): The ``.onnx`` file (written by ``tools/export_onnx.py``; its metadata says how to
            feed it), read and checked here, or as ``load_export`` already read and checked it.
        backend (str): ``onnxruntime`` or ``openvino``.
        precision (str): ``float32``; ``bfloat16`` with OpenVINO.
        device (torch.device | str): ``cpu``; ``cuda`` with ONNX Runtime's CUDA provider.
    """

    def __init__(self, model, backend='onnxruntime', precision='float32', device='cpu'):
        if backend not in BACKENDS:
            raise OptionError(f'backend {backend!r}: exported models run in {" or ".join(BACKENDS)}.')
        from memdeblur.inference.onnx_export import VerifiedExport, load_export  # onnx, only for exported models
        export = model if isinstance(model, VerifiedExport) else load_export(model)
        self.path, self.backend = export.path, backend
        self.info = export.info
        self.frames = self.info['frames']
        self.margins = tuple(self.info['frame_margins'])
        self.output_frames = self.frames - sum(self.margins)
        self.padding = SpatialPadding(self.info['size_multiple'], tuple(self.info['min_size']))
        self.label = f'{self.info["network"]}, {backend}'
        self._export, self._precision, self._device = export, precision, torch.device(device)
        self._runs = {}  # thread count (None on a GPU) -> its session's run function
        self._run_with(self._threads())  # made now: a model the backend cannot run is refused at once

    def _threads(self):
        """The CPU thread count the run's governor chose (``memdeblur.utils.threads``); None on a GPU. OpenVINO keeps
        the count its session was made with: compiled models of other thread counts in one process crashed its CPU
        plugin later (a segmentation fault, seen here), so it is not adapted while a run goes on."""
        if self._device.type != 'cpu':
            return None
        if self.backend == 'openvino' and self._runs:
            return next(iter(self._runs))
        return process_governor().threads

    def _run_with(self, threads):
        """The session of ``threads`` threads (backends fix their threads when a session is made), made once."""
        if threads not in self._runs:
            self._runs[threads] = SESSIONS[self.backend](self._export, self._precision, self._device, threads)
        return self._runs[threads]

    def __call__(self, clip):
        count, (height, width) = clip.shape[0], clip.shape[-2:]
        if count > self.frames:
            raise ValueError(f'{self.path}: exported for {self.frames} frames, given {count}.')
        if count < self.frames:  # a sequence shorter than the export's window
            clip = clip[reflect_indices(count, 0, self.frames - count)]
        if not self.info['dynamic_size'] and self.padding.target(height, width) != tuple(self.info['min_size']):
            size = 'x'.join(map(str, self.info['min_size']))
            raise DataError(f'{self.path} takes frames of {size} only (exported at a size too small for dynamic '
                            f'sizes); restore {height}x{width} frames in tiles of at most that size, or export again '
                            'at a larger --size.')
        padded = np.ascontiguousarray(self.padding.pad(clip).unsqueeze(0).numpy(), dtype=np.float32)
        restored = torch.from_numpy(self._run_with(self._threads())(padded))[0, :count - sum(self.margins), :,
                                                                              :height, :width]
        return restored.clamp(0, 1)

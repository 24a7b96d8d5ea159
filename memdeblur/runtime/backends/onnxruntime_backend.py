"""The ONNX Runtime backend: exported models in float32, on the CPU, or on a GPU through ONNX Runtime's CUDA provider
where it is installed (``pip install 'memdeblur[onnx]'``, ``onnxruntime-gpu``)."""
import torch

from memdeblur.runtime.backends.exported import ExportedModel, refuse_network_options
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.optional_imports import require


def onnxruntime_session(export, precision, device, threads=None):
    """A function running ``export`` (a ``VerifiedExport``) in ONNX Runtime: (1, T, 3, H, W) float32 array -> its
    output; ``threads``: its intra-op threads on the CPU (None: ONNX Runtime's choice)."""
    path = export.path
    ort = require('onnxruntime', 'onnx', f'run {path} in ONNX Runtime')
    if precision != 'float32':
        raise OptionError(f'{path}: ONNX Runtime runs exported models in float32; for {precision} use the openvino '
                          'backend (CPU) or the PyTorch network.')
    providers = ['CPUExecutionProvider']
    if device.type == 'cuda':
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise OptionError(f'{path}: this ONNX Runtime has no CUDA provider (pip install onnxruntime-gpu), or run '
                              'on the CPU.')
        providers.insert(0, ('CUDAExecutionProvider', {'device_id': device.index or 0}))
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(export.model, options, providers=providers)
    name = session.get_inputs()[0].name
    return lambda clip: session.run(None, {name: clip})[0]


def open_export(export, device, precision, fast=True, compile_net=False):
    """The backend's opener (``memdeblur.runtime.backends.BACKENDS``)."""
    refuse_network_options(export, fast, compile_net)
    return ExportedModel(export, 'onnxruntime', onnxruntime_session, torch.device(device), precision)

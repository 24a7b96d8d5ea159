"""The OpenVINO backend: exported models on the CPU, in float32, or in bfloat16 on CPUs with BF16 instructions
(OpenVINO's ``INFERENCE_PRECISION_HINT``; ``pip install 'memdeblur[openvino]'``)."""
import torch

from memdeblur.runtime.backends.exported import ExportedModel, refuse_network_options
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.optional_imports import require
from memdeblur.utils.precision import cpu_has_native_bfloat16

OPENVINO_PRECISIONS = {'float32': 'f32', 'bfloat16': 'bf16'}


def openvino_session(export, precision, device, threads=None):
    """A function running ``export`` (a ``VerifiedExport``) in OpenVINO on the CPU: (1, T, 3, H, W) float32 array ->
    its output; ``precision`` is OpenVINO's inference precision hint, ``threads`` its ``INFERENCE_NUM_THREADS``
    (None: OpenVINO's choice)."""
    path = export.path
    ov = require('openvino', 'openvino', f'run {path} in OpenVINO')
    if device.type != 'cpu':
        raise OptionError(f'{path}: the openvino backend runs on the CPU here, not {device}.')
    if precision not in OPENVINO_PRECISIONS:
        raise OptionError(f'{path}: OpenVINO runs exported models in float32 or bfloat16 on a CPU, not {precision}.')
    if precision == 'bfloat16' and not cpu_has_native_bfloat16():
        raise OptionError(f'{path}: this CPU has no bfloat16 instructions; OpenVINO would emulate them, slower than '
                          'float32: run in float32.')
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


def open_export(export, device, precision, fast=True, compile_net=False):
    """The backend's opener (``memdeblur.runtime.backends.BACKENDS``); OpenVINO keeps its first session's threads."""
    refuse_network_options(export, fast, compile_net)
    return ExportedModel(export, 'openvino', openvino_session, torch.device(device), precision, adapts_threads=False)

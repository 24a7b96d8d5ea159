"""A network ready for inference: its fast copy (``memdeblur.networks.rewrites.prepare_fast``) on a device, and the
autocast of its precision. The PyTorch backend (``memdeblur.runtime.backends.pytorch_backend``) and the test harness
(``VideoDeblurModel`` with ``val.fast``) both run networks through ``inference_runner``; ``check_precision`` is the one
rule for which precision runs where.

On a CPU, callers also make the process keep freed memory for reuse (``memdeblur.utils.allocator``): a process
setting, not applied here. Float32 outputs match the plain network to ~1e-5 (BatchNorm folding's rounding).
"""
import contextlib

import torch

from memdeblur.networks.rewrites import prepare_fast
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.precision import PRECISIONS, refuse_float16_without_gpu


def check_precision(precision, device, option='precision'):
    """Raise ``OptionError`` for a precision that is no name of ``PRECISIONS``, or float16 off a GPU; ``option`` is
    how the caller spells the setting in the message."""
    if precision not in PRECISIONS:
        raise OptionError(f'{option} {precision!r}: one of {", ".join(PRECISIONS)}.')
    refuse_float16_without_gpu(precision, torch.device(device).type, option)


def autocast_context(device, precision):
    """The autocast context of ``precision`` on ``device`` (none for float32)."""
    dtype = PRECISIONS[precision]
    return torch.autocast(torch.device(device).type, dtype=dtype or torch.float32, enabled=dtype is not None)


def inference_runner(net, device, precision='float32', fast=True, compile_net=False):
    """The network ready for inference on ``device`` and a context manager factory for its calls.

    Args:
        net (nn.Module): A whole-clip network ((B, T, 3, H, W) -> (B, T, 3, H, W)).
        device (torch.device | str): Where it runs.
        precision (str): ``float32``, ``bfloat16`` or ``float16`` (autocast; ``check_precision``).
        fast (bool): Fold BatchNorms and use channels-last (otherwise the network as it is, in eval mode).
        compile_net (bool): ``torch.compile`` the prepared network.

    Returns:
        tuple: (network, ``context()`` giving inference mode and the precision's autocast).
    """
    device = torch.device(device)
    check_precision(precision, device)
    runner = prepare_fast(net, device, compile_net=compile_net, dtype=PRECISIONS[precision]) if fast else getattr(
        net, 'module', net).eval().to(device)

    @contextlib.contextmanager
    def context():
        with torch.inference_mode(), autocast_context(device, precision):
            yield

    return runner, context

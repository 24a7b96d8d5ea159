"""Inference with the fast copy of a network (``memdeblur.networks.rewrites.prepare_fast``): the network, ready on a
device, and the autocast context of its precision; and a function restoring one clip with them.

``memdeblur.inference.restorer.Restorer`` restores through these; the benchmarks call them directly. On a CPU the
``Restorer`` also makes the process keep freed memory for reuse (``memdeblur.utils.allocator``): a process setting,
not applied here. Float32 outputs match the plain network to ~1e-5 (BatchNorm folding's rounding).
"""
import contextlib

import torch

from memdeblur.networks.rewrites import prepare_fast
from memdeblur.networks.traits import network_traits
from memdeblur.utils.padding import SpatialPadding
from memdeblur.utils.precision import PRECISIONS, refuse_float16_without_gpu


def inference_runner(net, device, precision='float32', fast=True, compile_net=False):
    """The network ready for inference on ``device`` and a context manager factory for its calls.

    Args:
        net (nn.Module): A whole-clip network ((B, T, 3, H, W) -> (B, T, 3, H, W)).
        device (torch.device | str): Where it runs.
        precision (str): ``float32``, ``bfloat16`` or ``float16`` (autocast).
        fast (bool): Fold BatchNorms and use channels-last (otherwise the network as it is).
        compile_net (bool): ``torch.compile`` the prepared network.

    Returns:
        tuple: (network, ``context()`` giving inference mode and the precision's autocast).
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {list(PRECISIONS)}, got {precision!r}.')
    device = torch.device(device)
    dtype = PRECISIONS[precision]
    refuse_float16_without_gpu(precision, device.type, 'precision')
    runner = prepare_fast(net, device, compile_net=compile_net, dtype=dtype) if fast else getattr(
        net, 'module', net).eval().to(device)

    @contextlib.contextmanager
    def context():
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32,
                                                    enabled=dtype is not None):
            yield

    return runner, context


def clip_restorer(runner, context, device, padding=SpatialPadding()):
    """A function restoring one clip with ``inference_runner``'s results: (T, 3, H, W) float [0, 1] on the CPU ->
    the same, clamped, on the CPU; frames padded to the sizes the network takes (``padding``) and cropped back."""
    device = torch.device(device)

    def restore(clip):
        with context():
            return padding.run(runner, clip.unsqueeze(0).to(device))[0].float().clamp(0, 1).cpu()

    return restore


def fast_restore_fn(net, device, precision='float32', fast=True, compile_net=False):
    """``clip_restorer`` of ``inference_runner(net, device, precision, fast, compile_net)``, padding frames as the
    network needs."""
    return clip_restorer(*inference_runner(net, device, precision, fast, compile_net), device,
                         network_traits(net).padding())

"""A fast inference path with the same results: BatchNorm folded, channels-last, reduced precision.

* sparse top-k read-outs: MemDeblur's eval-mode attention keeps 20 memory positions per query
  position; they are gathered instead of multiplying every value by a mostly-zero matrix
  (``MemDeblurNet.sparse_readout``).
* BatchNorm folding: in eval mode a BatchNorm after a convolution is an affine map, folded into
  the convolution's weights and bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``); the memory
  encoders' ResNet stems lose every BatchNorm layer. Exact up to float32 rounding.
* channels-last: convolutions run on NHWC memory, the layout oneDNN (CPU) and cuDNN (GPU) prefer.
* residual blocks (BasicSR's ``ResidualBlockNoBN``, 50 in MemDeblur) add their residual in place,
  without multiplying it by a ``res_scale`` of 1: one full-size tensor fewer per block. Exact.
* precision: ``bfloat16`` autocast on CPUs that support it (AVX-512 BF16 / AMX), ``float16`` or
  ``bfloat16`` on GPUs; ``float32`` otherwise. The weights of the layers autocast runs in that
  precision are stored in it, so autocast no longer casts them at every call. Exact: the same casts, made
  once.
* optionally ``torch.compile``.
* on a CPU, the entry points (``tools/deblur_video.py``, ``val.fast``) also make the process keep freed
  memory for reuse (``memdeblur.utils.allocator``): a process setting, not applied here.

``fast_restore_fn`` returns a callable restoring (T, 3, H, W) clips; the video tool and
``tools/test.py`` (``val.fast``) use it. Float32 outputs match the plain path to ~1e-5.
"""
import contextlib
import copy

import torch
from basicsr.archs.arch_util import ResidualBlockNoBN
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from memdeblur.utils.padding import SpatialPadding
from memdeblur.utils.precision import PRECISIONS, refuse_float16_without_gpu

# Layers whose inputs and weights autocast casts to its precision, on CPUs and GPUs alike.
AUTOCAST_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def fold_batch_norms(net):
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d into it (in place).

    Handles the two ways such pairs are written: attributes ``convN``/``bnN`` of one module
    (ResNet stems and bottlenecks), and consecutive entries of an ``nn.Sequential`` (ResNet
    shortcuts). Returns the number of folded layers.
    """
    folded = 0
    for module in list(net.modules()):
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                    module[i + 1] = nn.Identity()
                    folded += 1
        for index in range(1, 4):
            conv, bn = getattr(module, f'conv{index}', None), getattr(module, f'bn{index}', None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, f'conv{index}', fuse_conv_bn_eval(conv, bn))
                setattr(module, f'bn{index}', nn.Identity())
                folded += 1
    return folded


class InPlaceResidualBlock(nn.Module):
    """``ResidualBlockNoBN``'s ``x + conv2(relu(conv1(x))) * res_scale`` for ``res_scale`` 1, the sum made in the
    convolution's output (same parameters and names; the same values: float addition is commutative)."""

    def __init__(self, block):
        super().__init__()
        self.conv1, self.relu, self.conv2 = block.conv1, block.relu, block.conv2

    def forward(self, x):
        out = self.conv2(self.relu(self.conv1(x)))
        return out.add_(x) if out.dtype == x.dtype else x + out  # autocast: a float32 input promotes the sum


def streamline_residual_blocks(net):
    """Replace every ``ResidualBlockNoBN`` with ``res_scale`` 1 by an ``InPlaceResidualBlock`` (in place).
    Returns the number replaced."""
    replaced = 0
    for module in list(net.modules()):
        for name, child in module.named_children():
            if type(child) is ResidualBlockNoBN and child.res_scale == 1:
                setattr(module, name, InPlaceResidualBlock(child))
                replaced += 1
    return replaced


def store_autocast_weights(net, dtype):
    """Store the parameters of the layers autocast runs in ``dtype`` in that dtype (in place).

    Autocast casts them at every call otherwise; its results are unchanged (the same rounding, done
    once), but the network then needs the autocast context of ``inference_runner``.
    """
    for module in net.modules():
        if isinstance(module, AUTOCAST_LAYERS):
            module.to(dtype)


def prepare_fast(net, device, channels_last=True, compile_net=False, dtype=None):
    """A copy of ``net`` for inference: eval mode, BatchNorms folded, in-place residuals, sparse read-outs,
    channels-last, on ``device``; with ``dtype`` (the autocast precision it will run under), its convolution
    and linear weights stored in that precision."""
    fast = copy.deepcopy(getattr(net, 'module', net)).eval()
    fold_batch_norms(fast)
    streamline_residual_blocks(fast)
    if hasattr(fast, 'sparse_readout'):
        fast.sparse_readout = True
    fast = fast.to(device)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    if dtype is not None:
        store_autocast_weights(fast, dtype)
    return torch.compile(fast) if compile_net else fast


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
                         SpatialPadding.for_network(net))

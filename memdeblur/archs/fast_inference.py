"""A fast inference path with the same results: BatchNorm folded, channels-last, reduced precision.

* sparse top-k read-outs: MemDeblur's eval-mode attention keeps 20 memory positions per query
  position; they are gathered instead of multiplying every value by a mostly-zero matrix
  (``MemDeblurNet.sparse_readout``).
* BatchNorm folding: in eval mode a BatchNorm after a convolution is an affine map, folded into
  the convolution's weights and bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``); the memory
  encoders' ResNet stems lose every BatchNorm layer. Exact up to float32 rounding.
* channels-last: convolutions run on NHWC memory, the layout oneDNN (CPU) and cuDNN (GPU) prefer.
* precision: ``bfloat16`` autocast on CPUs that support it (AVX-512 BF16 / AMX), ``float16`` or
  ``bfloat16`` on GPUs; ``float32`` otherwise.
* optionally ``torch.compile``.

``fast_restore_fn`` returns a callable restoring (T, 3, H, W) clips; the video tool and
``tools/test.py`` (``val.fast``) use it. Float32 outputs match the plain path to ~1e-5.
"""
import contextlib
import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

PRECISIONS = {'float32': None, 'bfloat16': torch.bfloat16, 'float16': torch.float16}


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


def prepare_fast(net, device, channels_last=True, compile_net=False):
    """A copy of ``net`` for inference: eval mode, BatchNorms folded, sparse read-outs, channels-last, on ``device``."""
    fast = copy.deepcopy(getattr(net, 'module', net)).eval()
    fold_batch_norms(fast)
    if hasattr(fast, 'sparse_readout'):
        fast.sparse_readout = True
    fast = fast.to(device)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
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
    if dtype is torch.float16 and device.type == 'cpu':
        raise ValueError('float16 is for GPUs; on a CPU use bfloat16 (or float32).')
    runner = prepare_fast(net, device, compile_net=compile_net) if fast else getattr(net, 'module', net).eval().to(
        device)

    @contextlib.contextmanager
    def context():
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32,
                                                    enabled=dtype is not None):
            yield

    return runner, context


def clip_restorer(runner, context, device):
    """A function restoring one clip with ``inference_runner``'s results: (T, 3, H, W) float [0, 1] on the CPU ->
    the same, clamped, on the CPU."""
    device = torch.device(device)

    def restore(clip):
        with context():
            return runner(clip.unsqueeze(0).to(device))[0].float().clamp(0, 1).cpu()

    return restore


def fast_restore_fn(net, device, precision='float32', fast=True, compile_net=False):
    """``clip_restorer`` of ``inference_runner(net, device, precision, fast, compile_net)``."""
    return clip_restorer(*inference_runner(net, device, precision, fast, compile_net), device)

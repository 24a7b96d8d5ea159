"""Rewrites of a network that change how it computes, not what: for fast inference and training.

* BatchNorm folding: in eval mode a BatchNorm after a convolution is an affine map, folded into
  the convolution's weights and bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``); the memory
  encoders' ResNet stems lose every BatchNorm layer. Exact up to float32 rounding.
* residual blocks (BasicSR's ``ResidualBlockNoBN``) add their residual in place, without multiplying it by a
  ``res_scale`` of 1: one full-size tensor fewer per block. Exact (training uses it too).
* weights stored in the autocast precision: the layers autocast runs in bfloat16/float16 keep their weights in it,
  so autocast no longer casts them at every call. Exact: the same casts, made once.
* a network with a sparse read-out (``sparse_readout``: MemDeblur's eval-mode attention gathers its top-k memory
  positions instead of multiplying by a mostly-zero matrix) has it switched on.

``prepare_fast`` applies them all to a copy, with channels-last memory and optionally ``torch.compile``.
"""
import copy

import torch
from basicsr.archs.arch_util import ResidualBlockNoBN
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

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
    once), but the network then runs under an autocast context of that precision only.
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

"""The training step of memdeblur's models, with the options that make it fast: precision, layout, compile.

``TrainingStep`` is BasicSR's ``SRModel`` with its ``optimize_parameters`` replaced: one loss over the
network's output(s) (``training_outputs`` against ``training_target``, which the models define), gradient-norm
clipping (``train.max_norm``), BasicSR's EMA, and

* ``train.precision``: ``float32`` (default, the exact recipe), ``bfloat16`` or ``float16`` (GPUs):
  ``memdeblur.models.training_precision``;
* ``train.channels_last``: weights and feature maps in NHWC, the layout oneDNN and cuDNN run fastest;
* ``train.compile``: ``torch.compile`` of the network's per-frame modules (``compile_network``).

It sits *below* BasicSR's ``VideoRecurrentModel`` in the method order (``class VideoDeblurModel(
VideoRecurrentModel, TrainingStep)``), so BasicSR's own ``optimize_parameters`` runs first and its ``super()``
call lands here: ``train.fix_flow`` (SpyNet and EDVR's feature extractor frozen before iteration N) works as in
BasicSR, with BasicSR's code.

On a CPU, training keeps freed memory in the process (``memdeblur.utils.allocator``): a training step allocates
and frees the same activations every iteration, which glibc's defaults fault in anew each time. This changes
no value.
"""
import importlib.util
import os
import shutil

import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger

from memdeblur.networks.rewrites import streamline_residual_blocks
from memdeblur.models.training_precision import TrainingPrecision
from memdeblur.utils.allocator import retain_freed_memory
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.precision import at_least_float32
from memdeblur.utils.threads import cpu_step, process_governor


class TrainingDiverged(FloatingPointError):
    """Training stopped because the loss or the gradients stopped being finite numbers (a learning rate too high,
    or bad data): a user's error, printed in one line by the tools (``memdeblur.cli.command_line.run_tool``)."""


def check_compile_support(device):
    """Refuse ``train.compile`` where ``torch.compile`` cannot build kernels, saying what is missing.

    Inductor compiles C++ on a CPU with ``CXX`` when it is set, else with g++ (clang++ on macOS), and no other
    (``torch._inductor.config.cpp.cxx``, read when torch starts): a ``CXX`` naming a compiler that is not
    installed would fail at the first training step with a long traceback. On a GPU it compiles Triton kernels.
    """
    if not hasattr(torch.nn.Module, 'compile'):
        raise OptionError(f'train.compile needs nn.Module.compile (PyTorch 2.2 or later); this is torch '
                          f'{torch.__version__}.')
    if device.type == 'cpu':
        from torch._inductor import config as inductor_config
        compilers = [name for name in inductor_config.cpp.cxx if name]  # what inductor will run
        if not any(shutil.which(name) for name in compilers):
            cxx = os.environ.get('CXX')
            named = (f'CXX={cxx!r} names no program on the PATH' if cxx else
                     f'{" or ".join(compilers)} is not on the PATH and CXX is not set')
            raise OptionError(f'train.compile on a CPU needs a C++ compiler (torch.compile builds its CPU kernels with '
                              f'CXX, or g++ when CXX is unset): {named}. Install one, set CXX to it, or set '
                              'compile: false.')
    elif device.type == 'cuda' and importlib.util.find_spec('triton') is None:
        raise OptionError('train.compile on a GPU needs Triton (pip install triton, or a PyTorch build that ships it); '
                          'or set compile: false.')


def compile_network(net):
    """Compile ``net`` for training, in place (parameter names, and so checkpoints, are unchanged).

    A recurrent video network runs its modules once per frame and scale in a Python loop; compiling the whole
    forward would unroll that loop into one graph per clip length. A network that names its per-frame modules
    (``compile_targets()``) has those compiled instead, any other is compiled whole. Each module is compiled
    once per input size it meets (three scales, several encoder inputs), more than ``torch._dynamo``'s default
    limit of recompilations of one function (``nn.Sequential.forward`` serves several of them), so the limit is
    raised for the process. Returns the number of compiled modules.
    """
    targets = net.compile_targets() if hasattr(net, 'compile_targets') else [net]
    config = torch._dynamo.config
    for name, per_target in (('recompile_limit', 16), ('cache_size_limit', 16), ('accumulated_recompile_limit', 64),
                             ('accumulated_cache_size_limit', 64)):  # older and newer torch name the same limits
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), per_target * len(targets)))
    for module in targets:
        module.compile(dynamic=False)
    return len(targets)


def prepare_for_training(net, train, device):
    """The bare network as it trains (``train``: the options' train section), before it is wrapped for
    multi-process training: residual blocks adding in place (bit-identical, one full-size temporary less per
    block), then ``train.channels_last`` and ``train.compile``; returns it."""
    streamline_residual_blocks(net)
    if train.get('channels_last'):
        net = net.to(memory_format=torch.channels_last)
    if train.get('compile'):
        check_compile_support(device)
        get_root_logger().info(f'train.compile: {compile_network(net)} module(s) compiled with torch.compile.')
    return net


class TrainingStep(SRModel):
    """BasicSR's ``SRModel`` with memdeblur's training step (see the module docstring). Subclasses define
    ``training_outputs()`` and ``training_target()``."""

    def init_training_settings(self):
        super().init_training_settings()
        self.precision = TrainingPrecision(self.opt['train'].get('precision', 'float32'), self.device)
        get_root_logger().info(self.precision.describe(self.opt['train']))
        if self.device.type == 'cpu':
            get_root_logger().info(f'Threads: {process_governor().describe()}.')
        if self.device.type == 'cpu':
            retain_freed_memory()

    def optimize_parameters(self, current_iter):
        """Forward (``train.precision``'s autocast), float32 loss, backward, gradient-norm clipping of the unscaled
        gradients (``train.max_norm``; the norm logged as ``grad_norm``), optimizer step, EMA. A NaN/Inf loss or
        gradient norm (outside float16's scaling, which skips such a step and logs it) stops training. On a CPU the
        step is timed for the thread count (``memdeblur.utils.threads``), which may change after it."""
        with cpu_step(self.device):
            self._optimize(current_iter)

    def _optimize(self, current_iter):
        self.optimizer_g.zero_grad()
        with self.precision.autocast():
            outputs = self.training_outputs()
        loss = self.cri_pix(at_least_float32(outputs), self.training_target())
        if not torch.isfinite(loss):
            raise TrainingDiverged(f'Iteration {current_iter}: the training loss is {loss.item()}; stopping '
                                     'instead of training on (lower the learning rate, or check the data).')
        self.precision.backward(loss)
        losses = {'l_pix': loss}
        max_norm = self.opt['train'].get('max_norm')
        if max_norm:
            self.precision.unscale(self.optimizer_g)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), max_norm)
            if self.precision.scaler is None and not torch.isfinite(grad_norm):
                raise TrainingDiverged(f'Iteration {current_iter}: the gradient norm is {grad_norm.item()}; '
                                         'stopping instead of training on (lower the learning rate, or check the '
                                         'data).')
            losses['grad_norm'] = grad_norm
        if not self.precision.step(self.optimizer_g):
            get_root_logger().warning(f'Iteration {current_iter}: float16 gradients overflowed; step skipped, loss '
                                      f'scale lowered to {self.precision.scaler.get_scale():g}.')
        self.log_dict = self.reduce_loss_dict(losses)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

"""Mixed-precision training (``train.precision``): autocast around the forward pass, float32 everywhere else.

* ``float32`` (the default) is the exact recipe: nothing changes.
* ``bfloat16`` (CPUs with BF16 instructions, GPUs): the forward pass runs under ``torch.autocast``, so
  convolutions and matrix products compute in bfloat16 and their gradients come back in it, each use of a
  weight cast anew so that a weight's gradients are summed in float32. The weights,
  their gradients, the optimizer state and the EMA copy stay float32 ("master weights"); BatchNorm keeps
  float32 statistics; the loss is computed and reduced in float32 from the outputs cast back; the memory
  bank's attention logits are computed in float32 (``MemoryBank.float32_affinity``). bfloat16 has float32's
  range, so no loss scaling is needed.
* ``float16`` (GPUs only): as bfloat16, with ``torch.amp.GradScaler`` scaling the loss so that small
  gradients survive float16's range; gradients are unscaled before clipping, and a step whose gradients
  overflowed is skipped by the scaler (which lowers its scale), with the iteration logged.

Not bit-exact against float32: ``options/README.md`` gives the measured quality difference.
"""
import contextlib

import torch
from basicsr.utils import get_root_logger

from memdeblur.utils.option_check import OptionError
from memdeblur.utils.precision import PRECISIONS, cpu_has_native_bfloat16, refuse_float16_without_gpu


class TrainingPrecision:
    """The autocast context and, for float16, the loss scaler of one training run.

    Args:
        precision (str): ``float32``, ``bfloat16`` or ``float16``.
        device (torch.device): Where the network trains.
    """

    def __init__(self, precision, device):
        if precision not in PRECISIONS:
            raise OptionError(f'train.precision must be one of {", ".join(PRECISIONS)}, got {precision!r}.')
        refuse_float16_without_gpu(precision, device.type, 'train.precision')
        if precision == 'bfloat16' and device.type == 'cpu' and not cpu_has_native_bfloat16():
            get_root_logger().warning('train.precision: bfloat16 on a CPU without BF16 instructions (AVX-512 BF16 or '
                                      'AMX): PyTorch emulates it, slower than float32.')
        self.precision = precision
        self.device_type = device.type
        self.dtype = PRECISIONS[precision]
        self.scaler = torch.amp.GradScaler(device.type) if precision == 'float16' else None

    def describe(self, train):
        """The log's line on how the network trains (``train``: the options' train section)."""
        return (f'Training precision: {self.precision}{" (autocast, float32 master weights)" if self.dtype else ""}'
                f'{", loss scaling" if self.scaler else ""}{", channels-last" if train.get("channels_last") else ""}'
                f'{", compiled" if train.get("compile") else ""}.')

    def autocast(self):
        """The context the forward pass runs in (a no-op for float32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        # cache_enabled=False: with autocast's cache, a weight used many times in one step (MemDeblur's trunks run
        # once per frame and scale) is cast once, and the gradients of all its uses are summed in the half
        # precision; without it each use is cast anew and the sum happens in the float32 gradient (measured in
        # options/README.md, "Training precision and speed")
        return torch.autocast(self.device_type, dtype=self.dtype, cache_enabled=False)

    def backward(self, loss):
        """``loss.backward()``, with the loss scaled first under float16."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer):
        """Bring the gradients of ``optimizer``'s parameters back to their true size (before clipping them)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer):
        """``optimizer.step()``; under float16 through the scaler. Returns False when the step was skipped
        because the gradients held Inf/NaN values (the scaler then lowers its scale)."""
        if self.scaler is None:
            optimizer.step()
            return True
        scale = self.scaler.get_scale()
        self.scaler.step(optimizer)
        self.scaler.update()
        return self.scaler.get_scale() >= scale

    def state_dict(self):
        """What a training state must keep to resume: the loss scaler's state (None without one)."""
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state):
        """Restore ``state_dict()``'s result; a state saved without a scaler leaves a new scaler as it is."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)

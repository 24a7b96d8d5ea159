"""Precision names as options spell them, where each may run, and the one rule for leaving a half precision."""
import torch

from memdeblur.utils.option_check import OptionError

# Option value -> autocast dtype (None: float32, no autocast), for inference (val.precision, --precision) and
# training (train.precision).
PRECISIONS = {'float32': None, 'bfloat16': torch.bfloat16, 'float16': torch.float16}


def refuse_float16_without_gpu(precision, device_type, option):
    """Raise ``OptionError`` when ``precision`` is float16 and the run is not on a GPU (``device_type`` 'cuda'):
    PyTorch's float16 kernels and loss scaling are for GPUs. ``option`` names what asked for it in the message
    (``--precision``, ``train.precision``, an options file and key)."""
    if precision == 'float16' and device_type != 'cuda':
        raise OptionError(f'{option}: float16 is for GPUs; on a CPU use bfloat16 (CPUs with BF16 instructions) or '
                          'float32.')


def at_least_float32(tensors):
    """A tensor, or each of a list of tensors, in float32 when it is in a half precision (bfloat16, float16);
    float32 and float64 tensors are returned as they are."""
    if isinstance(tensors, (list, tuple)):
        return [at_least_float32(t) for t in tensors]
    return tensors.float() if tensors.dtype in (torch.bfloat16, torch.float16) else tensors


def cpu_has_native_bfloat16():
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX), where bfloat16 convolutions beat
    float32; elsewhere PyTorch emulates them, slower than float32. PyTorch's own check where it has one
    (``torch.cpu._is_avx512_bf16_supported``, private), else the CPU flags Linux lists."""
    checks = [getattr(torch.cpu, name, None) for name in ('_is_avx512_bf16_supported', '_is_amx_tile_supported')]
    if all(checks):
        return any(check() for check in checks)
    try:
        with open('/proc/cpuinfo') as f:
            flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), [])
    except OSError:
        return False
    return 'avx512_bf16' in flags or 'amx_bf16' in flags

"""Which device a run uses, checked against this machine when it is chosen rather than at the first tensor moved.

``torch.device('cuda')`` is accepted on any machine and fails only when something is put there, with torch's own
message; every entry point (the ``Restorer``, the video tool's ``--device``) resolves its device here instead, so a
device this machine lacks is one ``OptionError`` that says what it has.
"""
import torch

from memdeblur.utils.option_check import OptionError

SUPPORTED_TYPES = ('cpu', 'cuda')


def resolve_device(name, local_rank=0, option='device'):
    """The ``torch.device`` for ``name`` on this machine.

    Args:
        name (str | torch.device): ``auto`` (this process's GPU under torchrun when there are GPUs, else the CPU),
            ``cpu``, ``cuda``, ``cuda:N``, or a ``torch.device``.
        local_rank (int): The process's rank on this machine (``auto``'s GPU).
        option (str): How the caller spells the setting in messages (``--device`` for a tool).

    Raises:
        OptionError: a name that is no device, a device type other than cpu and cuda, or a GPU this machine lacks.
    """
    if name == 'auto':
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return torch.device(f'cuda:{local_rank % count}' if count else 'cpu')
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise OptionError(f'{option} {name}: not a device name ({err}); use cpu, cuda, cuda:N or auto.') from err
    if device.type not in SUPPORTED_TYPES:
        raise OptionError(f'{option} {name}: only cpu and cuda devices are supported.')
    if device.type == 'cuda':
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise OptionError(f'{option} {name}: this machine has {count} usable CUDA GPU(s); use cpu'
                              + (f' or cuda:0 to cuda:{count - 1}.' if count else '.'))
    return device

"""How large the network of an options file would be, known before it is built: it is built on the ``meta`` device.

Reading an options file (``memdeblur.run_options``) refuses a network whose parameters and buffers would take more
than ``MAX_OPTION_BYTES`` or that would have more than ``MAX_NETWORK_MODULES`` modules: a mistyped size
(``num_feat: 100000``, ``n_blocks: 1000000``) would otherwise end in an allocation traceback, or in minutes of
building, long after the options were read. The rule knows nothing about any network: every network of every
package is built as ``build_network`` builds it (without its log line), under ``torch.device('meta')``, where
tensors have shapes and no storage, so nothing of the network's size is allocated. Its modules and the bytes of its
tensors are counted as they are registered, and the build is stopped as soon as either count passes its limit, so
that a network of a million blocks is refused after the first few thousand.

A network whose construction needs the values of its tensors cannot be built on the meta device (BasicSR's SwinIR
calls ``.item()``): its size is unknown before it is built, and it is built for real as before, where its own
errors, if any, appear. The network's own option checks (``checked_options``) run in the meta build too, so their
errors come when the options are read.
"""
import copy
from dataclasses import dataclass

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch.nn.modules import module as torch_module

from memdeblur.utils.option_check import MAX_OPTION_BYTES, OptionError, check_option_bytes

# Modules a network may have: each costs Python objects and time to build (0.1 to 0.5 ms on the meta device), and
# the largest network here has 389 (the released MemDeblur; ESTRNN B15: 210; EDVR: 120).
MAX_NETWORK_MODULES = 5_000


@dataclass(frozen=True)
class NetworkSize:
    """A network's size, counted on the meta device (``measure_network``)."""

    parameters: int
    tensor_bytes: int  # parameters and buffers, in the dtypes the network makes them
    modules: int


class _PastLimit(Exception):
    """Raised from the registration hooks to stop a build that has passed a limit."""


def measure_network(network_opt, where='network_g'):
    """The ``NetworkSize`` of the network ``network_opt`` describes, built on the meta device; None when it cannot be
    built there (a network that reads its tensors' values while it is built, or options it refuses otherwise than
    with ``OptionError``: the real build says why).

    Args:
        network_opt (dict): A ``network_g`` section (``type`` registered).
        where (str): Which options these are, for messages.

    Raises:
        OptionError: the network's own option checks, or a size past ``MAX_OPTION_BYTES`` or
            ``MAX_NETWORK_MODULES``, named with the limit.
    """
    options = copy.deepcopy(network_opt)  # as ``build_network``, without its log line: BasicSR's logger, once
    network_class = ARCH_REGISTRY.get(options.pop('type'))  # used, would not take the run's log file any more
    counts = {'bytes': 0, 'modules': 0}

    def count_module(module, name, submodule):
        counts['modules'] += submodule is not None
        if counts['modules'] > MAX_NETWORK_MODULES:
            raise _PastLimit

    def count_tensor(module, name, tensor):
        counts['bytes'] += 0 if tensor is None else tensor.numel() * tensor.element_size()
        if counts['bytes'] > MAX_OPTION_BYTES:
            raise _PastLimit

    hooks = [torch_module.register_module_module_registration_hook(count_module),
             torch_module.register_module_parameter_registration_hook(count_tensor),
             torch_module.register_module_buffer_registration_hook(count_tensor)]
    try:
        with torch.random.fork_rng(devices=[]), torch.device('meta'):
            net = network_class(**options)
    except _PastLimit:
        _refuse(network_opt, where, counts['bytes'], counts['modules'], complete=False)
    except OptionError as err:
        raise OptionError(f'{where}: {err}') from err
    except Exception:  # whatever a network raises when it cannot be built without its tensors' values
        return None
    finally:
        for hook in hooks:
            hook.remove()
    tensors = [*net.parameters(), *net.buffers()]
    size = NetworkSize(sum(p.numel() for p in net.parameters()),
                       sum(t.numel() * t.element_size() for t in tensors), len(list(net.modules())))
    _refuse(network_opt, where, size.tensor_bytes, size.modules, complete=True)
    return size


def _refuse(network_opt, where, tensor_bytes, modules, complete):
    """``OptionError`` for a network past a limit; ``complete``: the counts are the whole network's, not those of the
    part built before the build was stopped."""
    name, least = network_opt.get('type'), '' if complete else 'at least '
    if modules > MAX_NETWORK_MODULES:
        raise OptionError(f'{where}: {name} would have {least}{modules} modules, more than the {MAX_NETWORK_MODULES} '
                          'a network may have (MAX_NETWORK_MODULES, memdeblur/networks/network_size.py; the largest '
                          'network here has 389): a mistyped number of blocks?')
    check_option_bytes(tensor_bytes, f"{name}'s parameters and buffers", where, partial=not complete)

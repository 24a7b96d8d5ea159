"""Backends: the table from a backend's name to its opener, and ``open_model``, the one way every caller turns a
network or an exported model into a ``ClipModel``.

Each backend is one module with an opener, ``(source, device, precision, fast, compile_net) -> ClipModel``, and one
row of ``BACKENDS`` saying what it runs; the default backend of each kind of source is its first row. Adding a backend
(another runtime for exported models, say) is adding its module and its row.
"""
import os
from typing import Callable, NamedTuple

from torch import nn

from memdeblur.networks.fast_runner import check_precision
from memdeblur.runtime.backends import onnxruntime_backend, openvino_backend, pytorch_backend
from memdeblur.runtime.backends.base import ClipModel
from memdeblur.runtime.backends.export_file import VerifiedExport
from memdeblur.utils.devices import resolve_device
from memdeblur.utils.option_check import OptionError

NETWORKS, EXPORTS = 'networks', 'exported models'
EXPORT_SUFFIX = '.onnx'


class Backend(NamedTuple):
    """A row of ``BACKENDS``: what the backend runs (``NETWORKS`` or ``EXPORTS``) and its opener."""

    runs: str
    open: Callable


BACKENDS = {
    'pytorch': Backend(NETWORKS, pytorch_backend.open_network),
    'onnxruntime': Backend(EXPORTS, onnxruntime_backend.open_export),
    'openvino': Backend(EXPORTS, openvino_backend.open_export),
}


def is_export_path(path):
    """Whether ``path`` names an exported model (a ``.onnx`` file) rather than a network's weights."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(EXPORT_SUFFIX)


def source_kind(source):
    """``NETWORKS`` for a network, ``EXPORTS`` for an exported model (its path or ``load_export``'s result)."""
    if isinstance(source, nn.Module):
        return NETWORKS
    if isinstance(source, VerifiedExport) or is_export_path(source):
        return EXPORTS
    raise OptionError(f'{source!r}: a model is a network (nn.Module, e.g. from Restorer.from_options) or an exported '
                      f'{EXPORT_SUFFIX} file.')


def default_backend(kind):
    """The backend that runs ``kind`` (``NETWORKS`` or ``EXPORTS``) when none is named: its first row."""
    return next(name for name, row in BACKENDS.items() if row.runs == kind)


def backends_for(kind):
    """The names of the backends that run ``kind``."""
    return [name for name, row in BACKENDS.items() if row.runs == kind]


def open_model(source, backend=None, device=None, precision=None, fast=True, compile_net=False):
    """The ``ClipModel`` of ``source`` run by ``backend`` on ``device`` in ``precision``.

    Args:
        source (nn.Module | str | VerifiedExport | ClipModel): A loaded network, an exported ``.onnx`` model (its
            path, or as ``load_export`` read it), or a clip model already opened (returned as it is).
        backend (str | None): A name of ``BACKENDS`` (default: the first that runs ``source``).
        device (torch.device | str | None): ``cpu`` (default), ``cuda[:N]`` or ``auto``; one this machine lacks is
            refused here (``memdeblur.utils.devices.resolve_device``).
        precision (str | None): ``float32`` (default), ``bfloat16`` or ``float16`` (GPUs), as the backend allows.
        fast (bool): Networks: the fast path; False runs the network as it is.
        compile_net (bool): Networks: ``torch.compile`` it.

    Raises:
        OptionError: an unknown backend, a backend that does not run ``source``, a device or precision it cannot use.
    """
    if isinstance(source, ClipModel):
        asked = {'backend': backend, 'device': device, 'precision': precision}
        held = {'backend': source.backend, 'device': source.device, 'precision': source.precision}
        differ = [key for key, value in asked.items() if value is not None and str(value) != str(held[key])]
        if differ:
            raise OptionError(f'{source.label} is already open with {", ".join(f"{k} {held[k]}" for k in differ)}; '
                              'open the network or export again for other settings.')
        return source
    kind = source_kind(source)
    name = backend or default_backend(kind)
    if name not in BACKENDS:
        raise OptionError(f'backend {name!r}: one of {", ".join(BACKENDS)}.')
    if BACKENDS[name].runs != kind:
        hint = ('export the network first and give the .onnx file' if kind == NETWORKS else
                f'use {" or ".join(backends_for(kind))}')
        raise OptionError(f'backend {name} runs {BACKENDS[name].runs}, not {kind}: {hint}.')
    device = resolve_device(device or 'cpu')
    precision = precision or 'float32'
    check_precision(precision, device)
    return BACKENDS[name].open(source, device, precision, fast=fast, compile_net=compile_net)

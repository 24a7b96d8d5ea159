"""Optional dependencies, imported where they are used, with a one-line error naming the extra that installs them.

ONNX export and the ONNX Runtime / OpenVINO backends need packages that the PyTorch path does not
(``pip install 'memdeblur[onnx]'``, ``'memdeblur[openvino]'``, ``setup.py``'s ``extras_require``). Code that
needs one calls ``require`` instead of importing it, so that a user without it gets ``error: ONNX Runtime is
needed to verify an export: pip install 'memdeblur[onnx]'`` (``memdeblur.cli.command_line.run_tool``) instead of a traceback.
"""
import importlib

from memdeblur.utils.option_check import OptionError

# module -> the name users know it by
FRIENDLY_NAMES = {'onnx': 'ONNX', 'onnxruntime': 'ONNX Runtime', 'openvino': 'OpenVINO'}


class MissingDependency(OptionError):
    """An optional package that the requested feature needs is not installed (or fails to import)."""


def require(module_name, extra, purpose):
    """Import and return ``module_name``, or raise ``MissingDependency`` saying what needs it and how to install it.

    Args:
        module_name (str): The module, e.g. ``onnxruntime``.
        extra (str): The ``extras_require`` entry installing it, e.g. ``onnx``.
        purpose (str): What needs it, completing "... is needed to", e.g. ``verify an export``.
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        name = FRIENDLY_NAMES.get(module_name, module_name)
        raise MissingDependency(f"{name} is needed to {purpose}: pip install 'memdeblur[{extra}]'") from err

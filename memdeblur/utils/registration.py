"""Registration by import, as BasicSR and Real-ESRGAN do it: a new file needs no list edited."""
import importlib
from os import path as osp

from basicsr.utils import scandir


def import_modules_with_suffix(package_name, package_file, suffix):
    """Import every module of a package folder whose file name ends with ``suffix``.

    Args:
        package_name (str): Dotted name of the package, e.g. ``'memdeblur.archs'``.
        package_file (str): The package's ``__init__.py`` path (its ``__file__``).
        suffix (str): File-name ending that marks a registering module, e.g. ``'_arch.py'``.

    Returns:
        list[module]: The imported modules, in file-name order.
    """
    folder = osp.dirname(osp.abspath(package_file))
    names = sorted(osp.splitext(osp.basename(p))[0] for p in scandir(folder) if p.endswith(suffix))
    return [importlib.import_module(f'{package_name}.{name}') for name in names]

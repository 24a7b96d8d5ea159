"""Every gap between BasicSR 1.4.2 and this project's environment, closed in one place.

BasicSR 1.4.2 is the toolbox users have, but it predates current torchvision and assumes
CUDA in a few paths. Each gap gets one small, named fix here and one test in
``tests/test_basicsr_compat.py``, so that the day BasicSR fixes a gap its line can go.

This module must run before the first ``import basicsr``; ``memdeblur/__init__.py``
imports it first.
"""
import importlib.util
import sys

_FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'


def alias_torchvision_functional_tensor():
    """Gap 1: ``basicsr.data.degradations`` imports ``torchvision.transforms.functional_tensor``.

    torchvision removed that private module (0.17); the one function BasicSR takes from it,
    ``rgb_to_grayscale``, lives on in ``torchvision.transforms.functional``. Registering
    the public module under the old name makes ``import basicsr`` work again. Nothing is
    done when the old module still exists.
    """
    if _FUNCTIONAL_TENSOR in sys.modules:
        return
    try:
        if importlib.util.find_spec(_FUNCTIONAL_TENSOR) is not None:
            return
    except ModuleNotFoundError:
        pass
    import torchvision.transforms.functional as functional
    sys.modules[_FUNCTIONAL_TENSOR] = functional


alias_torchvision_functional_tensor()

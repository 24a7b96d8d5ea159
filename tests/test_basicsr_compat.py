"""One test per BasicSR gap closed in memdeblur.basicsr_compat."""
import subprocess
import sys

import torch


def test_basicsr_imports_after_memdeblur_on_current_torchvision():
    """Gap 1: a fresh interpreter imports basicsr (all of it) once memdeblur is imported."""
    code = ('import memdeblur, basicsr, basicsr.data.degradations as d; '
            'from basicsr.utils.registry import ARCH_REGISTRY; '
            'print(ARCH_REGISTRY.get("MemDeblurNet").__name__)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'MemDeblurNet'


def test_aliased_grayscale_is_torchvisions_function():
    """The alias must serve the function BasicSR's degradations use, with its behaviour."""
    from basicsr.data import degradations
    from torchvision.transforms import functional
    assert degradations.rgb_to_grayscale is functional.rgb_to_grayscale
    image = torch.rand(1, 3, 4, 4)
    gray = degradations.rgb_to_grayscale(image)
    expected = 0.2989 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2]
    assert torch.allclose(gray[:, 0], expected, atol=1e-6)

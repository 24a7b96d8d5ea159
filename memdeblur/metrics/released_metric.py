"""PSNR and SSIM as the released MemDeblur evaluation computes them.

The released numbers (31.77 / 31.76 dB on GOPRO) differ from BasicSR's convention in two ways:
the output is cast to uint8 by truncation (not rounding) and SSIM is scikit-image's
``structural_similarity`` with Gaussian weights (sigma 1.5), population covariance,
``data_range=255``, over the three colour channels. Whole frames, no border crop.

The model hands every metric the same dict; these functions read ``img_truncated`` (the output
quantised the released way) and ``img2`` (the ground truth), both (H, W, 3) uint8.
"""
import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY
from skimage.metrics import structural_similarity


def truncate_to_uint8(image):
    """[0, 1] float image -> uint8 by clipping to [0, 255] and truncating, as the released evaluation."""
    return np.clip(image * 255.0, 0, 255).astype(np.uint8)


@METRIC_REGISTRY.register()
def calculate_psnr_released(img_truncated, img2, **kwargs):
    """PSNR (dB) over the whole RGB frame between uint8 images."""
    mse = np.mean((img_truncated.astype(np.float64) - img2.astype(np.float64))**2)
    return float('inf') if mse == 0 else 10 * np.log10(255.0**2 / mse)


@METRIC_REGISTRY.register()
def calculate_ssim_released(img_truncated, img2, **kwargs):
    """scikit-image SSIM with the released settings, over the three channels."""
    return structural_similarity(img_truncated, img2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=2)

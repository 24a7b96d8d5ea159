"""The released loss and evaluation conventions, against their definitions."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from basicsr.losses import build_loss
from basicsr.metrics import calculate_metric
from skimage.metrics import structural_similarity

from memdeblur.losses.charbonnier_loss import color_charbonnier
from memdeblur.metrics.released_metric import truncate_to_uint8
from memdeblur.evaluation.scoring import metric_inputs


def test_color_charbonnier_pools_channels_inside_the_root():
    pred, target = torch.zeros(1, 3, 1, 2), torch.zeros(1, 3, 1, 2)
    pred[0, 0, 0, 0] = 0.3  # one channel of one pixel off by 0.3
    expected = (np.sqrt(0.09 / 3 + 1e-6) + np.sqrt(1e-6)) / 2
    assert color_charbonnier(pred, target).item() == pytest.approx(expected, rel=1e-6)


def test_multi_scale_loss_resizes_the_target_bilinearly_per_scale():
    loss = build_loss({'type': 'MultiScaleCharbonnierLoss', 'loss_weight': 2.0})
    target = torch.rand(2, 3, 3, 16, 24)
    preds = [torch.rand(2, 3, 3, 4, 8), torch.rand(2, 3, 3, 8, 12), torch.rand(2, 3, 3, 16, 24)]
    expected = 0
    for pred in preds:
        resized = F.interpolate(target.flatten(0, 1), size=pred.shape[-2:], mode='bilinear', align_corners=False)
        expected += color_charbonnier(pred, resized.view_as(pred))
    assert loss(preds, target).item() == pytest.approx(2 * expected.item(), rel=1e-6)
    assert loss(preds[-1], target).item() == pytest.approx(2 * color_charbonnier(preds[-1], target).item())
    assert loss([target] * 3, target).item() == pytest.approx(2 * 3 * 1e-3, rel=1e-3)


def test_scale_weights_must_match_the_outputs():
    loss = build_loss({'type': 'MultiScaleCharbonnierLoss', 'scale_weights': [0.5, 1.0]})
    with pytest.raises(ValueError, match='2 scale_weights for 3 output scales'):
        loss([torch.rand(1, 1, 3, 4, 4)] * 3, torch.rand(1, 1, 3, 4, 4))


def test_released_quantisation_truncates_where_basicsr_rounds():
    frame = torch.full((3, 2, 2), 100.7 / 255)
    data = metric_inputs(frame, np.full((2, 2, 3), 101, np.uint8))
    assert (data['img'] == 101).all() and (data['img_truncated'] == 100).all()
    assert calculate_metric(data, {'type': 'calculate_psnr', 'crop_border': 0}) == float('inf')
    assert calculate_metric(data, {'type': 'calculate_psnr_released'}) == pytest.approx(10 * np.log10(255**2))
    assert (truncate_to_uint8(np.array([-0.1, 1.2, 0.999])) == [0, 255, 254]).all()


def test_released_ssim_is_scikit_images_gaussian_ssim():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    out = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    value = calculate_metric({'img_truncated': out, 'img2': gt, 'img': out}, {'type': 'calculate_ssim_released'})
    expected = structural_similarity(out, gt, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=255, channel_axis=2)
    assert value == pytest.approx(expected) and 0 < value < 1

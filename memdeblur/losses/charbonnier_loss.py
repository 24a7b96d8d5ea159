"""The released MemDeblur training loss: a colour Charbonnier loss over the output scales, weighted per scale."""
import torch
import torch.nn.functional as F
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from memdeblur.utils.option_check import NUMBER, NUMBER_LIST, checked_options, optional


def color_charbonnier(pred, target, eps=1e-3):
    """``mean(sqrt(mean_c((pred - target)^2) + eps^2))``: the channel mean sits inside the root.

    Unlike BasicSR's ``CharbonnierLoss`` (element-wise root, eps 1e-12), colour errors of one pixel are
    pooled before the root, as the released model was trained.

    Args:
        pred, target (Tensor): (..., C, H, W).
    """
    return torch.sqrt(((pred - target)**2).mean(dim=-3) + eps**2).mean()


def resize_frames(frames, size):
    """Bilinear resize (align_corners=False, no antialiasing) of (B, T, C, H, W) frames to ``size``."""
    b, t, c, h, w = frames.shape
    if (h, w) == tuple(size):
        return frames
    return F.interpolate(frames.reshape(b * t, c, h, w), size=size, mode='bilinear',
                         align_corners=False).view(b, t, c, *size)


@LOSS_REGISTRY.register()
@checked_options(loss_weight=NUMBER, eps=NUMBER, scale_weights=optional(NUMBER_LIST))
class MultiScaleCharbonnierLoss(nn.Module):
    """Colour Charbonnier loss of every output scale against the target resized to that scale.

    Args:
        loss_weight (float): Weight of the summed loss. Default: 1.0.
        eps (float): Charbonnier epsilon (squared inside the root). Default: 1e-3.
        scale_weights (list[float] | None): Weight per scale, coarse to fine; None = 1 each. The
            released checkpoints were trained with [1, 2, 2]: the authors' trainer adds every scale
            after the first twice (two keys of its results dict alias one tensor updated in place),
            see ``options/README.md``.
    """

    def __init__(self, loss_weight=1.0, eps=1e-3, scale_weights=None):
        super().__init__()
        self.loss_weight = loss_weight
        self.eps = eps
        self.scale_weights = scale_weights

    def forward(self, preds, target):
        """
        Args:
            preds (Tensor | list[Tensor]): Output(s) (B, T, C, h_s, w_s), coarse to fine.
            target (Tensor): Full-size target (B, T, C, H, W).
        """
        preds = preds if isinstance(preds, (list, tuple)) else [preds]
        weights = self.scale_weights or [1.0] * len(preds)
        if len(weights) != len(preds):
            raise ValueError(f'{len(weights)} scale_weights for {len(preds)} output scales.')
        loss = sum(
            w * color_charbonnier(pred, resize_frames(target, pred.shape[-2:]), self.eps)
            for w, pred in zip(weights, preds))
        return self.loss_weight * loss

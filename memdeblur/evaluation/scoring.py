"""Scoring restored frames: every metric of ``val.metrics`` for the output and for the blurry input.

Each metric function of BasicSR's registry receives the same dict (``metric_inputs``): BasicSR's rounded uint8
image (``img``), the released evaluation's truncated one (``img_truncated``) and the ground truth (``img2``), so
both conventions are computed from one restored frame.
"""
import hashlib

import numpy as np
from basicsr.metrics import calculate_metric
from basicsr.utils import tensor2img

from memdeblur.metrics.released_metric import truncate_to_uint8
from memdeblur.utils.naming import listed, non_finite_entries


def check_finite_frames(frames, what, names):
    """Raise ``ValueError`` naming every frame of ``frames`` (T, ...) that holds NaN or Inf values.

    Args:
        frames (Tensor): (T, C, H, W).
        what (str): e.g. ``'input frames of sequence GOPRO_0001'``.
        names (list[str]): The T frame names.
    """
    bad = non_finite_entries(frames, names)
    if bad:
        raise ValueError(f'Non-finite (NaN or Inf) values in {what}: frames {listed(bad)}.')


def metric_inputs(frame, gt_img):
    """What every metric function receives for one (3, H, W) [0, 1] frame: BasicSR's rounded uint8
    image (``img``), the released truncated one (``img_truncated``), and the ground truth (``img2``);
    all (H, W, 3) BGR."""
    return {
        'img': tensor2img(frame),
        'img_truncated': truncate_to_uint8(frame.flip(0).permute(1, 2, 0).float().numpy()),
        'img2': gt_img,
    }


def score_frame(inputs, metrics_opt):
    """Every metric of ``val.metrics`` on one frame's ``metric_inputs``."""
    return {metric: calculate_metric(inputs, opt) for metric, opt in metrics_opt.items()}


class FrameScorer:
    """Per-frame score records of restored frames against their sharp frames, with the blurry input's scores.

    The blurry input's scores never change between validations of a training run: each frame's are computed
    once and kept, keyed by what determines them, the blurry and sharp images themselves (a digest of the
    ``metric_inputs``), never by names: two test sets may share a name and frame names, a data folder may change.

    Args:
        metrics_opt (dict): ``val.metrics`` (name -> BasicSR metric options).
    """

    def __init__(self, metrics_opt):
        self.metrics_opt = metrics_opt
        self._input_scores = {}  # digest of the blurry frame's metric_inputs -> its metric values

    def score(self, sequence, frame, restored, blurry, sharp):
        """Score one frame.

        Args:
            sequence, frame (str): Names of the frame, for the record.
            restored, blurry, sharp (Tensor): (3, H, W) RGB in [0, 1].

        Returns:
            tuple: (record ``{'sequence', 'frame', 'output': {metric: value}, 'input': {metric: value}}``,
            the restored frame's ``metric_inputs``, the blurry frame's ``metric_inputs``, the sharp uint8 image).
        """
        sharp_img = tensor2img(sharp)
        restored_inputs = metric_inputs(restored, sharp_img)
        blurry_inputs = metric_inputs(blurry, sharp_img)
        key = content_digest(blurry_inputs)
        if key not in self._input_scores:
            self._input_scores[key] = score_frame(blurry_inputs, self.metrics_opt)
        record = {'sequence': sequence, 'frame': frame, 'output': score_frame(restored_inputs, self.metrics_opt),
                  'input': self._input_scores[key]}
        return record, restored_inputs, blurry_inputs, sharp_img


def content_digest(images):
    """A digest of named images (``metric_inputs``): their names, shapes, dtypes and pixels."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(images):
        image = np.ascontiguousarray(images[name])
        digest.update(f'{name}{image.shape}{image.dtype}'.encode())
        digest.update(image.data)
    return digest.hexdigest()

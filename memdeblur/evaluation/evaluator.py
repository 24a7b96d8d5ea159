"""Score a restore function over a test set: what ``tools/test.py``, validation during training and
``tools/compare.py`` all evaluate through.

``Evaluator.evaluate`` walks the windows of a ``VideoDeblurTestDataset`` (split across processes under torchrun,
gathered on every process), restores each with the function it is given, refuses non-finite frames naming them, scores
the frames the window keeps under both PSNR/SSIM conventions with the blurry input's scores beside them
(``FrameScorer``), and saves the restored frames and one blurry | restored | sharp picture per sequence. The caller
turns its records into tables (``memdeblur.evaluation.results_table.summarize``) and reports
(``memdeblur.evaluation.run_report``).
"""
import os.path as osp
from dataclasses import dataclass

from basicsr.utils import imwrite
from basicsr.utils.dist_util import get_dist_info
from torch import distributed as dist
from tqdm import tqdm

from memdeblur.evaluation.comparison_image import comparison_image
from memdeblur.evaluation.scoring import FrameScorer, check_finite_frames


@dataclass
class Evaluation:
    """What ``Evaluator.evaluate`` measured, over every process.

    Attributes:
        records (list[dict]): One ``FrameScorer.score`` record per scored frame.
        seconds (float): Time the restore function reported, in all.
        frames (int): Frames given to the restore function (its windows' lengths), in all.
    """

    records: list
    seconds: float
    frames: int

    @property
    def seconds_per_frame(self):
        return self.seconds / max(self.frames, 1)


class Evaluator:
    """Scores restored test windows with ``metrics`` (``val.metrics``: name -> BasicSR metric options).

    Keep one evaluator for the validations of a training run: the blurry input's scores are computed once
    (``FrameScorer``).
    """

    def __init__(self, metrics):
        self.scorer = FrameScorer(metrics)

    def evaluate(self, dataset, restore, image_dir, save_img=False, desc='Test'):
        """Restore and score every window of ``dataset``; this process takes every world-size-th window.

        Args:
            dataset (VideoDeblurTestDataset): Items with 'lq', 'gt' (T, 3, H, W), 'folder', 'frame_names', 'keep',
                'frame_start', 'sequence_length'.
            restore (callable): ``restore(lq) -> (outputs, first, seconds)``: restored frames (N, 3, H, W) of the
                blurry window (T, 3, H, W), ``first`` the index in the window of the first, and the seconds it took.
            image_dir (str): Where the restored frames (``<sequence>/<frame>.png``, with ``save_img``) and the
                comparison pictures (``<sequence>_comparison_<frame>.png``) go.
            save_img (bool): Save every restored frame.
            desc (str): The progress bar's label.

        Returns:
            Evaluation: gathered from every process (each process gets the whole).
        """
        rank, world_size = get_dist_info()
        records, seconds, frames = [], 0.0, 0
        for idx in tqdm(range(rank, len(dataset), world_size), desc=desc, unit='window', disable=rank != 0):
            item = dataset[idx]
            window_records, window_seconds = self.evaluate_window(item, restore, image_dir, save_img)
            records += window_records
            seconds += window_seconds
            frames += item['lq'].shape[0]
        if world_size > 1:
            gathered = [None] * world_size
            dist.all_gather_object(gathered, (records, seconds, frames))
            records = [r for part in gathered for r in part[0]]
            seconds, frames = sum(p[1] for p in gathered), sum(p[2] for p in gathered)
        return Evaluation(records, seconds, frames)

    def evaluate_window(self, item, restore, image_dir, save_img):
        """Restore one window and score the frames it keeps; returns (records, seconds of the restore)."""
        folder, names = item['folder'], item['frame_names']
        check_finite_frames(item['lq'], f'the blurry input of sequence {folder}', names)
        check_finite_frames(item['gt'], f'the sharp frames of sequence {folder}', names)
        outputs, first, seconds = restore(item['lq'])
        keep_from, keep_to = max(item['keep'][0], first), min(item['keep'][1], first + len(outputs))
        outputs = outputs[keep_from - first:keep_to - first].detach().float().cpu()
        check_finite_frames(outputs, f'the network output for sequence {folder} (diverged weights?)',
                            names[keep_from:keep_to])
        outputs.clamp_(0, 1)
        middle = item['sequence_length'] // 2
        records = []
        for offset, output in enumerate(outputs, start=keep_from):
            name = names[offset]
            record, restored, blurry, sharp = self.scorer.score(folder, name, output, item['lq'][offset],
                                                                item['gt'][offset])
            records.append(record)
            if save_img:
                imwrite(restored['img'], osp.join(image_dir, folder, f'{name}.png'))
            if item['frame_start'] + offset == middle:
                comparison = comparison_image(blurry['img'], [('restored', restored['img'])], sharp)
                imwrite(comparison, osp.join(image_dir, f'{folder}_comparison_{name}.png'))
        return records, seconds

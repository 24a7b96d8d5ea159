"""Training clips of consecutive blurry/sharp frames, for every layout in ``video_sources``."""
import random

import torch
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from memdeblur.data.dataset_options import check_dataset_options
from memdeblur.utils.errors import DataError
from memdeblur.data.video_sources import build_video_source
from memdeblur.utils.option_check import BOOL, at_least, optional

TRAIN_DATASET_OPTIONS = {'num_frame': at_least(1), 'gt_size': optional(at_least(1)), 'use_hflip': BOOL,
                         'use_rot': BOOL, 'random_reverse': BOOL}


def clip_problems(sequences, opt):
    """Every reason the sequences cannot give the training clips ``opt`` asks for (empty when they can).

    Sequences shorter than ``num_frame``, frames smaller than ``gt_size``, and rotations of
    non-square whole frames; all of them, so one run of ``tools/check_data.py`` lists them all.
    """
    num_frame, gt_size = opt['num_frame'], opt.get('gt_size')
    problems = []
    if opt.get('use_rot', True) and not gt_size:
        sizes = sorted({(seq.height, seq.width) for seq in sequences})
        if any(h != w for h, w in sizes):
            problems.append(f'use_rot needs square clips: set gt_size, or use_rot: false for frames of sizes '
                            f'{sizes}.')
    for seq in sequences:
        if len(seq) < num_frame:
            problems.append(f'Sequence {seq.name} has {len(seq)} frames, fewer than num_frame={num_frame}.')
        if gt_size and min(seq.height, seq.width) < gt_size:
            problems.append(f'Sequence {seq.name} has {seq.height}x{seq.width} frames, smaller than '
                            f'gt_size={gt_size}.')
    return problems


@DATASET_REGISTRY.register()
class VideoDeblurDataset(data.Dataset):
    """Clips of ``num_frame`` consecutive frames, one per start frame of every sequence.

    That is how the released recipe defines an epoch: every start frame of every training
    sequence once. Sequences shorter than a clip, and crops larger than a frame, are refused
    when the dataset is built.

    Args:
        opt (dict): Options:
            dataroot, layout, blur_dir, lmdb_name, split, frame_size, skip_incomplete: the source
                (``video_sources``).
            num_frame (int): Frames per clip (required).
            gt_size (int | None): Side of the random square crop; None keeps whole frames.
            use_hflip (bool): Random horizontal flips. Default: True.
            use_rot (bool): Random vertical flips and 90-degree rotations (the paper names
                rotations; the released code only flips). Default: True.
            random_reverse (bool): Random temporal reversal. Default: False.

    Returns items ``{'lq': (T, 3, h, w), 'gt': (T, 3, h, w), 'key': '<SEQ>/<first frame>'}`` in [0, 1].
    """

    @staticmethod
    def check_options(opt):
        """Refuse unknown, mistyped or missing options (``memdeblur.data.dataset_options``)."""
        check_dataset_options(opt, TRAIN_DATASET_OPTIONS, required=('num_frame', ))

    def __init__(self, opt):
        super().__init__()
        self.check_options(opt)
        self.opt = opt
        self.num_frame = opt['num_frame']
        self.gt_size = opt.get('gt_size')
        self.source = build_video_source(opt)
        problems = clip_problems(self.source.sequences, opt)
        if problems:
            raise DataError(f'{opt["dataroot"]}: ' + ' '.join(problems))
        self.clips = [(seq_idx, start) for seq_idx, seq in enumerate(self.source.sequences)
                      for start in range(len(seq) - self.num_frame + 1)]

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        seq_idx, start = self.clips[index]
        seq = self.source.sequences[seq_idx]
        key = f'{seq.name}/{seq.frame_names[start]}'
        pairs = [self.source.read(seq_idx, start + i) for i in range(self.num_frame)]
        lqs, gts = [p[0] for p in pairs], [p[1] for p in pairs]
        if self.gt_size:
            gts, lqs = paired_random_crop(gts, lqs, self.gt_size, 1, key)
        if self.opt.get('random_reverse', False) and random.random() < 0.5:
            lqs, gts = lqs[::-1], gts[::-1]
        frames = augment(lqs + gts, self.opt.get('use_hflip', True), self.opt.get('use_rot', True))
        tensors = img2tensor(frames, bgr2rgb=False, float32=True)
        return {
            'lq': torch.stack(tensors[:self.num_frame]),
            'gt': torch.stack(tensors[self.num_frame:]),
            'key': key,
        }

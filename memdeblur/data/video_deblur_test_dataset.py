"""Whole test sequences (or overlapping windows of long ones) with the names needed to save results."""
import torch
from basicsr.utils import img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from memdeblur.data.dataset_options import check_dataset_options
from memdeblur.data.video_sources import build_video_source
from memdeblur.utils.frame_windows import split_into_windows
from memdeblur.utils.option_check import INT, OptionError, OptionType, at_least

TEST_DATASET_OPTIONS = {
    'num_frame': OptionType('-1 (whole sequences) or a window of at least 1 frame',
                            lambda value: INT(value) and (value == -1 or value >= 1)),
    'overlap': at_least(0),
}


@DATASET_REGISTRY.register()
class VideoDeblurTestDataset(data.Dataset):
    """Test sequences, whole (``num_frame: -1``, the released evaluation) or in windows.

    Args:
        opt (dict): Options:
            dataroot, layout, blur_dir, lmdb_name, split, frame_size, skip_incomplete: the source
                (``video_sources``).
            num_frame (int): -1 (default) for whole sequences, else the window length; sequences
                no longer than a window are returned whole.
            overlap (int): Frames shared by consecutive windows. Default: 0.

    Returns items ``{'lq', 'gt': (T, 3, H, W) in [0, 1], 'folder': sequence name, 'frame_names':
    list of T names, 'frame_start': first frame index, 'sequence_length': frames in the sequence,
    'keep': (from, to) within the window}``.
    """

    @staticmethod
    def check_options(opt):
        """Refuse unknown, mistyped or missing options (``memdeblur.data.dataset_options``)."""
        check_dataset_options(opt, TEST_DATASET_OPTIONS, required=())
        window, overlap = opt.get('num_frame', -1), opt.get('overlap', 0)
        if window > 0 and overlap >= window:
            raise OptionError(f'datasets:{opt.get("phase", "test")}: overlap={overlap} must be smaller than '
                              f'num_frame={window}.')

    def __init__(self, opt):
        super().__init__()
        self.check_options(opt)
        self.opt = opt
        self.source = build_video_source(opt)
        window = opt.get('num_frame', -1)
        self.windows = [(seq_idx, *w)
                        for seq_idx, seq in enumerate(self.source.sequences)
                        for w in split_into_windows(len(seq), window, opt.get('overlap', 0))]

    def __len__(self):
        return len(self.windows)

    def __getitem__(self, index):
        seq_idx, start, stop, keep_from, keep_to = self.windows[index]
        seq = self.source.sequences[seq_idx]
        pairs = [self.source.read(seq_idx, i) for i in range(start, stop)]
        return {
            'lq': torch.stack(img2tensor([p[0] for p in pairs], bgr2rgb=False, float32=True)),
            'gt': torch.stack(img2tensor([p[1] for p in pairs], bgr2rgb=False, float32=True)),
            'folder': seq.name,
            'frame_names': seq.frame_names[start:stop],
            'frame_start': start,
            'sequence_length': len(seq),
            'keep': (keep_from, keep_to),
        }

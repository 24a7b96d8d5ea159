"""The blurry input's scores, computed once per frame, are keyed by the frames themselves, not by names."""
import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.metrics import calculate_psnr
from basicsr.models import build_model
from torch.utils.data import DataLoader

from memdeblur.data.synthetic import write_synthetic_gopro
from memdeblur.evaluation.scoring import FrameScorer
from memdeblur.evaluation.run_report import read_run_report
from tests.conftest import TINY_MEMDEBLUR

PSNR = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}


def test_frames_of_the_same_names_keep_their_own_blurry_scores():
    scorer = FrameScorer(PSNR)
    generator = torch.Generator().manual_seed(0)
    sharp, restored = torch.rand(3, 16, 16, generator=generator), torch.rand(3, 16, 16, generator=generator)
    near, far = ((sharp + noise * torch.randn(3, 16, 16, generator=generator)).clamp(0, 1) for noise in (0.01, 0.2))
    first = scorer.score('SEQ', '000000', restored, near, sharp)[0]['input']['psnr']
    second = scorer.score('SEQ', '000000', restored, far, sharp)[0]['input']['psnr']
    assert first > second + 10
    assert scorer.score('SEQ', '000000', restored, near, sharp)[0]['input']['psnr'] == first


def blurry_psnr(root):
    """The blurry input's PSNR over every frame of a GOPRO-layout test set, computed here from its files."""
    pairs = [(cv2.imread(str(blurry)), cv2.imread(str(blurry.parent.parent / 'sharp' / blurry.name)))
             for blurry in sorted(root.glob('*/blur_gamma/*.png'))]
    return float(np.mean([calculate_psnr(b, s, crop_border=0) for b, s in pairs]))


@pytest.mark.slow  # two validations of a tiny network, with its complexity counted
def test_two_test_sets_sharing_a_name_report_their_own_blurry_input_scores(tmp_path):
    """One options file's test_1 and test_2, both named GOPRO, with the same sequence and frame names and other
    frames: each reports its own blurry input's PSNR."""
    opt = {'name': 'shared', 'model_type': 'MemDeblurModel', 'is_train': False, 'dist': False, 'num_gpu': 0,
           'network_g': {'type': 'MemDeblurNet', **TINY_MEMDEBLUR},
           'val': {'metrics': PSNR, 'complexity': {'height': 32, 'width': 32, 'num_frames': 2}},
           'path': {key: str(tmp_path / key) for key in ('results_root', 'log', 'visualization')}}
    torch.manual_seed(0)
    model = build_model(opt)
    for seed in (1, 2):
        root = tmp_path / f'set{seed}'
        write_synthetic_gopro(str(root), {'test': 1}, num_frames=3, height=32, width=32, seed=seed, progress=False)
        sequence = (root / 'test' / f'SYN{seed:03d}_test_00').rename(root / 'test' / 'SEQ')  # the same names in both
        for kind in ('blur_gamma', 'sharp'):
            for number, frame in enumerate(sorted((sequence / kind).glob('*.png'))):
                frame.rename(frame.with_name(f'{number:06d}.png'))
        dataset = build_dataset({'name': 'GOPRO', 'type': 'VideoDeblurTestDataset', 'dataroot': str(root / 'test'),
                                 'layout': 'gopro', 'blur_dir': 'blur_gamma', 'num_frame': -1, 'phase': 'test'})
        model.validation(DataLoader(dataset), 0, None, save_img=False)
        reported = read_run_report(str(tmp_path / 'results_root' / 'GOPRO'))['blurry_input_average']['psnr']
        assert reported == pytest.approx(blurry_psnr(root / 'test'), abs=1e-9), seed

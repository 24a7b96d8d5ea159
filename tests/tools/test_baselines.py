"""Baselines in the same harness: ESTRNN, EDVR and BasicVSR++ train and test through the project's models."""
import csv
import os
import re
import shutil

import cv2
import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.models import build_model

from memdeblur.evaluation.evaluator import Evaluator
from memdeblur.evaluation.run_report import border_convention
from memdeblur.utils.padding import SpatialPadding, reflect_indices
from tests.conftest import REPO_ROOT
from tests.pipeline_helpers import in_process_training_options, run_pipeline, write_options

BASELINES = ('estrnn', 'edvr', 'basicvsrpp')


def load(name):
    with open(os.path.join(REPO_ROOT, 'options', name)) as f:
        return yaml.safe_load(f)


def model_from(name, tmp_path, **network):
    opt = in_process_training_options(name, tmp_path)
    opt['network_g'].update(network)
    torch.manual_seed(0)
    return build_model(opt)


def test_reflection_and_spatial_padding():
    assert reflect_indices(5, 2, 2) == [2, 1, 0, 1, 2, 3, 4, 3, 2]
    assert reflect_indices(1, 2, 1) == [0, 0, 0, 0]
    padding = SpatialPadding(multiple=16, min_size=40)
    assert padding.target(30, 70) == (48, 80)
    frames = torch.rand(1, 2, 3, 30, 70)
    padded = padding.pad(frames)
    assert padded.shape == (1, 2, 3, 48, 80) and torch.equal(padded[..., :30, :70], frames)
    assert padding.run(lambda x: x * 2, frames).shape == frames.shape


def test_edvr_runs_on_cpu():
    """EDVR's deformable convolution runs on a CPU (torchvision's; BasicSR's compiled operator is CUDA-only)."""
    net = build_network({'type': 'EDVR', 'num_feat': 16, 'num_frame': 3, 'deformable_groups': 4,
                         'num_extract_block': 1, 'num_reconstruct_block': 1, 'hr_in': True, 'with_predeblur': True})
    with torch.no_grad():
        out = net(torch.rand(1, 3, 3, 64, 64))
    assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()


def test_estrnn_model_trains_on_inner_frames_and_tests_every_frame_or_only_inner(tmp_path):
    model = model_from('baselines/train_estrnn_synthetic.yml', tmp_path)
    clip = {'lq': torch.rand(2, 7, 3, 32, 32), 'gt': torch.rand(2, 7, 3, 32, 32), 'key': ['a', 'b']}
    model.feed_data(clip)
    assert model.training_outputs().shape == model.training_target().shape == (2, 3, 3, 32, 32)
    assert torch.equal(model.training_target(), clip['gt'][:, 2:5])
    model.optimize_parameters(1)
    item = {'lq': torch.rand(8, 3, 32, 32), 'gt': torch.rand(8, 3, 32, 32), 'folder': 'SEQ',
            'frame_names': [f'{i:03d}' for i in range(8)], 'frame_start': 0, 'sequence_length': 8, 'keep': (0, 8)}
    evaluator = Evaluator({'psnr': {'type': 'calculate_psnr', 'crop_border': 0}})
    every, _ = evaluator.evaluate_window(item, model.restore_window, str(tmp_path), save_img=False)
    assert [r['frame'] for r in every] == item['frame_names']
    model.border_frames = 'inner'
    inner, _ = evaluator.evaluate_window(item, model.restore_window, str(tmp_path), save_img=False)
    assert [r['frame'] for r in inner] == item['frame_names'][2:6]
    assert 'inner frames only' in border_convention(model.traits.frame_margins, model.border_frames)


def test_sliding_window_model_restores_each_frame_from_its_reflected_window(tmp_path):
    model = model_from('baselines/train_edvr_synthetic.yml', tmp_path)
    net = model.get_bare_model(model.net_g).eval()
    frames = torch.rand(1, 6, 3, 24, 40)  # padded to 32x48 for EDVR (multiples of 16)
    with torch.no_grad():
        restored = model.restore(net, frames)
        padded = SpatialPadding(16).pad(frames[:, [1, 0, 0, 1, 2]])  # frame 0's window: 2 1 0 1 2
        first = net(padded)[..., :24, :40]
    assert restored.shape == frames.shape
    assert torch.allclose(restored[0, 0], first[0], atol=1e-5)
    model.feed_data({'lq': torch.rand(2, 5, 3, 32, 32), 'gt': torch.rand(2, 5, 3, 32, 32)})
    assert model.training_outputs().shape == model.training_target().shape == (2, 3, 32, 32)
    model.feed_data({'lq': torch.rand(2, 4, 3, 32, 32), 'gt': torch.rand(2, 4, 3, 32, 32)})
    with pytest.raises(ValueError, match="set the train dataset's num_frame to 5"):
        model.training_outputs()


@pytest.mark.slow
@pytest.mark.parametrize('baseline', BASELINES)
def test_each_baseline_trains_from_its_synthetic_options(baseline, synthetic_gopro, tmp_path):
    opt = load(f'baselines/train_{baseline}_synthetic.yml')
    opt['num_gpu'] = 0
    # one clip per batch, two iterations: BasicVSR++ pads 64x64 crops to its 256x256 minimum (its flow network)
    opt['datasets']['train'].update(dataroot=str(synthetic_gopro / 'train'), num_worker_per_gpu=0, gt_size=64,
                                    batch_size_per_gpu=1)
    opt['datasets']['val'].update(dataroot=str(synthetic_gopro / 'test'))
    opt['train']['total_iter'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    opt['val']['val_freq'] = 2
    result = run_pipeline('train', tmp_path, write_options(tmp_path, opt))
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert log.count('l_pix:') == 2 and '# psnr:' in log
    assert set(re.findall(r'@ (\d+) iter', log)) == {'2'}  # the final validation is labelled total_iter too
    assert (tmp_path / 'experiments' / opt['name'] / 'models' / 'net_g_2.pth').is_file()


def bsd_layout(gopro_split, root):
    """The synthetic GOPRO split rewritten in BSD's layout: <SEQ>/{Blur,Sharp}/RGB/*.png."""
    for seq in gopro_split.iterdir():
        for src, dst in (('blur_gamma', 'Blur'), ('sharp', 'Sharp')):
            shutil.copytree(seq / src, root / seq.name / dst / 'RGB')
    return root


@pytest.mark.slow
def test_estrnn_trains_and_tests_end_to_end_on_the_bsd_layout(synthetic_gopro, tmp_path):
    train, test = bsd_layout(synthetic_gopro / 'train', tmp_path / 'BSD' / 'train'), bsd_layout(
        synthetic_gopro / 'test', tmp_path / 'BSD' / 'test')
    opt = load('baselines/train_estrnn_synthetic.yml')
    opt.update(name='estrnn_bsd', num_gpu=0)
    for phase, root in (('train', train), ('val', test)):
        opt['datasets'][phase].update(dataroot=str(root), layout='bsd')
        opt['datasets'][phase].pop('blur_dir')
    opt['datasets']['train'].update(num_worker_per_gpu=0)
    opt['train']['total_iter'] = 3
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    opt['val']['val_freq'] = 100
    trained = run_pipeline('train', tmp_path, write_options(tmp_path, opt))
    assert trained.returncode == 0, trained.stderr[-3000:]
    weights = tmp_path / 'experiments' / 'estrnn_bsd' / 'models' / 'net_g_latest.pth'
    test_opt = load('baselines/test_estrnn_b15c80_bsd_2ms16ms.yml')
    test_opt.update(name='estrnn_bsd_test', num_gpu=0, network_g=opt['network_g'])
    test_opt['datasets']['test'].update(dataroot=str(test))
    test_opt['path']['pretrain_network_g'] = str(weights)
    test_opt['val']['complexity'] = {'height': 64, 'width': 96, 'num_frames': 8}
    tested = run_pipeline('test', tmp_path, write_options(tmp_path, test_opt, 'test.yml'))
    assert tested.returncode == 0, tested.stderr[-3000:]
    results = tmp_path / 'results' / 'estrnn_bsd_test'
    with open(results / 'BSD_2ms16ms_test_metrics.csv') as f:
        assert list(csv.DictReader(f))[-1]['frames'] == '8'  # every frame of the 8-frame sequence
    assert 'every frame scored' in (results / 'BSD_2ms16ms_test_metrics.md').read_text()
    assert len(list((results / 'visualization' / 'BSD_2ms16ms_test').rglob('*.png'))) == 8 + 1  # + comparison


def write_untrained(name, tmp_path, synthetic_gopro):
    """A test options file for the synthetic baseline ``name`` with freshly initialised weights."""
    opt = load(name)
    torch.manual_seed(0)
    weights = tmp_path / f'{opt["name"]}.pth'
    torch.save({'params': build_network(opt['network_g']).state_dict()}, weights)
    opt.update(num_gpu=0)
    opt['path']['pretrain_network_g'] = str(weights)
    opt['val']['complexity'] = {'height': 64, 'width': 96, 'num_frames': 8}
    return write_options(tmp_path, opt, f'{opt["name"]}.yml')


@pytest.mark.slow
def test_compare_tool_tables_and_labelled_images(synthetic_gopro, tmp_path):
    import subprocess
    import sys
    files = [write_untrained(name, tmp_path, synthetic_gopro) for name in (
        'test_memdeblur_synthetic.yml', 'baselines/test_estrnn_synthetic.yml', 'baselines/test_edvr_synthetic.yml',
        'baselines/test_basicvsrpp_synthetic.yml')]
    out = tmp_path / 'compare'
    command = [sys.executable, 'tools/compare.py', '--dataroot', str(synthetic_gopro / 'test'), '--out', str(out)]
    for path in files:
        command += ['-opt', path]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                            env={**os.environ, 'PYTHONPATH': REPO_ROOT})
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / 'comparison.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['model'] for r in rows] == ['memdeblur_synthetic', 'estrnn_synthetic', 'edvr_synthetic',
                                          'basicvsrpp_synthetic', 'blurry input']
    assert all(r['frames scored'] == '8' for r in rows)
    for row in rows[:-1]:
        assert float(row['psnr']) > 0 and float(row['psnr_released']) > 0 and row['params'].endswith(' M')
        assert float(row['ms/frame']) > 0 and 'MiB' in row['peak memory'] and float(row['GMACs (exact)']) > 0
    images = list((out / 'SyntheticGOPRO_test').glob('*.png'))
    assert len(images) == 1
    image = cv2.imread(str(images[0]))
    assert image.shape[1] == 6 * 96 and image.shape[0] > 2 * 64  # six labelled panels, zoomed crops below
    again = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    assert again.returncode != 0 and 'exists; pass --force to replace it' in again.stderr

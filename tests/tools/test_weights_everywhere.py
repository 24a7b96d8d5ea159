"""One options file gives the same weights in every tool: ``path:param_key_g`` and ``path:strict_load_g`` as
``tools/test.py`` (BasicSR's model) reads them, in ``tools/deblur_video.py`` too
(``memdeblur.networks.checkpoint.network_from_options``)."""
import cv2
import numpy as np
import pytest
import torch

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from tests.conftest import TINY_MEMDEBLUR
from tests.pipeline_helpers import load_options, run_pipeline, run_tool, write_options

pytestmark = pytest.mark.slow  # one test pipeline in a fresh interpreter


def tiny_weights(seed):
    torch.manual_seed(seed)
    return MemDeblurNet(**TINY_MEMDEBLUR).state_dict()


def read_pngs(folder):
    paths = sorted(folder.glob('*.png'))
    return [p.name for p in paths], np.stack([cv2.imread(str(p)) for p in paths]).astype(np.int16)


def test_test_and_deblur_video_restore_with_the_same_ema_weights(synthetic_gopro, tmp_path):
    """A checkpoint as BasicSR saves it with EMA (params and params_ema, different), each with a key the network
    lacks: with param_key_g: params_ema and strict_load_g: false both tools load the EMA weights, ignoring the key,
    and restore the same frames; what params gives is clearly different."""
    extra = {'not_in_the_network.weight': torch.ones(3)}
    params, ema = {**tiny_weights(0), **extra}, {**tiny_weights(1), **extra}
    checkpoint = tmp_path / 'ema.pth'
    torch.save({'params': params, 'params_ema': ema}, checkpoint)
    params_only = tmp_path / 'params_only.pth'
    torch.save({'params': params}, params_only)
    opt = load_options('test_memdeblur_synthetic.yml')
    opt.update(name='ema', num_gpu=0)
    opt['datasets']['test']['dataroot'] = str(synthetic_gopro / 'test')
    opt['network_g'].update(TINY_MEMDEBLUR)
    opt['path'].update(pretrain_network_g=str(checkpoint), param_key_g='params_ema', strict_load_g=False)
    opt['val'].update(complexity={'height': 32, 'width': 32, 'num_frames': 2},
                      metrics={'psnr': opt['val']['metrics']['psnr']})
    opt_path = write_options(tmp_path, opt)

    tested = run_pipeline('test', tmp_path, opt_path)
    assert tested.returncode == 0, tested.stderr[-3000:]
    names, by_test = read_pngs(tmp_path / 'results' / 'ema' / 'visualization' / 'SyntheticGOPRO_test'
                               / 'SYN001_test_00')
    frames = synthetic_gopro / 'test' / 'SYN001_test_00' / 'blur_gamma'
    restored = {}
    for label, extra_args in (('options', []), ('params', ['--ckpt', params_only])):
        out = tmp_path / f'deblurred_{label}'
        result = run_tool('deblur_video.py', frames, '-o', out, '--opt', opt_path, '--plain', '--window', len(names),
                          *extra_args)
        assert result.returncode == 0, result.stderr[-3000:]
        out_names, restored[label] = read_pngs(out)
        assert out_names == names
    assert 'not_in_the_network.weight' in tested.stdout + tested.stderr  # non-strict: the ignored key is logged
    # the whole sequence in one window, the plain network: equal up to float rounding
    assert np.abs(restored['options'] - by_test).max() <= 1 and (restored['options'] == by_test).mean() > 0.99
    assert np.abs(restored['params'] - by_test).mean() > 5  # the other weights would show


def test_strict_loading_refuses_the_same_checkpoint_in_both_tools(synthetic_gopro, tmp_path):
    """strict_load_g: true (the default): a key the network lacks stops both tools, naming it."""
    torch.save({'params_ema': {**tiny_weights(1), 'not_in_the_network.weight': torch.ones(3)}},
               tmp_path / 'ema.pth')
    opt = load_options('test_memdeblur_synthetic.yml')
    opt.update(name='strict', num_gpu=0)
    opt['datasets']['test']['dataroot'] = str(synthetic_gopro / 'test')
    opt['network_g'].update(TINY_MEMDEBLUR)
    opt['path'].update(pretrain_network_g=str(tmp_path / 'ema.pth'), param_key_g='params_ema')
    del opt['path']['strict_load_g']
    opt_path = write_options(tmp_path, opt)
    tested = run_pipeline('test', tmp_path, opt_path)
    deblurred = run_tool('deblur_video.py', synthetic_gopro / 'test', '-o', tmp_path / 'out', '--opt', opt_path)
    for result in (tested, deblurred):
        assert result.returncode != 0
        assert 'ema.pth' in result.stderr and '1 not in the network: not_in_the_network.weight' in result.stderr
    assert not (tmp_path / 'out').exists()

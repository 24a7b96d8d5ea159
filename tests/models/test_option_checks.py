"""Misspelt, mistyped and missing options are refused with the option named, never silently ignored."""
from pathlib import Path

import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.data import build_dataset
from basicsr.losses import build_loss
from basicsr.models import build_model

from memdeblur.data.data_check import DATASET_TYPES
from memdeblur.models.model_options import check_model_options
from memdeblur.utils.option_check import OptionError
from tests.conftest import REPO_ROOT, TINY_MEMDEBLUR
from tests.pipeline_helpers import in_process_training_options


def dataset_options(root, **extra):
    return {'name': 'train', 'type': 'VideoDeblurDataset', 'phase': 'train', 'dataroot': str(root / 'train'),
            'layout': 'gopro', 'num_frame': 4, 'gt_size': 32, **extra}


@pytest.mark.parametrize('typo, suggestion', [('num_fram', 'num_frame'), ('use_hfilp', 'use_hflip'),
                                              ('blur_dirr', 'blur_dir'), ('gt_szie', 'gt_size')])
def test_misspelt_dataset_options_name_the_closest_valid_one(synthetic_gopro, typo, suggestion):
    with pytest.raises(OptionError, match=rf"datasets:train \(VideoDeblurDataset\): unknown option '{typo}'; "
                       rf"did you mean '{suggestion}'\?"):
        build_dataset(dataset_options(synthetic_gopro, **{typo: 4}))


def test_wrong_types_and_missing_keys_name_the_option(synthetic_gopro):
    with pytest.raises(OptionError, match=r"option 'num_frame' must be an integer of at least 1, got 'eight'"):
        build_dataset(dataset_options(synthetic_gopro, num_frame='eight'))
    with pytest.raises(OptionError, match=r"option 'use_hflip' must be true or false, got 'yes please'"):
        build_dataset(dataset_options(synthetic_gopro, use_hflip='yes please'))
    with pytest.raises(OptionError, match=r"option 'blur_dir' must be one of 'blur', 'blur_gamma', got 'blurry'"):
        build_dataset(dataset_options(synthetic_gopro, blur_dir='blurry'))
    opt = dataset_options(synthetic_gopro)
    del opt['num_frame']
    with pytest.raises(OptionError, match=r"option 'num_frame' is required \(an integer of at least 1\)"):
        build_dataset(opt)
    test_opt = {'name': 'val', 'type': 'VideoDeblurTestDataset', 'dataroot': str(synthetic_gopro / 'test'),
                'overlp': 2}
    with pytest.raises(OptionError, match=r"unknown option 'overlp'; did you mean 'overlap'\?"):
        build_dataset(test_opt)


def test_network_and_loss_options_are_checked():
    with pytest.raises(OptionError, match=r"MemDeblurNet options: unknown option 'mid_channel'; did you mean "
                       r"'mid_channels'\?"):
        build_network({'type': 'MemDeblurNet', 'mid_channel': 16})
    with pytest.raises(OptionError, match=r"option 'num_blocks_forward' must be an integer of at least 0, got '30'"):
        build_network({'type': 'MemDeblurNet', 'num_blocks_forward': '30'})
    with pytest.raises(OptionError, match=r"option 'scales' must be a list of integers of at least 1, got "
                       r"\[4, 2, 1.5\]"):
        build_network({'type': 'MemDeblurNet', 'scales': [4, 2, 1.5]})
    with pytest.raises(OptionError, match=r"option 'mem_every' must be a list of integers of at least 1, got "
                       r"\[1, 0, 5\]"):  # a period of 0 would be a modulo by zero at the first frame
        build_network({'type': 'MemDeblurNet', 'mem_every': [1, 0, 5]})
    with pytest.raises(OptionError, match=r"option 'n_blocks' must be an integer of at least 1, got -2"):
        build_network({'type': 'ESTRNNNet', 'n_blocks': -2})
    with pytest.raises(OptionError, match=r"unknown option 'scale_weight'; did you mean 'scale_weights'\?"):
        build_loss({'type': 'MultiScaleCharbonnierLoss', 'scale_weight': [1, 2, 2]})
    with pytest.raises(OptionError, match=r"option 'eps' must be a number .*got '1e-3'"):
        build_loss({'type': 'MultiScaleCharbonnierLoss', 'eps': '1e-3'})
    assert build_network({'type': 'MemDeblurNet', **TINY_MEMDEBLUR, 'top_k': None}).top_k is None


def training_options(tmp_path):
    return in_process_training_options('train_memdeblur_synthetic.yml', tmp_path)


@pytest.mark.parametrize('section, typo, suggestion', [('train', 'max_nrom', 'max_norm'),
                                                       ('train', 'ema_decy', 'ema_decay'),
                                                       ('val', 'val_frq', 'val_freq'),
                                                       ('path', 'pretrain_network', 'pretrain_network_g'),
                                                       (None, 'manual_sed', 'manual_seed')])
def test_misspelt_model_options_are_refused(tmp_path, section, typo, suggestion):
    opt = training_options(tmp_path)
    (opt[section] if section else opt)[typo] = 1
    with pytest.raises(OptionError, match=rf"unknown option '{typo}'; did you mean '{suggestion}'\?"):
        build_model(opt)


def test_learning_rate_written_as_text_is_refused(tmp_path):
    opt = training_options(tmp_path)
    opt['train']['optim_g']['lr'] = '5e-4'  # what YAML makes of `lr: 5e-4`
    with pytest.raises(OptionError, match=r"train:optim_g: 'lr' is the text '5e-4'; write a number"):
        build_model(opt)
    opt = training_options(tmp_path)
    opt['train']['total_iter'] = 'many'
    with pytest.raises(OptionError, match=r"option 'total_iter' must be an integer, got 'many'"):
        build_model(opt)
    assert isinstance(build_model(training_options(tmp_path)).net_g, torch.nn.Module)


@pytest.mark.parametrize('name', sorted(str(p.relative_to(Path(REPO_ROOT, 'options')))
                                         for p in Path(REPO_ROOT, 'options').rglob('*.yml')))
def test_every_shipped_options_file_passes_the_checks(name):
    with open(f'{REPO_ROOT}/options/{name}') as f:
        opt = yaml.safe_load(f)
    check_model_options(opt)
    for phase, dataset_opt in opt['datasets'].items():
        dataset_type = dataset_opt['type']
        DATASET_TYPES[dataset_type].check_options({'phase': phase, **dataset_opt})
    network_opt = dict(opt['network_g'])
    if network_opt['type'] == 'MemDeblurNet':  # the full-size network is built elsewhere; keep this quick
        network_opt.update(mid_channels=8, num_blocks_forward=1, num_blocks_backward=1)
    build_network(network_opt)
    if 'train' in opt:
        build_loss(opt['train']['pixel_opt'])

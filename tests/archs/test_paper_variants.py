"""The paper's ablation variants (Tables 1, 4-7): each builds, runs, trains from its options file, and
changes exactly the parts of the network its switch names; the released configuration is untouched."""
import random
from pathlib import Path

import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.data import build_dataset
from basicsr.models import build_model

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from tests.conftest import REPO_ROOT, TINY_MEMDEBLUR
from tests.pipeline_helpers import in_process_training_options

PAPER = Path(REPO_ROOT, 'options', 'paper')
ROWS = sorted(p.stem[len('train_'):] for p in PAPER.glob('train_*.yml'))
SLIM = dict(bidirectional=False, scales=[1], mem_every=[5])
VARIANTS = {
    'released': {},
    'slim': SLIM,
    'no_memory': dict(use_memory=False),
    'baseline': dict(use_memory=False, bidirectional=False, scales=[1], mem_every=[5]),
    'wo_deblur': dict(deblur_branch=False, memory_values='restored', **SLIM),
    'temp': dict(temporary_memory=True, **SLIM),
    'hidden_only': dict(memory_values='hidden', **SLIM),
    'restored_only': dict(memory_values='restored', **SLIM),
    'joint': dict(memory_values='joint', **SLIM),
    'joint_bidirectional_multiscale': dict(memory_values='joint'),
}


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def tiny(**options):
    torch.manual_seed(0)
    return MemDeblurNet(**{**TINY_MEMDEBLUR, **options})


def prefixes(net):
    """Top-level and memory-branch module names that own parameters."""
    names = set()
    for name, _ in net.named_parameters():
        parts = name.split('.')
        names.add('.'.join(parts[:2]) if parts[0] == 'memory' else parts[0])
    return names


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_every_variant_runs_forward_and_backward_in_both_modes(variant):
    net = tiny(**VARIANTS[variant])
    clip = torch.rand(2, 6, 3, 32, 48)
    outputs = net.train()(clip, return_scales=True)
    assert len(outputs) == len(net.scales) and outputs[-1].shape == clip.shape
    sum(o.mean() for o in outputs).backward()
    no_grad = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, no_grad
    with torch.no_grad():
        assert net.eval()(clip[:, :, :, :30, :45]).shape == (2, 6, 3, 30, 45)


def test_each_switch_changes_the_parameter_set_as_documented():
    released = prefixes(tiny())
    memory = {'memory.key_encoder', 'memory.key_proj', 'memory.value_encoder_mem', 'memory.decoder_mem',
              'memory.value_encoder_feat', 'memory.decoder_feat'}
    assert released == {'encoder', 'decoder', 'backward_trunk', 'forward_input_convs', 'forward_trunk', 'fusion'} | memory
    assert prefixes(tiny(use_memory=False)) == released - memory
    assert prefixes(tiny(**SLIM)) == released - {'backward_trunk'}
    assert tiny(**SLIM).fusion.weight.shape == (16, 16, 1, 1) and tiny().fusion.weight.shape == (16, 32, 1, 1)
    # input convs: [x, backward read-out, (coarser), x_prev, h read-out, h_prev, r read-out] -> what remains
    assert tiny().forward_input_convs[0][0].in_channels == 48 + 16 + 48 + 16 + 16 + 16
    assert tiny(use_memory=False).forward_input_convs[0][0].in_channels == 48 + 48 + 16
    assert tiny(use_memory=False).backward_trunk.main[0].in_channels == 48 + 48 + 16
    assert tiny(**SLIM, memory_values='hidden').forward_input_convs[0][0].in_channels == 48 + 48 + 16 + 16
    assert prefixes(tiny(**SLIM, memory_values='hidden')) == released - {'backward_trunk', 'memory.value_encoder_mem',
                                                                        'memory.decoder_mem'}
    assert prefixes(tiny(**SLIM, memory_values='restored')) == released - {
        'backward_trunk', 'memory.value_encoder_feat', 'memory.decoder_feat'}
    joint = prefixes(tiny(**SLIM, memory_values='joint'))
    assert joint == released - {'backward_trunk', 'memory.value_encoder_feat', 'memory.decoder_feat',
                                'memory.value_encoder_mem', 'memory.decoder_mem'} | {
                                    'memory.value_encoder_joint', 'memory.decoder_joint'}
    assert tiny(**SLIM, memory_values='joint').memory.value_encoder_joint.trunk.main[0].in_channels == 48 + 48 + 16
    assert prefixes(tiny(memory_values='joint')) >= {'memory.value_encoder_feat', 'memory.decoder_feat'}  # backward
    assert prefixes(tiny(deblur_branch=False, memory_values='restored', **SLIM)) == {
        'encoder', 'decoder', 'memory.key_encoder', 'memory.key_proj', 'memory.value_encoder_mem',
        'memory.decoder_mem'}
    # switches that change behaviour, not parameters
    assert prefixes(tiny(temporary_memory=True, **SLIM)) == prefixes(tiny(**SLIM))
    assert [p.shape for p in tiny(**{**SLIM, 'mem_every': [1]}).parameters()] == [
        p.shape for p in tiny(**SLIM).parameters()]


def test_temporary_memory_and_memorisation_period_change_the_outputs():
    clip = torch.rand(1, 7, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        slim = tiny(**SLIM).double().eval()(clip)
        temp = tiny(temporary_memory=True, **SLIM).double().eval()(clip)
        every = tiny(**{**SLIM, 'mem_every': [1]}).double().eval()(clip)
    assert torch.equal(slim[:, :2], temp[:, :2])  # frames 0 and 1 read the same bank (frame 0)
    assert (slim[:, 2:] - temp[:, 2:]).abs().max() > 1e-6  # from frame 2 on the slot holds frame 1
    assert torch.equal(slim[:, :2], every[:, :2]) and (slim - every).abs().max() > 1e-6


def test_inconsistent_variants_are_refused():
    with pytest.raises(ValueError, match='deblur_branch: false .* needs use_memory: true, bidirectional: false'):
        tiny(deblur_branch=False)
    from memdeblur.utils.option_check import OptionError
    with pytest.raises(OptionError, match="memory_values' must be one of 'separate', 'hidden', 'restored', 'joint'"):
        build_network({'type': 'MemDeblurNet', 'memory_values': 'both'})


def test_table_rows_are_the_released_recipe_but_for_the_network():
    """Every paper row trains with the released recipe; only name, network and the loss's scale weights differ."""
    released = load(Path(REPO_ROOT, 'options', 'train_memdeblur_gopro_ds.yml'))
    released_test = load(Path(REPO_ROOT, 'options', 'test_memdeblur_gopro_ds.yml'))
    assert len(ROWS) == 17
    for row in ROWS:
        opt, test = load(PAPER / f'train_{row}.yml'), load(PAPER / f'test_{row}.yml')
        assert opt['name'] == test['name'] == row
        assert test['network_g'] == opt['network_g'] and test['path']['pretrain_network_g'].startswith(
            f'experiments/{row}/')
        weights = opt['train']['pixel_opt']['scale_weights']
        assert weights == ([1, 2, 2] if len(opt['network_g']['scales']) == 3 else [1])
        for key in ('datasets', 'path', 'val', 'logger', 'dist_params'):
            assert opt[key] == released[key], (row, key)
        assert {k: v for k, v in opt['train'].items() if k != 'pixel_opt'} == {
            k: v for k, v in released['train'].items() if k != 'pixel_opt'}
        assert {k: v for k, v in test.items() if k not in ('name', 'network_g', 'path')} == {
            k: v for k, v in released_test.items() if k not in ('name', 'network_g', 'path')}
    assert load(PAPER / 'train_table1_ours.yml')['network_g'] == released['network_g']


@pytest.mark.parametrize('row', ROWS)
def test_every_table_row_trains_two_iterations_on_the_synthetic_set(row, synthetic_gopro, tmp_path):
    opt = in_process_training_options(f'paper/train_{row}.yml', tmp_path)
    train_opt = {**opt['datasets']['train'], 'phase': 'train', 'dataroot': str(synthetic_gopro / 'train'),
                 'num_frame': 3, 'gt_size': 32}  # batch 2: train-mode BatchNorm of 1x1 coarse key maps needs 2
    torch.manual_seed(0)
    random.seed(0)  # the dataset's random crops (BasicSR draws them with random): the same clips every run
    model = build_model(opt)
    dataset = build_dataset(train_opt)
    for iteration in (1, 2):
        batch = torch.utils.data.default_collate([dataset[2 * iteration], dataset[2 * iteration + 1]])
        model.feed_data(batch)
        model.optimize_parameters(iteration)
        assert torch.isfinite(torch.tensor(model.log_dict['l_pix'])), row

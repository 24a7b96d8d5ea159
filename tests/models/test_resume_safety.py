"""Resuming from a training state that does not belong to the run: named as such, and settings the state
overrides said."""
import pytest
import torch
from basicsr.models import build_model

from memdeblur.networks.checkpoint import CheckpointError
from tests.conftest import TINY_MEMDEBLUR
from tests.pipeline_helpers import in_process_training_options


def tiny_model(root, resume_state=None, network=TINY_MEMDEBLUR, **optim):
    opt = in_process_training_options('train_memdeblur_synthetic.yml', root)
    opt['network_g'].update(network)
    opt['train']['optim_g'].update(optim)
    opt['path']['resume_state'] = resume_state and str(resume_state)
    torch.manual_seed(0)
    return build_model(opt)


def saved_state(root, **optim):
    """A state (and its network checkpoint) after one optimizer step of the tiny network (Adam's moments made), as
    a run saves them at iteration 1."""
    model = tiny_model(root, **optim)
    for param in model.net_g.parameters():
        param.grad = torch.full_like(param, 1e-3)
    model.optimizer_g.step()
    model.save_training_state(0, 1)
    model.save_network(model.net_g, 'net_g', 1)
    return root / 'training_states' / '1.state', root / 'models' / 'net_g_1.pth'


@pytest.mark.parametrize('network, expected', [
    ({'mid_channels': 8}, r'52 parameter\(s\) of another shape \(state vs this run\): decoder\.0\.weight: '
                          r'\(16, 8, 3, 3\) vs \(8, 4, 3, 3\)'),
    ({'num_blocks_forward': 3}, r'parameters per optimizer group: \[\d+\] in the state, \[\d+\] in this run'),
], ids=['same count, other shapes', 'other count'])
def test_a_state_of_another_network_is_named(tmp_path, network, expected):
    state_path, _ = saved_state(tmp_path / 'old')
    state = torch.load(state_path, weights_only=True)
    other = tiny_model(tmp_path / 'new', state_path, {**TINY_MEMDEBLUR, **network})
    with pytest.raises(CheckpointError, match=rf"Training state '{state_path}' was saved by a run of another "
                                              rf'network or configuration than MemDeblurNet of these options: '
                                              + expected):
        other.resume_training(state)


def test_resuming_names_the_state_when_the_network_saved_with_it_does_not_fit(tmp_path):
    """BasicSR loads models/net_g_<iter>.pth when resuming: a state saved by another configuration of this
    experiment fails there, and the error names the state, not only a file the user never gave."""
    state_path, checkpoint = saved_state(tmp_path)
    opt = in_process_training_options('train_memdeblur_synthetic.yml', tmp_path)
    opt['network_g'].update(TINY_MEMDEBLUR, mid_channels=8)
    opt['path'].update(resume_state=str(state_path), pretrain_network_g=str(checkpoint))
    with pytest.raises(CheckpointError, match=rf"Cannot resume from training state '{state_path}': the network saved "
                                              rf'with it, {checkpoint}, is unusable for this run .* does not fit'):
        build_model(opt)


def test_resuming_says_which_learning_rate_is_used(tmp_path, basicsr_log):
    """train:optim_g:lr changed before resuming: the state's rate and schedule are kept, and the log says so."""
    state_path, _ = saved_state(tmp_path / 'old', lr=2e-4)
    resumed = tiny_model(tmp_path / 'new', state_path, lr=1e-3)
    resumed.resume_training(torch.load(state_path, weights_only=True))
    assert resumed.optimizers[0].param_groups[0]['lr'] == pytest.approx(2e-4)
    (warning, ) = [m for m in basicsr_log if m.startswith(f'Resuming from {state_path}')]
    assert 'the options set initial_lr 0.001 for parameter group 0, the state initial_lr 0.0002' in warning
    assert "the state's values and learning-rate schedule are used" in warning
    same = tiny_model(tmp_path / 'same', state_path, lr=2e-4)
    same.resume_training(torch.load(state_path, weights_only=True))
    assert len([m for m in basicsr_log if m.startswith('Resuming from')]) == 1  # nothing to say when they agree

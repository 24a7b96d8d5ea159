"""The released training recipe is exact: one step of options/train_memdeblur_gopro_ds.yml through BasicSR's
``build_model`` matches one step of the authors' trainer (loss, gradients before clipping, Adam update)."""
import pytest
import torch
from basicsr.models import build_model

from memdeblur.networks.checkpoint import convert_official_state_dict, load_pretrained, official_key_rules
from tests.conftest import fixture_path
from tests.pipeline_helpers import in_process_training_options


@pytest.fixture(scope='module')
def step():
    return torch.load(fixture_path('official_train_step', 'train_step.pt'), map_location='cpu', weights_only=True)


def released_recipe_model(tmp_path, net):
    """The model of options/train_memdeblur_gopro_ds.yml as BasicSR builds it, network shrunk to ``net``."""
    opt = in_process_training_options('train_memdeblur_gopro_ds.yml', tmp_path)
    opt['network_g'].update(net)
    return build_model(opt)


def test_one_step_of_the_released_recipe_matches_the_authors_trainer(step, tmp_path, monkeypatch):
    model = released_recipe_model(tmp_path, step['net'])
    assert model.opt['train']['max_norm'] == step['max_norm'] and model.optimizer_g.defaults['lr'] == step['lr']
    net = load_pretrained(model.net_g, fixture_path('official_train_step', 'memdeblur_before_step.pth.tar'))
    net.double().train()
    # our parameter name -> the authors'
    ours = convert_official_state_dict({k: k for k in step['grad_stats']}, official_key_rules(net))
    assert sorted(ours) == sorted(name for name, _ in net.named_parameters())
    before = {name: p.detach().clone() for name, p in net.named_parameters()}

    gradients = {}
    clip = torch.nn.utils.clip_grad_norm_

    def record_then_clip(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        gradients.update({name: p.grad.clone() for name, p in net.named_parameters()})
        return clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, 'clip_grad_norm_', record_then_clip)
    model.feed_data({'lq': step['lq'], 'gt': step['gt']})
    model.optimize_parameters(1)

    assert model.log_dict['l_pix'] == pytest.approx(step['loss'], rel=1e-9)
    assert model.log_dict['grad_norm'] == pytest.approx(step['grad_norm'], rel=1e-7)
    assert step['grad_norm'] > step['max_norm']  # the fixture exercises clipping
    for name, official in ours.items():
        norm, total = step['grad_stats'][official]
        assert gradients[name].norm().item() == pytest.approx(norm, rel=1e-6, abs=1e-9), name
        assert gradients[name].sum().item() == pytest.approx(total, rel=1e-6, abs=1e-9), name
        change = (net.get_parameter(name).detach() - before[name]).sum().item()
        # abs 1e-9: the convolution biases right before a train-mode BatchNorm have gradients of pure
        # rounding noise (~1e-13), which Adam's normalisation turns into noise updates of ~1e-10; a
        # real difference moves an update by up to lr = 5e-4 per element
        assert change == pytest.approx(step['step_sums'][official], rel=1e-6, abs=1e-9), name


def test_equal_scale_weights_would_not_match(step, tmp_path):
    """The plain sum (the spec's earlier reading) gives another loss: the fixture tells them apart."""
    model = released_recipe_model(tmp_path, step['net'])
    load_pretrained(model.net_g, fixture_path('official_train_step', 'memdeblur_before_step.pth.tar'))
    model.net_g.double()
    model.cri_pix.scale_weights = None
    model.feed_data({'lq': step['lq'], 'gt': step['gt']})
    model.optimize_parameters(1)
    assert abs(model.log_dict['l_pix'] - step['loss']) > 1e-3

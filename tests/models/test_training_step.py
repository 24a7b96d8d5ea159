"""The training step's options: precision, channels-last, compile; BasicSR's fix_flow; non-finite steps."""
import re

import pytest
import torch
from basicsr.models import build_model

from memdeblur.archs.memory_bank import MemoryBank
from memdeblur.models.training_step import check_compile_support
from memdeblur.utils.option_check import OptionError
from tests.conftest import TINY_MEMDEBLUR
from tests.pipeline_helpers import (in_process_training_options, load_options, run_pipeline, run_tool,
                                    tiny_training_options, write_options)


def tiny_model(tmp_path, options='train_memdeblur_synthetic.yml', network=TINY_MEMDEBLUR, **train):
    opt = in_process_training_options(options, tmp_path)
    opt['network_g'].update(network)
    opt['train'].update(train)
    torch.manual_seed(0)
    return build_model(opt)


def batch(frames=3, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {'lq': torch.rand(2, frames, 3, size, size, generator=generator),
            'gt': torch.rand(2, frames, 3, size, size, generator=generator)}


def one_step(model, data):
    """One step from the model's current weights; returns (loss, grad_norm, parameters after the step)."""
    model.feed_data(data)
    model.optimize_parameters(1)
    net = model.get_bare_model(model.net_g)
    return model.log_dict['l_pix'], model.log_dict['grad_norm'], {k: v.detach().clone() for k, v in
                                                                  net.named_parameters()}


def cosine_of_updates(before, after_a, after_b):
    """Cosine between two steps' updates of all parameters. (Adam's first step moves every weight by about the
    learning rate whatever its gradient's size, so element-wise bounds would measure rounding of tiny gradients.)"""
    moved = [torch.cat([(after[k] - before[k]).flatten() for k in before]) for after in (after_a, after_b)]
    return torch.nn.functional.cosine_similarity(*moved, dim=0).item()


def test_bfloat16_step_keeps_float32_master_weights_and_follows_float32(tmp_path):
    loss32, norm32, after32 = one_step(tiny_model(tmp_path / 'a'), batch())
    model = tiny_model(tmp_path / 'b', precision='bfloat16')
    net = model.get_bare_model(model.net_g)
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    loss16, norm16, after16 = one_step(model, batch())
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in net.parameters())
    assert all(v.dtype == torch.float32 for v in net.state_dict().values() if v.is_floating_point())
    assert loss16 == pytest.approx(loss32, rel=2e-2) and norm16 == pytest.approx(norm32, rel=0.1)
    assert cosine_of_updates(before, after32, after16) > 0.9  # the update points the way float32's does


def test_channels_last_step_is_float32_up_to_rounding_and_saves_plain_checkpoints(tmp_path):
    loss, norm, after = one_step(tiny_model(tmp_path / 'a'), batch())
    model = tiny_model(tmp_path / 'b', channels_last=True)
    net = model.get_bare_model(model.net_g)
    assert net.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    loss_cl, norm_cl, after_cl = one_step(model, batch())
    assert loss_cl == pytest.approx(loss, rel=1e-5) and norm_cl == pytest.approx(norm, rel=1e-4)
    assert cosine_of_updates(before, after, after_cl) > 0.999
    model.save_network(model.net_g, 'net_g', 1)
    saved = torch.load(tmp_path / 'b' / 'models' / 'net_g_1.pth', weights_only=True)['params']
    assert all(v.is_contiguous() for v in saved.values())


def test_training_bank_computes_attention_in_float32_under_autocast():
    """Large keys (squared distances in the hundreds) need float32 logits: bfloat16 rounds them by several units."""
    generator = torch.Generator().manual_seed(0)
    keys, query = (torch.randn(1, 64, 4, 4, generator=generator) * 3 for _ in range(2))
    values = [torch.randn(1, 8, 4, 4, generator=generator)]

    def read(bank):
        bank.add(keys, values)
        return bank.read(query)[0].float()

    exact = read(MemoryBank())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        kept = read(MemoryBank(float32_affinity=True))
        rounded = read(MemoryBank())
    assert (kept - exact).abs().max() < 0.05 < (rounded - exact).abs().max()


def test_non_finite_gradients_stop_training_naming_the_iteration(tmp_path):
    model = tiny_model(tmp_path)
    weight = model.get_bare_model(model.net_g).encoder[0].weight
    weight.register_hook(lambda grad: grad * float('inf'))
    model.feed_data(batch())
    with pytest.raises(FloatingPointError, match='Iteration 7: the gradient norm is (inf|nan)'):
        model.optimize_parameters(7)


def test_loss_scaler_skips_overflowing_steps_and_resumes_with_its_scale(tmp_path, basicsr_log):
    """float16's loss scaling, run with a CPU scaler: a step whose gradients overflow is skipped (weights unchanged,
    no error), the scale halved and the iteration logged; the training state keeps the scale for a resumed run."""
    model = tiny_model(tmp_path / 'a')
    model.precision.scaler = torch.amp.GradScaler('cpu', init_scale=1024.0)
    net = model.get_bare_model(model.net_g)
    net.encoder[0].weight.register_hook(lambda grad: grad * float('inf'))  # an overflow in one weight's gradient
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    model.feed_data(batch())
    model.optimize_parameters(3)
    assert all(torch.equal(before[k], v) for k, v in net.named_parameters())
    assert any('Iteration 3: float16 gradients overflowed; step skipped, loss scale lowered to 512.' in m
               for m in basicsr_log)
    model.save_training_state(0, 3)
    state = torch.load(tmp_path / 'a' / 'training_states' / '3.state', weights_only=True)
    assert state['grad_scaler']['scale'] == 512.0
    resumed = tiny_model(tmp_path / 'b')
    resumed.precision.scaler = torch.amp.GradScaler('cpu')
    resumed.resume_training(state)
    assert resumed.precision.scaler.get_scale() == 512.0


def test_float16_training_needs_a_gpu(tmp_path):
    """Refused when the options are read, before BasicSR makes an experiment folder; and by the model itself."""
    opt_path = write_options(tmp_path, {**load_options('train_memdeblur_synthetic.yml'), 'num_gpu': 0})
    result = run_tool('train.py', '-opt', opt_path, '--force_yml', 'train:precision=float16')
    assert result.returncode == 1 and f'{opt_path}: train:precision: float16 is for GPUs' in result.stderr
    with pytest.raises(OptionError, match='train.precision: float16 is for GPUs'):
        tiny_model(tmp_path / 'model', precision='float16')


def test_compile_without_a_compiler_is_refused_clearly(monkeypatch):
    monkeypatch.delenv('CXX', raising=False)
    monkeypatch.setattr('shutil.which', lambda name: None)
    with pytest.raises(OptionError, match='needs a C\\+\\+ compiler'):
        check_compile_support(torch.device('cpu'))


def test_fix_flow_freezes_spynet_as_basicsr_does(tmp_path):
    """train.fix_flow: N (the BasicVSR++ GOPRO recipes: 5000) trains without SpyNet for iterations 1..N-1."""
    model = tiny_model(tmp_path, 'baselines/train_basicvsrpp_synthetic.yml', {'mid_channels': 8, 'num_blocks': 1},
                       fix_flow=2)
    net = model.get_bare_model(model.net_g)
    spynet = {k for k, _ in net.named_parameters() if 'spynet' in k}
    assert spynet
    data = batch(frames=2, size=64)
    before, _, after = None, None, {k: v.detach().clone() for k, v in net.named_parameters()}
    for iteration in (1, 2):
        before = after
        model.feed_data(data)
        model.optimize_parameters(iteration)
        after = {k: v.detach().clone() for k, v in net.named_parameters()}
        moved = {k for k in after if not torch.equal(before[k], after[k])}
        if iteration == 1:
            assert not moved & spynet and moved, 'SpyNet frozen, the rest trained'
        else:
            assert spynet <= moved, 'from iteration fix_flow on, SpyNet trains too'


@pytest.mark.parametrize('options', ['baselines/train_estrnn_synthetic.yml', 'baselines/train_edvr_synthetic.yml',
                                     'baselines/train_basicvsrpp_synthetic.yml', 'paper/train_table6_joint.yml'])
def test_every_trained_network_takes_a_bfloat16_step(options, tmp_path):
    network = {
        # the paper's rows train BatchNorm on batch statistics, meaningless on 32x32 crops (1x1 key maps)
        'paper/train_table6_joint.yml': {**TINY_MEMDEBLUR, 'norm_eval': True},
        'baselines/train_basicvsrpp_synthetic.yml': {'mid_channels': 8, 'num_blocks': 1},
    }.get(options, {})
    model = tiny_model(tmp_path, options, network, precision='bfloat16', channels_last=True)
    frames = model.opt['datasets']['train']['num_frame']
    loss, norm, _ = one_step(model, batch(frames=frames))
    assert loss > 0 and norm > 0 and all(p.dtype == torch.float32 for p in model.net_g.parameters())


@pytest.mark.slow
def test_bfloat16_training_through_the_tool_resumes_from_its_state(synthetic_gopro, tmp_path):
    """Two iterations in bfloat16 (channels-last, EMA) by tools/train.py's pipeline, then two more resumed."""
    opt = tiny_training_options(synthetic_gopro, 'bf16', 2)
    opt['train'].update(precision='bfloat16', channels_last=True, ema_decay=0.5)
    opt['logger']['save_checkpoint_freq'] = 2
    opt['val']['val_freq'] = 1000
    opt_path = write_options(tmp_path, opt)

    def train(*args):
        result = run_pipeline('train', tmp_path, opt_path, *args)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout + result.stderr

    first = train()
    assert 'Training precision: bfloat16 (autocast, float32 master weights), channels-last.' in first
    assert re.findall(r'iter:\s+(\d+), lr', first) == ['1', '2']
    state = torch.load(tmp_path / 'experiments' / 'bf16' / 'training_states' / '2.state', weights_only=True)
    assert state['iter'] == 2 and 'grad_scaler' not in state  # bfloat16 needs no loss scaler
    resumed = train('--auto_resume', '--force_yml', 'train:total_iter=4')
    assert 'Resuming training from epoch: ' in resumed
    assert re.findall(r'iter:\s+(\d+), lr', resumed) == ['3', '4']
    weights = torch.load(tmp_path / 'experiments' / 'bf16' / 'models' / 'net_g_latest.pth', weights_only=True)
    for key in ('params', 'params_ema'):
        assert all(v.dtype == torch.float32 and v.is_contiguous() for v in weights[key].values()
                   if v.is_floating_point())
        assert all(torch.isfinite(v).all() for v in weights[key].values() if v.is_floating_point())

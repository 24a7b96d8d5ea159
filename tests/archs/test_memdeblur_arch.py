"""MemDeblurNet against the authors' test vectors, and its behaviour beyond them."""
import pytest
import torch
import torch.nn.functional as F
from basicsr.archs import build_network

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.networks.checkpoint import load_pretrained
from tests.conftest import TINY_MEMDEBLUR


@pytest.fixture(scope='module')
def official_net(memdeblur_official_checkpoint, memdeblur_vectors):
    net = build_network({'type': 'MemDeblurNet', **memdeblur_vectors['config']})
    return load_pretrained(net, memdeblur_official_checkpoint).double()


@pytest.mark.parametrize('mode, tolerance', [('eval', 1e-9), ('train', 1e-6)])
def test_reproduces_the_authors_outputs_at_every_scale(official_net, memdeblur_vectors, mode, tolerance):
    official_net.train(mode == 'train')
    with torch.no_grad():
        outputs = official_net(memdeblur_vectors['input'], return_scales=True)
    references = memdeblur_vectors[f'outputs_{mode}']
    assert len(outputs) == len(references) == 3
    for scale, (out, ref) in enumerate(zip(outputs, references)):
        assert out.shape == ref.shape, f'scale {scale}'
        assert (out - ref).abs().max().item() < tolerance, f'scale {scale}'


def test_default_configuration_is_the_released_one(memdeblur_vectors):
    net = MemDeblurNet()
    defaults = {key: getattr(net, key) for key in memdeblur_vectors['config']}
    assert defaults == memdeblur_vectors['config']


def tiny_net(**overrides):
    torch.manual_seed(0)
    return MemDeblurNet(**{**TINY_MEMDEBLUR, **overrides}).double().eval()


def test_sizes_not_multiple_of_four_are_padded_and_cropped_back():
    net = tiny_net()
    frames = torch.rand(1, 3, 3, 70, 93, dtype=torch.float64)
    with torch.no_grad():
        outputs = net(frames, return_scales=True)
        padded = F.pad(frames.flatten(0, 1), (0, 3, 0, 2), mode='reflect').view(1, 3, 3, 72, 96)
        on_padded = net(padded)
    assert [tuple(o.shape[-2:]) for o in outputs] == [(20, 24), (36, 48), (70, 93)]
    assert torch.allclose(outputs[-1], on_padded[..., :70, :93], atol=1e-12)


def test_batch_items_are_independent_in_eval_mode():
    net = tiny_net()
    frames = torch.rand(2, 4, 3, 32, 48, dtype=torch.float64)
    with torch.no_grad():
        together = net(frames)
        alone = torch.cat([net(frames[i:i + 1]) for i in range(2)])
    assert torch.allclose(together, alone, atol=1e-12)


def test_long_sequences_use_the_eval_memory_window():
    frames = torch.rand(1, 12, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        windowed = tiny_net()(frames)
        unbounded = tiny_net(test_mem_length=None)(frames)
    assert windowed.shape == frames.shape and torch.isfinite(windowed).all()
    # the first frames are restored before any bank outgrows its window; later ones are not
    assert torch.allclose(windowed[:, 0], unbounded[:, 0], atol=1e-12)
    assert (windowed[:, -1] - unbounded[:, -1]).abs().max() > 1e-9


def test_full_softmax_option_changes_eval_read_outs():
    frames = torch.rand(1, 6, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        top_k = tiny_net()(frames)
        full = tiny_net(top_k=None)(frames)
    assert (top_k - full).abs().max() > 1e-9


def test_single_frame_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = MemDeblurNet(**TINY_MEMDEBLUR).train()
    outputs = net(torch.rand(2, 1, 3, 32, 32), return_scales=True)
    sum(o.mean() for o in outputs).backward()
    net(torch.rand(2, 6, 3, 32, 32)).mean().backward()
    unused = {'fusion', 'forward_trunk', 'backward_trunk', 'memory', 'encoder', 'decoder', 'forward_input_convs'}
    no_grad = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, no_grad
    assert unused == {n.split('.')[0] for n, _ in net.named_parameters()}


@pytest.mark.parametrize('shape, message', [((1, 2, 3, 12, 32), 'at least 16x16'), ((1, 2, 1, 32, 32), '3, H, W'),
                                            ((2, 3, 32, 32), '3, H, W')])
def test_bad_input_shapes_are_refused(shape, message):
    with pytest.raises(ValueError, match=message):
        tiny_net()(torch.rand(*shape, dtype=torch.float64))


@pytest.mark.parametrize('options, message', [({'scales': [4, 2]}, 'end with 1'),
                                              ({'scales': [2, 1], 'mem_every': [1, 2, 5]}, 'one period per scale')])
def test_inconsistent_configurations_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        MemDeblurNet(**{**TINY_MEMDEBLUR, **options})


def test_two_scale_configuration_runs():
    net = tiny_net(scales=[2, 1], mem_every=[1, 3])
    with torch.no_grad():
        outputs = net(torch.rand(1, 4, 3, 32, 32, dtype=torch.float64), return_scales=True)
    assert [tuple(o.shape[-2:]) for o in outputs] == [(16, 16), (32, 32)]


def test_norm_eval_keeps_batchnorm_statistics_fixed_in_training():
    torch.manual_seed(0)
    net = MemDeblurNet(**TINY_MEMDEBLUR, norm_eval=True).train()
    batch_norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batch_norms and not any(m.training for m in batch_norms)
    assert net.training and net.forward_trunk.training
    before = [m.running_mean.clone() for m in batch_norms]
    net(torch.rand(2, 3, 3, 32, 32)).mean().backward()
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, batch_norms))
    released = MemDeblurNet(**TINY_MEMDEBLUR).train()
    assert all(m.training for m in released.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_integer_empty_non_finite_and_0_255_inputs_are_refused():
    net = tiny_net()
    frames = torch.rand(1, 3, 3, 32, 32, dtype=torch.float64)
    with pytest.raises(TypeError, match=r'expects floating-point frames in \[0, 1\], got torch.uint8.*/ 255'):
        net((frames * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r'got values in \[.*\] \(0-255 values\? divide by 255\)'):
        net(frames * 255)
    with pytest.raises(ValueError, match=r'empty batch: shape \(1, 0, 3, 32, 32\)'):
        net(frames[:, :0])
    with pytest.raises(ValueError, match=r'empty batch: shape \(0, 3, 3, 32, 32\)'):
        net(frames[:0])
    broken = frames.clone()
    broken[0, 2, 1, 5, 5] = float('nan')
    with pytest.raises(ValueError, match=r'non-finite \(NaN or Inf\) input frames: \(batch 0, frame 2\)'):
        net(broken)
    with torch.no_grad():
        slightly_outside = net(frames * 1.2 - 0.1)  # e.g. after resampling: accepted
    assert torch.isfinite(slightly_outside).all()

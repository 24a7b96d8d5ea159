"""ESTRNNNet against the authors' test vectors, its checkpoints, and its behaviour beyond the fixture."""
import subprocess
import sys

import pytest
import torch
from basicsr.archs import build_network

from memdeblur.archs.estrnn_arch import ESTRNNNet
from memdeblur.networks.checkpoint import CheckpointError, load_pretrained
from tests.conftest import REPO_ROOT, fixture_path


@pytest.fixture(scope='module')
def vectors():
    return torch.load(fixture_path('official_estrnn', 'io.pt'), map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def official_net(estrnn_official_checkpoint, vectors):
    net = build_network({'type': 'ESTRNNNet', **vectors['config']})
    return load_pretrained(net, estrnn_official_checkpoint).double().eval()


def tiny(**options):
    torch.manual_seed(0)
    return ESTRNNNet(**{'n_features': 8, 'n_blocks': 2, **options}).double().eval()


def test_reproduces_the_authors_outputs(official_net, vectors):
    with torch.no_grad():
        output = official_net(vectors['input'])
    assert output.shape == vectors['output'].shape == (1, 4, 3, 64, 96)
    assert (output - vectors['output']).abs().max() < 1e-9


def test_default_configuration_is_the_released_one(vectors):
    assert {k: v for k, v in vars(ESTRNNNet()).items() if k in ('n_features', 'past_frames', 'future_frames')} == {
        'n_features': 16, 'past_frames': 2, 'future_frames': 2}
    assert vectors['config'] == {'n_features': 16, 'n_blocks': 15, 'future_frames': 2, 'past_frames': 2,
                                 'activation': 'gelu'}


@pytest.mark.parametrize('batch, frames, past, future, size', [(2, 6, 2, 2, (32, 48)), (1, 3, 1, 0, (70, 93)),
                                                               (3, 9, 0, 3, (16, 20))])
def test_other_lengths_batches_sizes_and_windows(batch, frames, past, future, size):
    net = tiny(past_frames=past, future_frames=future)
    clip = torch.rand(batch, frames, 3, *size, dtype=torch.float64)
    with torch.no_grad():
        out = net(clip)
        alone = net(clip[1:2]) if batch > 1 else out
    assert out.shape == (batch, frames - past - future, 3, *size)
    assert torch.allclose(out[1:2] if batch > 1 else out, alone, atol=1e-12)  # batch items independent


def test_output_t_depends_on_its_window_and_the_past_only():
    net = tiny()
    clip = torch.rand(1, 8, 3, 32, 32, dtype=torch.float64)
    changed = clip.clone()
    changed[:, 7] += 0.1  # the last frame: only outputs whose window reaches it (frame 5, output 3) change
    with torch.no_grad():
        a, b = net(clip), net(changed)
    assert torch.equal(a[:, :3], b[:, :3]) and not torch.equal(a[:, 3], b[:, 3])


def test_too_short_sequences_and_bad_options_are_refused():
    with pytest.raises(ValueError, match='needs more than 4 frames, got 4'):
        tiny()(torch.rand(1, 4, 3, 32, 32, dtype=torch.float64))
    from memdeblur.utils.option_check import OptionError
    with pytest.raises(OptionError, match="activation' must be one of 'relu', 'leakyrelu', 'gelu'"):
        ESTRNNNet(activation='swish')
    with pytest.raises(OptionError, match="unknown option 'n_feature'; did you mean 'n_features'"):
        build_network({'type': 'ESTRNNNet', 'n_feature': 16})


def test_checkpoints_of_another_configuration_or_model_are_refused(estrnn_official_checkpoint,
                                                                    memdeblur_official_checkpoint):
    with pytest.raises(CheckpointError, match=r'not in the network: cell\.trunk\.rdbs\.9\.'):
        load_pretrained(ESTRNNNet(n_blocks=9), estrnn_official_checkpoint)
    with pytest.raises(CheckpointError, match=r'shape differs: cell\.encoder\.0\.weight: checkpoint \(16, 3, 5, 5\) '
                       r'vs network \(8, 3, 5, 5\)'):
        load_pretrained(ESTRNNNet(n_features=8), estrnn_official_checkpoint)
    with pytest.raises(CheckpointError, match='does not fit this ESTRNNNet'):
        load_pretrained(ESTRNNNet(), memdeblur_official_checkpoint)


def test_converter_tool_converts_an_estrnn_checkpoint(estrnn_official_checkpoint, tmp_path, vectors):
    opt = tmp_path / 'estrnn.yml'
    opt.write_text('network_g:\n  type: ESTRNNNet\n')
    dst = tmp_path / 'estrnn.pth'
    result = subprocess.run([sys.executable, 'tools/convert_checkpoint.py', estrnn_official_checkpoint, str(dst),
                             '--opt', str(opt)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and 'for ESTRNNNet' in result.stdout, result.stderr
    net = load_pretrained(ESTRNNNet(), str(dst)).double().eval()
    with torch.no_grad():
        assert (net(vectors['input']) - vectors['output']).abs().max() < 1e-9

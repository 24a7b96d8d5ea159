"""Checkpoint conversion: official -> BasicSR format, and clear errors for files that do not fit."""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.networks.checkpoint import (RELEASED_CHECKPOINTS, RELEASED_CHECKPOINTS_URL, CheckpointError,
                                        convert_checkpoint, convert_official_state_dict, load_pretrained,
                                        network_from_options, read_checkpoint)
from memdeblur.utils.safe_load import load_options
from tests.conftest import REPO_ROOT, TINY_MEMDEBLUR
from tests.pipeline_helpers import run_tool, write_options

UNUSED_OFFICIAL_KEYS = {'conv_hr.weight', 'conv_hr.bias', 'conv_last.weight', 'conv_last.bias'}


@pytest.fixture(scope='module')
def official(memdeblur_official_checkpoint):
    return torch.load(memdeblur_official_checkpoint, map_location='cpu', weights_only=True)


def test_conversion_round_trip_keeps_every_used_tensor(official, memdeblur_official_checkpoint, tmp_path):
    dst = tmp_path / 'converted.pth'
    convert_checkpoint(memdeblur_official_checkpoint, str(dst), MemDeblurNet())
    params = torch.load(dst, weights_only=True)['params']
    originals = {k[len('model.'):]: v for k, v in official['state_dict'].items()}
    assert len(params) == len(originals) - len(UNUSED_OFFICIAL_KEYS)
    converted = convert_official_state_dict(originals, MemDeblurNet.official_keys)
    assert set(originals) - set(converted) >= UNUSED_OFFICIAL_KEYS
    # every original tensor except the unused ones appears once, unchanged
    remaining = [v for k, v in originals.items() if k not in UNUSED_OFFICIAL_KEYS]
    assert sorted(v.sum().item() for v in params.values()) == sorted(v.sum().item() for v in remaining)
    net = MemDeblurNet()
    net.load_state_dict(params, strict=True)
    direct = load_pretrained(MemDeblurNet(), memdeblur_official_checkpoint)
    for key, value in direct.state_dict().items():
        assert torch.equal(value, net.state_dict()[key]), key


def test_multi_gpu_prefix_loads(official, tmp_path):
    path = tmp_path / 'ddp.pth.tar'
    torch.save({**official, 'state_dict': {'module.' + k: v for k, v in official['state_dict'].items()}}, path)
    net = load_pretrained(MemDeblurNet(), str(path))
    assert torch.equal(net.encoder[0].weight, official['state_dict']['model.downsampling.0.weight'])


def test_another_models_checkpoint_is_refused_with_the_differences(estrnn_official_checkpoint):
    with pytest.raises(CheckpointError) as info:
        load_pretrained(MemDeblurNet(), estrnn_official_checkpoint)
    message = str(info.value)
    assert 'estrnn_official_format.pth.tar' in message
    assert 'missing from the checkpoint' in message and 'encoder.0.weight' in message
    assert 'not in the network' in message and 'cell.' in message


def test_a_different_configuration_is_refused_with_keys_and_shapes(memdeblur_official_checkpoint):
    with pytest.raises(CheckpointError, match=r'20 not in the network: forward_trunk\.25\.conv1\.weight'):
        load_pretrained(MemDeblurNet(num_blocks_forward=25), memdeblur_official_checkpoint)
    with pytest.raises(CheckpointError, match=r'shape differs: decoder\.0\.weight: checkpoint '
                       r'\(64, 32, 3, 3\) vs network \(32, 16, 3, 3\)'):
        load_pretrained(MemDeblurNet(mid_channels=32), memdeblur_official_checkpoint)


def test_unreadable_missing_and_foreign_files_name_the_file(tmp_path):
    text = tmp_path / 'notes.txt'
    text.write_text('not a checkpoint')
    with pytest.raises(CheckpointError, match=r"notes\.txt' could not be read"):
        load_pretrained(MemDeblurNet(), str(text))
    with pytest.raises(CheckpointError, match=r"nowhere\.pth' does not exist"):
        load_pretrained(MemDeblurNet(), str(tmp_path / 'nowhere.pth'))
    foreign = tmp_path / 'foreign.pth'
    torch.save({'optimizer': {'lr': 1.0}, 'iter': 3}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.pth' holds neither .*\['iter', 'optimizer'\]"):
        load_pretrained(MemDeblurNet(), str(foreign))


@pytest.mark.parametrize('name', ('memdeblur_gopro_ds.pth.tar', 'memdeblur_gopro_ori.pth.tar', 'memdeblur_gopro_ds.pth',
                                  'net_g_latest.pth'))
def test_a_missing_weights_file_says_where_to_get_it(name, tmp_path, monkeypatch):
    """The authors' file names point to their Google Drive folder, any other name to the README's table; in one line,
    from --ckpt, from path:pretrain_network_g (relative to the folder the tool runs in) and from the converter."""
    released = name.endswith('.pth.tar')
    monkeypatch.chdir(tmp_path)
    opt = {'network_g': {'type': 'MemDeblurNet', **TINY_MEMDEBLUR},
           'path': {'pretrain_network_g': f'experiments/pretrained_models/{name}'}}
    messages = []
    for attempt in (lambda: network_from_options(opt, 'test.yml'),
                    lambda: network_from_options(opt, 'test.yml', ckpt=str(tmp_path / 'models' / name)),
                    lambda: convert_checkpoint(name, 'converted.pth', MemDeblurNet(**TINY_MEMDEBLUR))):
        with pytest.raises(CheckpointError) as error:
            attempt()
        messages.append(str(error.value))
    for message in messages:
        assert '\n' not in message and f"{name}' does not exist." in message
        assert 'README.md, "Models"' in message
        assert (RELEASED_CHECKPOINTS_URL in message) is released
    assert f"'experiments/pretrained_models/{name}'" in messages[0] and str(tmp_path / 'models') in messages[1]
    result = run_tool('convert_checkpoint.py', name, 'converted.pth', cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip() == f'error: {messages[2]}'


@pytest.mark.parametrize('options_file', ('test_memdeblur_gopro_ds.yml', 'test_memdeblur_gopro.yml'))
def test_the_released_names_are_those_the_options_files_and_the_readme_use(options_file):
    name = osp.basename(load_options(osp.join(REPO_ROOT, 'options', options_file))['path']['pretrain_network_g'])
    assert name in RELEASED_CHECKPOINTS
    with open(osp.join(REPO_ROOT, 'README.md')) as f:
        models = f.read().split('## Models', 1)[1].split('\n## ', 1)[0]
    row = next(line for line in models.splitlines() if line.startswith(f'| `{name}` |'))
    assert f'`options/{options_file}`' in row and RELEASED_CHECKPOINTS_URL in models


def test_other_missing_files_get_no_download_hint(tmp_path):
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(str(tmp_path / 'memdeblur_gopro_ds.pth.tar'), 'Training state')
    assert str(error.value).endswith("memdeblur_gopro_ds.pth.tar' does not exist.")


def test_converter_cli_never_overwrites(memdeblur_official_checkpoint, tmp_path):
    dst = tmp_path / 'out' / 'memdeblur.pth'
    command = [memdeblur_official_checkpoint, dst]
    first = run_tool('convert_checkpoint.py', *command)
    assert first.returncode == 0, first.stderr
    assert 'Converted 485 tensors' in first.stdout
    before = dst.read_bytes()
    again = run_tool('convert_checkpoint.py', *command)
    assert again.returncode != 0 and 'exists' in again.stderr and '--force' in again.stderr
    assert dst.read_bytes() == before
    forced = run_tool('convert_checkpoint.py', *command, '--force')
    assert forced.returncode == 0, forced.stderr
    same_file = run_tool('convert_checkpoint.py', memdeblur_official_checkpoint, memdeblur_official_checkpoint,
                         '--force')
    assert same_file.returncode != 0 and 'is the checkpoint' in same_file.stderr


def test_non_strict_loading_logs_every_difference_and_refuses_a_foreign_checkpoint(
        estrnn_official_checkpoint, memdeblur_official_checkpoint, basicsr_log):
    net = MemDeblurNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"estrnn_official_format.pth.tar': none of its \d+ tensors fits this "
                       r'MemDeblurNet \(strict_load: false would load nothing\)'):
        load_pretrained(net, estrnn_official_checkpoint, strict=False)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # untouched
    smaller = load_pretrained(MemDeblurNet(num_blocks_forward=25), memdeblur_official_checkpoint, strict=False)
    assert any('20 key(s) not in the network (ignored): forward_trunk.25.conv1.weight' in m for m in basicsr_log)
    assert torch.equal(smaller.forward_trunk[24].conv2.weight,
                       load_pretrained(MemDeblurNet(), memdeblur_official_checkpoint).forward_trunk[24].conv2.weight)
    basicsr_log.clear()
    load_pretrained(MemDeblurNet(mid_channels=32), memdeblur_official_checkpoint, strict=False)
    assert any('of another shape (ignored): ' in m and 'decoder.0.weight' in m for m in basicsr_log)
    assert any('missing from the checkpoint (left as initialised)' in m for m in basicsr_log)


def test_non_finite_weights_are_refused_naming_the_tensors(official, tmp_path):
    state = dict(official['state_dict'])
    state['model.fusion.weight'] = state['model.fusion.weight'].clone()
    state['model.fusion.weight'][0, 0] = float('nan')
    state['model.upsampling.4.bias'] = torch.full_like(state['model.upsampling.4.bias'], float('inf'))
    path = tmp_path / 'diverged.pth.tar'
    torch.save({**official, 'state_dict': state}, path)
    for strict in (True, False):
        with pytest.raises(CheckpointError, match=r"diverged.pth.tar' holds non-finite \(NaN or Inf\) values in 2 "
                           r'tensor\(s\): (fusion.weight, decoder.4.bias|decoder.4.bias, fusion.weight)'):
            load_pretrained(MemDeblurNet(), str(path), strict=strict)
    with pytest.raises(CheckpointError, match='non-finite'):
        convert_checkpoint(str(path), str(tmp_path / 'out.pth'), MemDeblurNet())
    assert not (tmp_path / 'out.pth').exists()


def test_converter_never_destroys_its_source_through_links_or_folders(memdeblur_official_checkpoint, tmp_path):
    source = tmp_path / 'official.pth.tar'
    source.write_bytes(open(memdeblur_official_checkpoint, 'rb').read())
    original = source.read_bytes()
    symlink, hardlink, folder = tmp_path / 'via_symlink.pth', tmp_path / 'via_hardlink.pth', tmp_path / 'models'
    symlink.symlink_to(source)
    os.link(source, hardlink)
    folder.mkdir()
    for link in (symlink, hardlink):
        result = run_tool('convert_checkpoint.py', source, link, '--force')
        assert result.returncode != 0 and f'{link} is the checkpoint {source}' in result.stderr, result.stderr
        assert source.read_bytes() == original
    result = run_tool('convert_checkpoint.py', source, folder, '--force')
    assert result.returncode != 0 and f'{folder} exists as a folder, but this output is a file' in result.stderr
    assert list(folder.iterdir()) == []
    converted = tmp_path / 'converted.pth'
    assert run_tool('convert_checkpoint.py', source, converted).returncode == 0
    assert source.read_bytes() == original and not list(tmp_path.glob('.*partial'))


def test_verify_tool_reports_agreement_per_scale():
    result = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'verify_official_checkpoint.py'),
                             '--timing-runs', '1'], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = {line.split(':')[0].strip(): line for line in result.stdout.splitlines() if line.strip().startswith(
        ('eval', 'train'))}
    assert lines['eval'].endswith('OK') and lines['train'].endswith('OK')
    assert 'ms per 64x96 frame' in result.stdout


def tiny_weights(**changes):
    """The weights of a tiny MemDeblur, of another configuration with ``changes``."""
    return MemDeblurNet(**{**TINY_MEMDEBLUR, **changes}).state_dict()


def tiny_options(checkpoint, **path):
    return {'network_g': {'type': 'MemDeblurNet', **TINY_MEMDEBLUR},
            'path': {'pretrain_network_g': str(checkpoint), **path}}


def test_weights_that_do_not_fit_name_the_key_used_where_it_was_set_and_the_key_that_would_fit(tmp_path):
    """params fits the network, params_ema (saved from a narrower one) does not: with param_key_g: params_ema the
    error says params_ema was used, set by path:param_key_g, what the file holds, and that params would fit."""
    checkpoint = tmp_path / 'ema_misfit.pth'
    torch.save({'params': tiny_weights(), 'params_ema': tiny_weights(mid_channels=8)}, checkpoint)
    opt = tiny_options(checkpoint, param_key_g='params_ema')
    with pytest.raises(CheckpointError) as error:
        network_from_options(opt, 'test.yml')
    lines = str(error.value).splitlines()
    assert lines[0] == (f"Checkpoint '{checkpoint}' does not fit this MemDeblurNet (a different model or "
                        'configuration?):')
    assert 'shape differs: decoder.0.weight: checkpoint (8, 4, 3, 3) vs network (16, 8, 3, 3)' in lines[1]
    assert lines[-1] == ('  Weights used: params_ema, set by path:param_key_g. The file holds params, params_ema; '
                         'params would fit: set path:param_key_g: params.')
    opt['path']['param_key_g'] = 'params'  # what the message says works
    assert torch.equal(network_from_options(opt, 'test.yml').fusion.weight, torch.load(
        checkpoint, weights_only=True)['params']['fusion.weight'])
    both_misfit = tmp_path / 'both_misfit.pth'
    torch.save({'params': tiny_weights(mid_channels=8), 'params_ema': tiny_weights(mid_channels=8)}, both_misfit)
    with pytest.raises(CheckpointError) as error:
        network_from_options(tiny_options(both_misfit), 'test.yml')
    assert str(error.value).splitlines()[-1] == ('  Weights used: params, the default. The file holds params, '
                                                 'params_ema; none of the others fits either.')


def test_a_key_the_file_lacks_gives_way_to_its_other_weights_with_a_warning_naming_it(tmp_path, basicsr_log):
    """A param_key_g the file lacks loads the file's other weights with a warning naming the key and where it was set,
    as BasicSR's load_network does (its test options ask for params_ema of files holding only params); when those do
    not fit either, the error says which weights were used in place of which."""
    params_only = tmp_path / 'params_only.pth'
    weights = tiny_weights()
    torch.save({'params': weights}, params_only)
    loaded = network_from_options(tiny_options(params_only, param_key_g='params_ema'), 'test.yml')
    assert torch.equal(loaded.fusion.weight, weights['fusion.weight'])
    assert (f'Checkpoint {params_only} holds no params_ema (set by path:param_key_g); loading its params.'
            in basicsr_log)
    ema_only = tmp_path / 'ema_only.pth'
    ema = tiny_weights()
    torch.save({'params_ema': ema}, ema_only)
    assert torch.equal(network_from_options(tiny_options(ema_only), 'test.yml').fusion.weight, ema['fusion.weight'])
    assert f'Checkpoint {ema_only} holds no params (the default); loading its params_ema.' in basicsr_log
    misfit = tmp_path / 'misfit.pth'
    torch.save({'params': tiny_weights(mid_channels=8)}, misfit)
    frames = tmp_path / 'frames'
    frames.mkdir()
    cv2.imwrite(str(frames / '000000.png'), np.zeros((32, 32, 3), np.uint8))
    result = run_tool('deblur_video.py', frames, '-o', tmp_path / 'out', '--opt',
                      write_options(tmp_path, tiny_options(misfit, param_key_g='params_ema')))
    assert result.returncode == 1 and result.stderr.startswith('error:') and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == ('  Weights used: params, in place of params_ema, which the file '
                                                      'lacks. The file holds params.')


def test_the_authors_format_holds_no_ema_weights(memdeblur_official_checkpoint, basicsr_log):
    """The authors' files hold one set of weights, loaded as params: param_key_g: params_ema loads them, saying so."""
    opt = {'network_g': {'type': 'MemDeblurNet'},
           'path': {'pretrain_network_g': memdeblur_official_checkpoint, 'param_key_g': 'params_ema'}}
    network_from_options(opt, 'test.yml')
    assert any(line.endswith("holds no params_ema (set by path:param_key_g); loading its params (the authors' "
                             "state_dict).") for line in basicsr_log)


"""Checkpoint conversion: official -> BasicSR format, and clear errors for files that do not fit."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.networks.checkpoint import (RELEASED_CHECKPOINTS, RELEASED_CHECKPOINTS_URL, CheckpointError,
                                        convert_checkpoint, convert_official_state_dict, load_pretrained,
                                        network_from_options, read_checkpoint)
from memdeblur.utils.safe_load import load_options
from tests.conftest import REPO_ROOT, TINY_MEMDEBLUR
from tests.pipeline_helpers import run_tool

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
    assert same_file.returncode != 0 and 'over its source' in same_file.stderr


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
        assert result.returncode != 0 and 'over its source' in result.stderr and 'a link to it' in result.stderr
        assert source.read_bytes() == original
    result = run_tool('convert_checkpoint.py', source, folder, '--force')
    assert result.returncode != 0 and f"Destination '{folder}' is a folder" in result.stderr
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

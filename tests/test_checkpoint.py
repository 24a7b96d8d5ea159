"""Checkpoint conversion: official -> BasicSR format, and clear errors for files that do not fit."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.utils.checkpoint import (CheckpointError, convert_checkpoint, convert_official_state_dict,
                                        load_pretrained)
from tests.conftest import REPO_ROOT

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
    assert set(originals) - set(convert_official_state_dict(originals)) >= UNUSED_OFFICIAL_KEYS
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


def test_converter_cli_never_overwrites(memdeblur_official_checkpoint, tmp_path):
    dst = tmp_path / 'out' / 'memdeblur.pth'
    command = [sys.executable, osp.join(REPO_ROOT, 'tools', 'convert_checkpoint.py'), memdeblur_official_checkpoint,
               str(dst)]
    first = subprocess.run(command, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert 'Converted 485 tensors' in first.stdout
    before = dst.read_bytes()
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode != 0 and 'exists' in again.stderr and '--force' in again.stderr
    assert dst.read_bytes() == before
    forced = subprocess.run(command + ['--force'], capture_output=True, text=True)
    assert forced.returncode == 0, forced.stderr
    same_file = subprocess.run(command[:2] + [memdeblur_official_checkpoint, memdeblur_official_checkpoint, '--force'],
                               capture_output=True, text=True)
    assert same_file.returncode != 0 and 'over its source' in same_file.stderr


def test_verify_tool_reports_agreement_per_scale():
    result = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'verify_official_checkpoint.py'),
                             '--timing-runs', '1'], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = {line.split(':')[0].strip(): line for line in result.stdout.splitlines() if line.strip().startswith(
        ('eval', 'train'))}
    assert lines['eval'].endswith('OK') and lines['train'].endswith('OK')
    assert 'ms per 64x96 frame' in result.stdout

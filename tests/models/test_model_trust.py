"""The model never finishes with a silently wrong number and never leaves a half-written checkpoint."""
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch
from basicsr.models import build_model

from memdeblur.evaluation.evaluator import Evaluator
from memdeblur.utils.atomic_save import atomic_torch_save
from tests.conftest import REPO_ROOT, TINY_MEMDEBLUR
from tests.pipeline_helpers import in_process_training_options


def tiny_model(tmp_path, **train):
    opt = in_process_training_options('train_memdeblur_synthetic.yml', tmp_path)
    opt['network_g'].update(TINY_MEMDEBLUR)
    opt['train'].update(train)
    return build_model(opt)


def clip(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {'lq': torch.rand(1, 3, 3, 32, 32, generator=generator),
            'gt': torch.rand(1, 3, 3, 32, 32, generator=generator), 'key': ['SEQ/000001']}


def test_a_failed_save_leaves_the_previous_file_and_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / 'net_g_latest.pth'
    atomic_torch_save({'params': {'w': torch.zeros(3)}}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()

    def crash_half_way(obj, f, *args, **kwargs):
        f.write(b'PK\x03\x04 half a zip file')
        raise OSError('No space left on device')

    monkeypatch.setattr(torch, 'save', crash_half_way)
    with pytest.raises(OSError, match='No space left'):
        atomic_torch_save({'params': {'w': torch.ones(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)['params']['w'], torch.zeros(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['net_g_latest.pth']


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_killed_while_saving_the_file_is_always_complete(tmp_path):
    """SIGKILL a process that saves 40 MB states in a loop: the file on disk always loads."""
    path = tmp_path / '100.state'
    atomic_torch_save({'iter': 0}, path)
    code = ('import sys, torch; from memdeblur.utils.atomic_save import atomic_torch_save\n'
            'for i in range(1, 1000):\n'
            '    atomic_torch_save({"iter": i, "big": torch.rand(10_000_000)}, sys.argv[1])\n'
            '    print(i, flush=True)\n')
    process = subprocess.Popen([sys.executable, '-c', code, str(path)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, 'PYTHONPATH': REPO_ROOT})
    process.stdout.readline()  # at least one save finished
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert torch.load(path, weights_only=True)['iter'] >= 1


def test_model_checkpoints_and_states_are_written_atomically_and_load(tmp_path):
    model = tiny_model(tmp_path, ema_decay=0.5)
    model.feed_data(clip())
    model.optimize_parameters(1)
    model.save(epoch=0, current_iter=1)
    saved = torch.load(tmp_path / 'models' / 'net_g_1.pth', weights_only=True)
    assert set(saved) == {'params', 'params_ema'}
    assert all(torch.equal(v, model.net_g.state_dict()[k]) for k, v in saved['params'].items())
    state = torch.load(tmp_path / 'training_states' / '1.state', weights_only=True)
    assert state['iter'] == 1 and state['optimizers'][0]['state']
    leftovers = [p for p in tmp_path.rglob('*') if 'partial' in p.name]
    assert not leftovers


def test_a_non_finite_loss_stops_training_naming_the_iteration(tmp_path):
    model = tiny_model(tmp_path)
    with torch.no_grad():
        model.net_g.decoder[-1].bias.fill_(float('nan'))
    model.feed_data(clip())
    with pytest.raises(FloatingPointError, match=r'Iteration 7: the training loss is nan; stopping'):
        model.optimize_parameters(7)


def test_non_finite_training_frames_name_the_clip(tmp_path):
    model = tiny_model(tmp_path)
    data = clip()
    data['gt'][0, 1, 0, 3, 3] = float('inf')
    with pytest.raises(ValueError, match=r"Non-finite \(NaN or Inf\) values in the gt frames of training clips "
                       r"SEQ/000001\.$"):
        model.feed_data(data)


def window_item():
    """A 3-frame test-set item of sequence GOPRO_0042, as ``VideoDeblurTestDataset`` gives it."""
    return {'lq': torch.rand(3, 3, 32, 32), 'gt': torch.rand(3, 3, 32, 32), 'folder': 'GOPRO_0042',
            'frame_names': ['000001', '000002', '000003'], 'frame_start': 0, 'sequence_length': 3, 'keep': (0, 3)}


def test_non_finite_outputs_stop_evaluation_naming_sequence_and_frames(tmp_path):
    model = tiny_model(tmp_path)
    with torch.no_grad():
        model.net_g.decoder[-1].bias.fill_(float('inf'))
    item = window_item()
    with pytest.raises(ValueError, match=r'network output for sequence GOPRO_0042 \(diverged weights\?\): frames '
                       r'000001, 000002, 000003'):
        Evaluator({}).evaluate_window(item, model.restore_window, str(tmp_path), save_img=False)


@pytest.mark.parametrize('side, what', [('lq', 'blurry input'), ('gt', 'sharp frames')])
def test_non_finite_test_frames_name_the_sequence_and_frame(tmp_path, side, what):
    model = tiny_model(tmp_path)
    item = window_item()
    item[side][1, 0, 5, 5] = float('nan')
    with pytest.raises(ValueError, match=rf'Non-finite \(NaN or Inf\) values in the {what} of sequence GOPRO_0042: '
                       r'frames 000002\.'):
        Evaluator({}).evaluate_window(item, model.restore_window, str(tmp_path), save_img=False)

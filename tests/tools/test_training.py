"""Training through BasicSR's pipeline on CPU: learning, kill and resume, two processes."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from memdeblur.data.synthetic import write_synthetic_gopro
from tests.conftest import REPO_ROOT
from tests.pipeline_helpers import (pipeline_command, run_pipeline, synthetic_training_options, tiny_training_options,
                                    write_options)

pytestmark = pytest.mark.slow


def validation_psnr(log):
    """(restored, blurry input) PSNR of the last validation in a training log."""
    restored, blurry = re.findall(r'# psnr: ([\d.]+) \(blurry input ([\d.]+)\)', log)[-1]
    return float(restored), float(blurry)


def losses(log):
    return [float(v) for v in re.findall(r'l_pix: ([\d.e+-]+)', log)]


def test_training_lowers_the_loss_and_beats_the_blurry_input(tmp_path):
    """The demo's synthetic recipe on a smaller synthetic set with held-out validation, shortened to fit CI:
    120 iterations of 32x32 crops, the cosine schedule over those 120 (the demo: 800 of 64x64, ten minutes).
    On our CPU the held-out PSNR passed the blurry input's from iteration 40 on."""
    data = tmp_path / 'synthetic'
    write_synthetic_gopro(str(data), {'train': 4, 'test': 1}, num_frames=12, height=128, width=192, seed=7,
                          progress=False)
    opt = synthetic_training_options(data, 'learn', total_iter=120, warmup_iter=20)
    opt['train']['scheduler']['periods'] = [120]
    opt['datasets']['train']['gt_size'] = 32
    result = run_pipeline('train', tmp_path, write_options(tmp_path, opt))
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stderr + result.stdout
    loss = losses(log)
    assert len(loss) == 120
    first, last = loss[:30], loss[-30:]
    assert sum(last) / len(last) < sum(first) / len(first)
    restored, blurry = validation_psnr(log)
    assert restored > blurry, (restored, blurry)
    assert set(re.findall(r'@ (\d+) iter', log)) == {'120'}  # the final validation is labelled total_iter too
    assert (tmp_path / 'experiments' / 'learn' / 'models' / 'net_g_latest.pth').is_file()


def test_killed_training_resumes_with_the_same_iteration_and_learning_rate(synthetic_gopro, tmp_path):
    opt = tiny_training_options(synthetic_gopro, 'resume', 12)
    opt['train'].update(scheduler={'type': 'MultiStepRestartLR', 'milestones': [6, 9], 'gamma': 0.5}, warmup_iter=-1)
    opt['train']['ema_decay'] = 0.5
    opt['logger']['save_checkpoint_freq'] = 4
    opt['val']['val_freq'] = 1000
    opt_path = write_options(tmp_path, opt)
    states = tmp_path / 'experiments' / 'resume' / 'training_states'
    log_path = tmp_path / 'first_run.log'
    with open(log_path, 'w') as log_file:
        first = subprocess.Popen(
            pipeline_command('train', tmp_path, opt_path),
            cwd=tmp_path, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, 'PYTHONPATH': REPO_ROOT})
        deadline = time.time() + 300
        while 'iter:       5,' not in log_path.read_text() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
    saved = sorted(int(p.stem) for p in states.glob('*.state'))
    assert saved and max(saved) < 12, saved  # killed mid-run, after at least one checkpoint
    resumed = run_pipeline('train', tmp_path, opt_path, '--auto_resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stderr + resumed.stdout
    assert 'Resuming training from epoch: ' in log and f'iter: {max(saved)}.' in log
    iterations = [int(i) for i in re.findall(r'iter:\s+(\d+), lr', log)]
    assert iterations == list(range(max(saved) + 1, 13))
    lrs = {int(i): float(lr) for i, lr in re.findall(r'iter:\s+(\d+), lr:\(([\d.e+-]+),\)', log)}
    base = opt['train']['optim_g']['lr']
    for iteration, lr in lrs.items():
        expected = base * 0.5**sum(iteration > m for m in (6, 9))
        assert lr == pytest.approx(expected), (iteration, lr)
    final = torch.load(tmp_path / 'experiments' / 'resume' / 'models' / 'net_g_12.pth', weights_only=True)
    ema_differs = [not torch.equal(final['params'][k], final['params_ema'][k]) for k in final['params']]
    assert any(ema_differs), 'the EMA weights should trail the trained ones'
    assert 'Use Exponential Moving Average with decay: 0.5' in log


@pytest.mark.parametrize('precision', ['float32', 'bfloat16'])
def test_two_process_torchrun_on_cpu_saves_a_checkpoint(precision, synthetic_gopro, tmp_path):
    opt = tiny_training_options(synthetic_gopro, 'ddp', 2)
    opt['train']['precision'] = precision
    opt_path = write_options(tmp_path, opt)
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29533',
               *pipeline_command('train', tmp_path, opt_path, '--launcher', 'pytorch')[1:]]  # torchrun -m ...
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, 'PYTHONPATH': REPO_ROOT, 'CUDA_VISIBLE_DEVICES': '',
                                 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stderr + result.stdout
    assert 'World size (gpu number): 2' in log and f'Training precision: {precision}' in log
    assert (tmp_path / 'experiments' / 'ddp' / 'models' / 'net_g_2.pth').is_file()
    assert (tmp_path / 'experiments' / 'ddp' / 'training_states' / '2.state').is_file()

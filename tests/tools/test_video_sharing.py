"""Many videos, many processes: torchrun shares a folder of sequences; --resume finishes an interrupted run."""
import os
import resource
import signal
import subprocess
import sys
import time

import av
import cv2
import numpy as np
import pytest
import torch
import yaml

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from tests.conftest import REPO_ROOT, TINY_MEMDEBLUR

TOOL = os.path.join(REPO_ROOT, 'tools', 'deblur_video.py')
ENV = {**os.environ, 'PYTHONPATH': REPO_ROOT, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': ''}


@pytest.fixture
def tiny_options(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / 'tiny.pth'
    torch.save({'params': MemDeblurNet(**TINY_MEMDEBLUR).state_dict()}, weights)
    path = tmp_path / 'tiny.yml'
    path.write_text(yaml.safe_dump({'name': 'tiny', 'network_g': {'type': 'MemDeblurNet', **TINY_MEMDEBLUR},
                                    'path': {'pretrain_network_g': str(weights)}}))
    return str(path)


def sequences(root, count, frames=5, size=(32, 48)):
    rng = np.random.default_rng(0)
    for index in range(count):
        folder = root / f'seq{index}'
        folder.mkdir(parents=True)
        for frame in range(frames):
            cv2.imwrite(str(folder / f'{frame:03d}.png'), rng.integers(0, 256, (*size, 3)).astype(np.uint8))
    return root


def pngs(folder):
    """{relative path: bytes} of every PNG under ``folder``."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*.png'))}


def deblur(*args, processes=1, port=29571):
    launcher = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={processes}',
                f'--master_port={port}'] if processes > 1 else [sys.executable]
    return subprocess.run([*launcher, TOOL, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=300)


@pytest.mark.slow
def test_torchrun_writes_what_one_process_writes(tiny_options, tmp_path):
    clips = sequences(tmp_path / 'clips', 3)
    one = deblur(clips, '-o', tmp_path / 'one', '--opt', tiny_options)
    assert one.returncode == 0, one.stderr[-2000:]
    two = deblur(clips, '-o', tmp_path / 'two', '--opt', tiny_options, '--summary', tmp_path / 'summary.json',
                 processes=2)
    assert two.returncode == 0, two.stderr[-2000:]
    assert pngs(tmp_path / 'two') == pngs(tmp_path / 'one') and len(pngs(tmp_path / 'one')) == 15
    summary = yaml.safe_load((tmp_path / 'summary.json').read_text())  # JSON is YAML
    assert [s['sequence'] for s in summary['sequences']] == ['seq0', 'seq1', 'seq2']


@pytest.mark.slow
def test_a_failing_process_stops_the_run_and_leaves_nothing_partial(tiny_options, tmp_path):
    clips = sequences(tmp_path / 'clips', 4)
    (clips / 'seq3' / '002.png').write_bytes(b'not a png')
    result = deblur(clips, '-o', tmp_path / 'out', '--opt', tiny_options, processes=2, port=29572)
    assert result.returncode != 0 and '002.png' in result.stdout + result.stderr
    written = list((tmp_path / 'out').iterdir()) if (tmp_path / 'out').exists() else []
    assert not [p for p in written if p.name.startswith('.partial')]
    assert 'seq3' not in [p.name for p in written]


def test_resume_after_a_kill_finishes_the_rest(tiny_options, tmp_path):
    clips = sequences(tmp_path / 'clips', 6, frames=8, size=(48, 64))
    reference = deblur(clips, '-o', tmp_path / 'reference', '--opt', tiny_options)
    assert reference.returncode == 0, reference.stderr[-2000:]
    out = tmp_path / 'out'
    run = subprocess.Popen([sys.executable, TOOL, str(clips), '-o', str(out), '--opt', tiny_options],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 120
    while not (out / 'seq0').exists() and run.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()
    done = sorted(p.name for p in out.iterdir() if not p.name.startswith('.'))
    assert 'seq0' in done and len(done) < 6, done  # killed part way
    refused = deblur(clips, '-o', out, '--opt', tiny_options)
    assert refused.returncode == 1 and 'exists' in refused.stderr
    resumed = deblur(clips, '-o', out, '--opt', tiny_options, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f'--resume: {len(done)} of 6 outputs exist and are kept' in resumed.stdout
    assert pngs(out) == pngs(tmp_path / 'reference')


@pytest.mark.slow
def test_torchrun_shares_the_windows_of_one_long_video(tiny_options, tmp_path):
    """Fewer sequences than processes: the windows of the video are shared, and process 0 writes what one process
    writes (PNG frames bit for bit; an mp4 decoded to the same frames)."""
    clip = sequences(tmp_path / 'clips', 1, frames=23, size=(40, 56)) / 'seq0'
    for kind in ('frames', 'video.mp4'):
        one = deblur(clip, '-o', tmp_path / f'one_{kind}', '--opt', tiny_options, '--window', 6, '--overlap', 2)
        assert one.returncode == 0, one.stderr[-2000:]
        two = deblur(clip, '-o', tmp_path / f'two_{kind}', '--opt', tiny_options, '--window', 6, '--overlap', 2,
                     '--scratch', tmp_path, processes=2, port=29573)
        assert two.returncode == 0, two.stderr[-2000:]
    assert pngs(tmp_path / 'two_frames') == pngs(tmp_path / 'one_frames') and len(pngs(tmp_path / 'one_frames')) == 23
    decoded = []
    for name in ('one_video.mp4', 'two_video.mp4'):
        with av.open(str(tmp_path / name)) as container:
            decoded.append(np.stack([f.to_ndarray(format='rgb24') for f in container.decode(video=0)]))
    assert decoded[0].shape[0] == 23 and np.abs(decoded[0].astype(int) - decoded[1].astype(int)).max() <= 2
    assert not list(tmp_path.glob('memdeblur_shared_*'))  # the windows' exchange folder is gone


def launch(*args, port, fsize_limit=None, marker=None):
    """``torchrun --nproc_per_node=2 tools/deblur_video.py args`` started in the background; with ``fsize_limit``,
    no process of the run can write a file larger than that many bytes (a scratch that fills up); ``marker``, a
    variable of the run's environment, tells its processes from others'."""

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))

    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={port}', TOOL,
               *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**ENV, 'MEMDEBLUR_TEST_RUN': marker or ''}, start_new_session=True,
                            preexec_fn=limit_file_size if fsize_limit else None)


def output_when_stopped(run, seconds):
    """The run's output once it stops; a run still going after ``seconds`` is killed, and the test fails."""
    try:
        return run.communicate(timeout=seconds)[0]
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate()
        pytest.fail(f'the run was still going after {seconds} s (hung)')


def our_output(output):
    """A run's output without torchrun's own failure report (its traceback of ChildFailedError and the table of
    failed processes, which the launcher prints whenever a process exits with an error)."""
    report = output.find('Traceback (most recent call last):\n  File "<frozen runpy>"')
    return output[:report] if report >= 0 else output


def our_lines(output):
    """Our processes' lines, without torchrun's log lines."""
    return [line for line in our_output(output).splitlines() if 'torch/distributed/elastic' not in line]


def assert_stopped_cleanly(output, returncode, scratch, out):
    assert returncode != 0
    assert 'Traceback' not in our_output(output), output[-3000:]
    assert 'gloo' not in output.lower() and 'Connection closed' not in output, output[-3000:]
    assert not list(scratch.glob('memdeblur_shared_*')), 'the shared scratch was left behind'
    assert not out.exists() or not any(out.iterdir())
    assert not [p for p in out.parent.iterdir() if p.name.startswith('.partial')]


@pytest.mark.slow
def test_a_scratch_that_fills_up_stops_every_process_with_one_line(tiny_options, tmp_path):
    """Process 1 cannot write its window for process 0 (a full scratch): both stop within seconds, process 0 says
    why in one line, nothing is left behind. (Before: process 1 waited at a barrier, process 0 polled for ever.)"""
    clip = sequences(tmp_path / 'clips', 1, frames=23, size=(40, 56)) / 'seq0'
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    out = tmp_path / 'out'
    run = launch(clip, '-o', out, '--opt', tiny_options, '--window', 6, '--overlap', 2, '--scratch', scratch,
                 port=29574, fsize_limit=16 * 1024)
    output = output_when_stopped(run, 120)
    errors = [line for line in our_lines(output) if line.startswith('error:')]
    assert len(errors) == 1 and 'process 1 of 2 failed' in errors[0] and '--scratch' in errors[0], output[-3000:]
    assert_stopped_cleanly(output, run.returncode, scratch, out)


def process_of_rank(marker, rank):
    """The pid of the deblurring process of ``rank`` in the run whose environment holds ``marker``."""
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            environ = open(f'/proc/{pid}/environ', 'rb').read().split(b'\0')
        except OSError:
            continue
        if marker.encode() in environ and f'RANK={rank}'.encode() in environ:
            return int(pid)
    return None


@pytest.mark.slow
def test_a_killed_process_stops_the_run_without_tracebacks(tiny_options, tmp_path):
    """SIGKILL of process 1 while the windows of one video are shared: process 0 stops within seconds, removes its
    output and the shared scratch, and nobody prints a gloo traceback."""
    clip = sequences(tmp_path / 'clips', 1, frames=60, size=(64, 96)) / 'seq0'
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    out = tmp_path / 'out'
    run = launch(clip, '-o', out, '--opt', tiny_options, '--window', 4, '--overlap', 1, '--scratch', scratch,
                 port=29575, marker=tmp_path.name)
    deadline = time.monotonic() + 120
    while not list(scratch.glob('memdeblur_shared_*/window_*.pt')) and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = process_of_rank(f'MEMDEBLUR_TEST_RUN={tmp_path.name}', 1)
    assert victim is not None and run.poll() is None, 'the run ended before process 1 could be killed'
    os.kill(victim, signal.SIGKILL)
    output = output_when_stopped(run, 60)
    errors = [line for line in our_lines(output) if line.startswith('error:')]
    assert len(errors) <= 1 and all('process 1 of 2 failed' in line for line in errors), output[-3000:]
    assert_stopped_cleanly(output, run.returncode, scratch, out)

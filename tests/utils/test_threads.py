"""The thread count a run uses: the CPUs it may use (affinity, cgroup quota), an explicit setting that wins, and the
governor's choices on a machine that becomes busy and quiet again, with a clock the test drives (no timing)."""
import json
import os
import re
import subprocess
import sys

import av
import numpy as np
import pytest
import torch

from memdeblur.utils import threads
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.threads import ThreadGovernor, cgroup_cpu_quota, explicit_threads, usable_cpus
from tests.conftest import REPO_ROOT
from tests.pipeline_helpers import run_tool


def cgroup_tree(tmp_path, self_cgroup, files):
    """A fake /sys/fs/cgroup and /proc/self: ``files`` maps paths under the cgroup root to contents."""
    (tmp_path / 'proc').mkdir()
    (tmp_path / 'proc' / 'cgroup').write_text(self_cgroup)
    for path, text in files.items():
        target = tmp_path / 'cg' / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return str(tmp_path / 'cg'), str(tmp_path / 'proc')


@pytest.mark.parametrize('self_cgroup, files, quota', [
    ('0::/job\n', {'job/cpu.max': '150000 100000\n'}, 1.5),  # cgroup v2, in the process's own group
    ('0::/\n', {'cpu.max': 'max 100000\n'}, None),  # v2, unlimited
    ('4:cpu,cpuacct:/docker/x\n', {'cpu,cpuacct/docker/x/cpu.cfs_quota_us': '50000\n',
                                   'cpu,cpuacct/docker/x/cpu.cfs_period_us': '100000\n'}, 0.5),  # v1
    ('1:cpu:/\n', {'cpu/cpu.cfs_quota_us': '-1\n', 'cpu/cpu.cfs_period_us': '100000\n'}, None),  # v1, unlimited
    ('0::/gone\n', {}, None),  # nothing readable
])
def test_the_cgroup_quota_is_read_from_v1_and_v2(tmp_path, self_cgroup, files, quota):
    assert cgroup_cpu_quota(*cgroup_tree(tmp_path, self_cgroup, files)) == quota


def test_usable_cpus_are_the_affinity_capped_by_the_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0, 3, 5, 6})
    roots = cgroup_tree(tmp_path, '0::/job\n', {'job/cpu.max': '250000 100000\n'})
    assert usable_cpus(*roots) == 3  # 4 CPUs allowed, 2.5 CPUs of time: 3 threads
    (tmp_path / 'cg' / 'job' / 'cpu.max').write_text('max 100000\n')
    assert usable_cpus(*roots) == 4
    (tmp_path / 'cg' / 'job' / 'cpu.max').write_text('20000 100000\n')
    assert usable_cpus(*roots) == 1  # a fifth of a CPU: still one thread


def test_an_explicit_setting_wins_and_bad_ones_are_named(monkeypatch):
    for name in threads.THREAD_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert explicit_threads() is None
    assert explicit_threads(3) == 3
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    assert explicit_threads() == 1
    monkeypatch.setenv('OMP_NUM_THREADS', 'many')
    with pytest.raises(OptionError, match="OMP_NUM_THREADS='many': a positive number"):
        explicit_threads()
    monkeypatch.delenv('OMP_NUM_THREADS')
    monkeypatch.setattr(threads, '_TORCH_DEFAULT', torch.get_num_threads() + 1)  # the caller changed it
    assert explicit_threads() == torch.get_num_threads()
    with pytest.raises(OptionError, match='--threads 0'):
        explicit_threads(0)


class Machine:
    """A machine whose step times depend on the thread count and on whether it is busy."""

    def __init__(self, quiet, busy, others=0.0):
        self.quiet, self.busy, self.is_busy, self.now, self.threads = quiet, busy, False, 0.0, None
        self.others = others  # the load average of other work

    def load(self):
        """Other work: CPUs it keeps running."""
        return self.others

    def run(self, governor, steps):
        used = []
        for _ in range(steps):
            with governor.step():
                self.now += (self.busy if self.is_busy else self.quiet)[governor.threads]
            used.append(governor.threads)
        return used


def governor_on(machine, **settings):
    lines = []
    governor = ThreadGovernor(cpus=2, clock=lambda: machine.now, load=machine.load, log=lines.append,
                              set_threads=lambda n: setattr(machine, 'threads', n), **settings)
    return governor, lines


def test_a_quiet_machine_keeps_all_threads_and_runs_no_trial():
    machine = Machine(quiet={1: 1.8, 2: 1.0}, busy={})
    governor, lines = governor_on(machine)
    used = machine.run(governor, 300)
    assert machine.threads == 2 and governor.threads == 2 and lines == []
    assert used.count(1) == 0  # no trial: a quiet run computes what it computed before (float rounding included)


def test_a_machine_that_becomes_busy_moves_to_one_thread_says_so_and_comes_back_when_quiet():
    machine = Machine(quiet={1: 1.8, 2: 1.0}, busy={1: 2.0, 2: 12.0})
    governor, lines = governor_on(machine)
    machine.run(governor, 20)
    machine.is_busy, machine.others = True, 2.0
    busy = machine.run(governor, 60)
    assert busy[3:] == [1] * 57  # the slow step starts a trial at once; a busy load average allows no trial up
    assert lines[0].startswith('threads: 2 -> 1 (steps slowed down')
    assert 'this machine is busy' in lines[1] and len(lines) == 2
    machine.is_busy, machine.others = False, 0.0
    quiet = machine.run(governor, 300)
    assert quiet[-1] == 2 and lines[-1].startswith('threads: 1 -> 2 (recheck')


def test_a_busy_start_begins_with_the_free_cpus():
    machine = Machine(quiet={}, busy={1: 2.0, 2: 12.0}, others=2.0)
    machine.is_busy = True
    governor, _ = governor_on(machine)  # before the run: other work holds both CPUs
    assert governor.threads == 1
    assert machine.run(governor, 100) == [1] * 100


def test_a_fixed_count_is_never_changed():
    machine = Machine(quiet={3: 1.0}, busy={3: 50.0})
    governor = ThreadGovernor(cpus=2, explicit=3, clock=lambda: machine.now, load=lambda: 9.0,
                              set_threads=lambda n: setattr(machine, 'threads', n))
    machine.run(governor, 10)
    machine.is_busy = True
    assert machine.run(governor, 30) == [3] * 30 and machine.threads == 3
    assert governor.describe() == '3 threads (fixed by the user; 2 usable CPUs)'


def test_the_video_tool_says_its_threads_and_a_flag_or_the_environment_fixes_them(tmp_path):
    clip = tmp_path / 'clip.mp4'
    with av.open(str(clip), 'w') as container:
        stream = container.add_stream('libx264', rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, 'yuv420p'
        for index in range(3):
            frame = np.zeros((32, 48, 3), np.uint8)
            frame[:, index * 8:index * 8 + 16] = (255, 0, 255)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())
    command = [clip, '--opt', 'options/test_memdeblur_synthetic_pretrained.yml', '--device', 'cpu']
    flagged = run_tool('deblur_video.py', *command, '-o', tmp_path / 'a', '--threads', '1', '--summary',
                       tmp_path / 'a.json', fresh=True)  # its own process: --threads fixes the process's count
    assert flagged.returncode == 0, flagged.stderr
    assert 'threads: 1 thread (fixed by the user;' in flagged.stdout
    assert json.loads((tmp_path / 'a.json').read_text())['sequences'][0]['threads'] == 1
    env_free = {k: v for k, v in os.environ.items() if k not in threads.THREAD_ENVIRONMENT}
    adapted = subprocess.run([sys.executable, 'tools/deblur_video.py', *map(str, command), '-o', str(tmp_path / 'b')],
                             cwd=REPO_ROOT, env={**env_free, 'PYTHONPATH': REPO_ROOT}, capture_output=True, text=True)
    assert adapted.returncode == 0, adapted.stderr
    assert re.search(r'threads: [0-9]+ threads? \((adapted to the load|one CPU); [0-9]+ usable CPUs?\)',
                     adapted.stdout), adapted.stdout

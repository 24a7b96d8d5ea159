"""How many threads a run's operators use on the CPU: what the machine lets this process use, adapted while it runs.

PyTorch starts as many intra-op (OpenMP) threads as the host has cores. Each operator's parallel region ends at a
barrier that waits for its slowest thread, and a training step or a window of frames runs thousands of regions:
when other work holds a core, a thread the kernel has descheduled stalls every region, and two threads on two busy
cores are many times slower than one. So:

* **The CPUs this process may use** (``usable_cpus``): its affinity mask and its cgroup's CPU quota (v2
  ``cpu.max``, v1 ``cpu.cfs_quota_us``), not the host's core count: a container given two of 64 cores runs two.
* **A start that fits the load** (``starting_threads``): the kernel's count of runnable threads, less this
  process's (``other_work``), says how many CPUs other work is using now, so a run starts with the CPUs nobody else
  is using, at least one. (The load average lags by a minute: a run started right after another would see the
  other's work.)
* **Measured trials while it runs** (``ThreadGovernor``): every step (a training iteration, a window of frames) is
  timed per unit of work; now and then, and at once when a step becomes much slower than the last ones at the same
  count, the governor runs a few steps at another count and keeps the faster. A count of other work alone cannot
  decide: it does not say how much a region's barrier suffers (work that sleeps often costs little). Trials alone
  would start a busy run at the slowest count, and try more threads on a busy machine at a step's cost each time.
  Trials of more threads back off while the current count stays the faster; a steady quiet machine runs none, so
  its runs compute exactly what they computed before.
* **An explicit setting wins** (``explicit_threads``): ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, a count the caller
  set with ``torch.set_num_threads`` before the run, or a tool's ``--threads`` fix the count; it is never changed.

What a run computes depends on the thread count only by the order of float sums (convolutions split their
reductions by thread); with an explicit count a run is as deterministic as before.
"""
import contextlib
import logging
import math
import os
import statistics
import sys
import time

import torch
from tqdm import tqdm

from memdeblur.utils.option_check import OptionError

THREAD_ENVIRONMENT = ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')
_TORCH_DEFAULT = torch.get_num_threads()  # what PyTorch chose at import: another count later was set by the caller


def usable_cpus(cgroup_root='/sys/fs/cgroup', proc_self='/proc/self'):
    """The CPUs this process may use: its affinity mask, capped by its cgroup's CPU quota (rounded up, at least 1).

    Args:
        cgroup_root (str): Where the cgroup file systems are mounted.
        proc_self (str): This process's ``/proc`` folder (its ``cgroup`` file names its groups).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root, proc_self)
    return max(1, min(cpus, math.ceil(quota)) if quota else cpus)


def cgroup_cpu_quota(cgroup_root='/sys/fs/cgroup', proc_self='/proc/self'):
    """The CPU time per period this process's cgroup may use, in CPUs (1.5: one and a half), or None when unlimited
    or unknown. Reads cgroup v2's ``cpu.max`` or v1's ``cpu.cfs_quota_us``/``cpu.cfs_period_us``, in the group
    ``/proc/self/cgroup`` names and, inside a container whose groups are mounted as its root, at the root."""
    try:
        with open(os.path.join(proc_self, 'cgroup')) as f:
            groups = [line.rstrip('\n').split(':', 2) for line in f if line.count(':') >= 2]
    except OSError:
        groups = []
    candidates = []
    for _, controllers, path in groups:
        relative = path.lstrip('/')
        if controllers == '':  # v2
            candidates += [(os.path.join(cgroup_root, relative, 'cpu.max'), None)]
        elif 'cpu' in controllers.split(','):
            for mount in ('cpu', 'cpu,cpuacct', 'cpuacct,cpu'):
                folder = os.path.join(cgroup_root, mount, relative)
                candidates += [(os.path.join(folder, 'cpu.cfs_quota_us'), os.path.join(folder, 'cpu.cfs_period_us'))]
    candidates += [(os.path.join(cgroup_root, 'cpu.max'), None),
                   (os.path.join(cgroup_root, 'cpu', 'cpu.cfs_quota_us'),
                    os.path.join(cgroup_root, 'cpu', 'cpu.cfs_period_us'))]
    for quota_file, period_file in candidates:
        try:
            with open(quota_file) as f:
                fields = f.read().split()
            if period_file is not None:
                with open(period_file) as f:
                    fields.append(f.read().strip())
        except OSError:
            continue
        if len(fields) != 2 or fields[0] in ('max', '-1'):
            return None
        try:
            quota, period = int(fields[0]), int(fields[1])
        except ValueError:
            return None
        return quota / period if quota > 0 and period > 0 else None
    return None


def explicit_threads(flag=None):
    """The thread count the user fixed, or None when the run may choose: ``flag`` (a tool's ``--threads``), else
    ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, else a count set with ``torch.set_num_threads`` before the run (one
    other than PyTorch's own choice at import).

    Raises:
        OptionError: ``flag`` or an environment variable that is not a positive whole number.
    """
    if flag is not None:
        if not isinstance(flag, int) or flag < 1:
            raise OptionError(f'--threads {flag!r}: a positive number of threads.')
        return flag
    for name in THREAD_ENVIRONMENT:
        value = os.environ.get(name, '').strip()
        if value:
            first = value.split(',')[0]
            if not first.isdigit() or int(first) < 1:
                raise OptionError(f'{name}={value!r}: a positive number of threads.')
            return int(first)
    return torch.get_num_threads() if torch.get_num_threads() != _TORCH_DEFAULT else None


def starting_threads(cpus, load):
    """The count to start with on ``cpus`` usable CPUs: those other work (``load``, in CPUs: ``other_work``) leaves
    free, at least 1."""
    return max(1, min(cpus, cpus - int(load + 0.5)))


def thread_candidates(cpus):
    """The counts trials choose from: 1, all usable CPUs, and halves between (a few, so trials stay short)."""
    counts, count = {1, cpus}, cpus
    while count > 2:
        count //= 2
        counts.add(count)
    return sorted(counts)


# A trial's count is kept only when its steps were this much faster (a share of the other's time): steps of a
# virtual machine vary by several percent from one to the next, and a switch on noise changes float rounding for
# nothing.
MARGIN = 0.9


class ThreadGovernor:
    """Sets torch's intra-op thread count for a run and adapts it to the measured speed of its steps.

    Use ``with governor.step(units):`` around each unit of work (``units``: how much work, e.g. frames, so that
    steps of different sizes compare). A trial moves to a neighbouring count (``thread_candidates``) for
    ``trial_steps`` steps, ended after one when that step is already much slower, and keeps the count whose
    steps were faster per unit. Trials start when a step is ``slowdown`` times slower than the recent ones (towards
    fewer threads), and every ``recheck`` steps towards more threads when other work leaves CPUs free (``recheck``
    doubles while the count holds, up to ``max_recheck``). A steady quiet machine runs no trial at all: its run
    computes exactly what it computed before the count was adapted (trials at other counts would change float
    rounding, and a training run's numbers with it). With a fixed count (``explicit``), or one CPU, it only reports.

    Args:
        cpus (int | None): The usable CPUs (default: ``usable_cpus()``).
        explicit (int | None): A count the user fixed (``explicit_threads``): used as it is, never changed.
        start (int | None): The count to start with (default: ``starting_threads``).
        log (callable | None): Called with one line when the count changes, and once when the machine is busy.
        clock (callable): Seconds (``time.perf_counter``; tests give their own).
        load (callable): The CPUs' worth of other work running now (default: ``other_work``).
        set_threads (callable): Applies a count (``torch.set_num_threads``).
    """

    def __init__(self, cpus=None, explicit=None, start=None, log=None, clock=time.perf_counter, load=None,
                 set_threads=torch.set_num_threads, trial_steps=2, first_recheck=16, max_recheck=256, slowdown=1.5):
        self.cpus = cpus or usable_cpus()
        self.fixed = explicit is not None
        self.candidates = [explicit] if self.fixed else thread_candidates(self.cpus)
        self.load = load or (lambda: other_work(self.cpus))
        self.threads = explicit if self.fixed else max(1, min(start or starting_threads(self.cpus, self.load()),
                                                             self.cpus))
        self.log, self.clock, self._set = log or (lambda line: None), clock, set_threads
        self.trial_steps, self.first_recheck, self.max_recheck, self.slowdown = (trial_steps, first_recheck,
                                                                                 max_recheck, slowdown)
        self.recheck, self.steps, self.changes = first_recheck, 0, []
        self._base, self._trial, self._settled_at, self._said_busy = [], None, 0, False
        self._set(self.threads)

    def fix(self, count):
        """Use ``count`` threads from now on, never changed again (a flag given after the governor was made)."""
        self.fixed, self.candidates, self._trial = True, [count], None
        self._apply(count)

    @property
    def adaptive(self):
        """Whether the count may change (not fixed by the user, more than one CPU)."""
        return not self.fixed and len(self.candidates) > 1

    def describe(self):
        """The count and why, for logs: ``2 threads (adapted to the load; 2 usable CPUs)``."""
        how = 'fixed by the user' if self.fixed else 'adapted to the load' if self.adaptive else 'one CPU'
        return f'{plural(self.threads, "thread")} ({how}; {plural(self.cpus, "usable CPU")})'

    @contextlib.contextmanager
    def step(self, units=1):
        """Time the block as one step of ``units`` units of work (not when it raises); the count may change after
        it."""
        start = self.clock()
        yield
        self.record(self.clock() - start, units)

    def record(self, seconds, units=1):
        """Account for a step that took ``seconds`` for ``units`` units of work (what ``step`` measures)."""
        self.steps += 1
        if self.steps == 1:  # the first step allocates and warms caches: no measure of any count
            return
        per_unit = seconds / max(units, 1e-9)
        if not self.adaptive:
            return
        if self._trial is None:
            self._steady_step(per_unit)
        else:
            self._trial_step(per_unit)

    def _steady_step(self, per_unit):
        recent = self._base[-3:]
        self._base.append(per_unit)
        del self._base[:-8]
        if len(recent) >= 2 and per_unit > self.slowdown * statistics.median(recent) and self.threads > 1:
            self._start_trial(self._neighbour(-1), 'steps slowed down')
        elif self.steps - self._settled_at >= self.recheck and len(self._base) >= 2:
            up = self._neighbour(+1)
            if up is not None and self.load() + up <= self.cpus + 0.5:
                self._start_trial(up, 'recheck')
            else:
                self._settled_at = self.steps

    def _neighbour(self, direction):
        index = self.candidates.index(self.threads) + direction
        return self.candidates[index] if 0 <= index < len(self.candidates) else None

    def _start_trial(self, count, why):
        self._trial = {'from': self.threads, 'base': statistics.median(self._base[-3:]), 'times': [], 'why': why}
        self._apply(count)

    def _trial_step(self, per_unit):
        trial = self._trial
        trial['times'].append(per_unit)
        clearly_worse = per_unit > self.slowdown * trial['base']
        if len(trial['times']) < self.trial_steps and not clearly_worse:
            return
        measured = statistics.median(trial['times'])
        before, count = trial['from'], self.threads
        self._trial, self._settled_at = None, self.steps
        if measured < MARGIN * trial['base']:
            self._base = [measured]
            self.recheck = self.first_recheck
            self.changes.append((self.steps, before, count))
            self.log(f'threads: {before} -> {count} ({trial["why"]}; per unit of work {trial["base"]:.3g} s at '
                     f'{before}, {measured:.3g} s at {count})')
            others = self.load()
            if count < self.cpus and not self._said_busy and others >= 0.5:
                self._said_busy = True
                self.log(f'this machine is busy (other work running on {others:.1f} of {plural(self.cpus, "CPU")}): '
                         'fewer threads are faster now, and the run is slower than on a quiet machine')
        else:
            self.recheck = min(self.recheck * 2, self.max_recheck)
            self._apply(before)

    def _apply(self, count):
        self.threads = count
        self._set(count)


def other_work(cpus, samples=5, interval=0.005):
    """How many CPUs' worth of other work is running now, as a share of ``cpus``: the kernel's count of runnable
    threads (``procs_running`` of ``/proc/stat``) less this process's running threads, averaged over a few samples.
    Unlike the load average, which lags by a minute (a run started right after another would see the other's
    load), this says what runs now; 0 where ``/proc`` has no such count."""
    counts = []
    for index in range(samples):
        if index:
            time.sleep(interval)
        try:
            with open('/proc/stat') as f:
                running = next(int(line.split()[1]) for line in f if line.startswith('procs_running'))
        except (OSError, StopIteration, ValueError):
            return 0.0
        counts.append(max(0, running - own_running_threads()))
    return statistics.mean(counts) * cpus / (os.cpu_count() or cpus)


def own_running_threads():
    """This process's threads the kernel has running or ready to run (state R), the one reading included."""
    count = 0
    try:
        tasks = os.listdir('/proc/self/task')
    except OSError:
        return 1
    for task in tasks:
        try:
            with open(f'/proc/self/task/{task}/stat') as f:
                count += f.read().rpartition(')')[2].split()[0] == 'R'
        except (OSError, IndexError):
            continue
    return max(count, 1)


def plural(count, noun):
    return f'{count} {noun}{"s" * (count != 1)}'


_process_governor = None


def process_governor(explicit=None, log=None):
    """The governor of this process's intra-op threads (one per process: ``torch.set_num_threads`` is the
    process's), made on first use from ``explicit_threads(explicit)``; a later ``explicit`` fixes the count, and
    ``log`` (a tool's logger) replaces where it reports."""
    global _process_governor
    if _process_governor is None:
        _process_governor = ThreadGovernor(explicit=explicit_threads(explicit), log=log or say)
    else:
        if explicit is not None:
            _process_governor.fix(explicit)
        if log is not None:
            _process_governor.log = log
    return _process_governor


def say(line):
    """Where a governor reports unless told: BasicSR's log where the run has one (training, testing), else standard
    error, above any progress bar."""
    logger = logging.getLogger('basicsr')
    if logger.handlers:
        logger.info(line)
    else:
        tqdm.write(line, file=sys.stderr)


def cpu_step(device, units=1):
    """``process_governor().step(units)`` for work on a CPU ``device``; nothing for a GPU's (its threads only
    launch kernels)."""
    if torch.device(device).type != 'cpu':
        return contextlib.nullcontext()
    return process_governor().step(units)

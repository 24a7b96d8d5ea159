"""One deblurring run shared by the processes of ``torchrun``, and stopped cleanly, all of it, when one fails.

``ProcessShare`` splits the work (every ``world_size``-th sequence, or every ``world_size``-th window of one video
through ``shared_windows``) and keeps the processes in touch outside the work itself: beside the process group of
the work (gloo on CPUs, nccl on GPUs) a gloo group carries one last word from every process to process 0 and back,
heard by a thread in each process:

* a process that fails sends process 0 its error in one line; process 0 stops (its outputs removed as on Ctrl-C),
  prints that line, and tells the others to stop, which they do without a word of their own;
* a process that dies (killed, out of memory) closes its connections: process 0 hears it at once and stops the run
  the same way; if process 0 dies, the others stop quietly;
* a process that finishes sends its summaries, which process 0 gathers (``finish``).

No process waits without hearing from the others: collective waits are polled, and process 0's wait for another
process's window has a time limit. A stop reaches the main thread as a signal (``STOP_SIGNAL``), so that it
interrupts whatever the process is doing between two operations; torchrun's SIGTERM (sent to the others when one
process exits with an error) stops a process once, quietly, and neither interrupts a clean-up under way
(``hold_stops``).
"""
import contextlib
import datetime
import io
import itertools
import json
import os
import os.path as osp
import shutil
import signal
import threading
import time
import uuid

import torch
import torch.distributed as dist

from memdeblur.utils.outputs import OutputError, write_bytes

STOP_SIGNAL = signal.SIGUSR1
DONE, FAILED, STOP = 1, 2, 3  # the last word of a process
WINDOW_WAIT_MIN_SECONDS = 600  # the least process 0 waits for another process's window
WINDOW_WAIT_FACTOR = 20  # ... or this many times its own slowest window, when that is longer
ANSWER_SECONDS = 30  # how long a failed process waits for process 0 to take over its error


class PeerFailed(RuntimeError):
    """Another process of the run failed or died (raised in process 0, which prints it)."""


class StoppedByPeer(SystemExit):
    """Process 0 (or torchrun: SIGTERM) stopped the run: raised in the other processes, which exit without a word
    (status 1, or 128 + the signal's number)."""

    def __init__(self, status=1):
        super().__init__(status)


def _send(kind, payload, peer, group):
    data = json.dumps(payload).encode()
    dist.send(torch.tensor([kind, len(data)], dtype=torch.int64), peer, group=group)
    if data:
        dist.send(torch.frombuffer(bytearray(data), dtype=torch.uint8), peer, group=group)


def _receive(peer, group):
    header = torch.zeros(2, dtype=torch.int64)
    dist.recv(header, peer, group=group)
    kind, size = header.tolist()
    data = torch.zeros(size, dtype=torch.uint8)
    if size:
        dist.recv(data, peer, group=group)
    return kind, json.loads(bytes(data.numpy()).decode()) if size else None


def one_line(err):
    """An exception as the one line a tool prints for it."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


class ProcessShare:
    """This process's share of the work under ``torchrun`` (``WORLD_SIZE`` > 1); one process alone otherwise.

    Use ``finish(items)`` when the work is done (process 0 gets everyone's items) and ``close(error)`` always
    (``error``: the exception the work ended with, or None).
    """

    def __init__(self, use_gpus):
        self.world_size = int(os.environ.get('WORLD_SIZE', '1'))
        self.rank = int(os.environ.get('RANK', '0'))
        self.local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        self.token = uuid.uuid4().hex[:12]
        self._failure = None  # (process, message) once a stop was heard
        self._stop_raised = False
        self._sent = False  # this process's last word went out with its items (``finish``)
        self._gathered = {}
        self._listeners = []
        self._previous_handlers = {}
        if self.world_size == 1:
            return
        if not dist.is_initialized():
            dist.init_process_group('nccl' if use_gpus else 'gloo')
        self._control = dist.new_group(backend='gloo', timeout=datetime.timedelta(days=365))
        box = [self.token]
        dist.broadcast_object_list(box, src=0)  # every process names the shared scratch folders alike
        self.token = box[0]
        if threading.current_thread() is threading.main_thread():
            self._previous_handlers = {STOP_SIGNAL: signal.signal(STOP_SIGNAL, self._raise_stop),
                                       signal.SIGTERM: signal.signal(signal.SIGTERM, self._raise_terminated)}
        for peer in (range(1, self.world_size) if self.rank == 0 else [0]):
            listener = threading.Thread(target=self._listen, args=(peer, ), daemon=True)
            listener.start()
            self._listeners.append(listener)

    def mine(self, items):
        return items[self.rank::self.world_size]

    def _listen(self, peer):
        """Wait for ``peer``'s last word; a failure or a stop interrupts this process's main thread."""
        try:
            kind, payload = _receive(peer, self._control)
        except Exception:  # its connections closed: the process died
            kind, payload = FAILED, 'stopped without a word (killed, or out of memory?)'
        if kind == DONE:
            self._gathered[peer] = payload or []
            return
        if self._failure is None:
            self._failure = (peer, payload if kind == FAILED else 'stop')
            if self._previous_handlers:
                signal.pthread_kill(threading.main_thread().ident, STOP_SIGNAL)

    def _stop_error(self):
        peer, message = self._failure
        if self.rank == 0:
            return PeerFailed(f'process {peer} of {self.world_size} failed: {message}')
        return StoppedByPeer()

    def _raise_stop(self, signum, frame):
        self.check()

    def _raise_terminated(self, signum, frame):
        """SIGTERM (torchrun stops the others when one process ended with an error): stop once, quietly; a stop
        already under way (``hold_stops``) is not interrupted, so that its clean-up finishes."""
        if not self._stop_raised:
            self._stop_raised = True
            raise StoppedByPeer(128 + signum)

    def hold_stops(self):
        """This process is stopping: no further stop signal interrupts its clean-up."""
        self._stop_raised = True

    def check(self):
        """Raise the stop another process asked for, if any and none is under way (the stop signal's handler, and
        the polling loops)."""
        if self._failure is not None and not self._stop_raised:
            self._stop_raised = True
            raise self._stop_error()

    def wait_until(self, done, what, timeout=None):
        """Poll ``done()`` until it is true, stopping when another process fails or ``timeout`` seconds pass."""
        start = time.monotonic()
        while not done():
            self.check()
            if timeout is not None and time.monotonic() - start > timeout:
                raise PeerFailed(f'{what}: nothing came for {timeout:.0f} s; stopping the run.')
            time.sleep(0.01)

    def barrier(self):
        """Wait until every process is here (polled: a failing process stops it)."""
        if self.world_size > 1:
            work = dist.barrier(async_op=True)
            self.wait_until(work.is_completed, 'waiting for the other processes')
            work.wait()

    def finish(self, items):
        """Everyone's ``items`` in process 0 (in the order of ``mine``'s shares interleaved back); the others send
        theirs and get their own back."""
        if self.world_size == 1:
            return items
        if self.rank != 0:
            _send(DONE, items, 0, self._control)
            self._sent = True
            return items
        self.wait_until(lambda: len(self._gathered) == self.world_size - 1, 'gathering the summaries')
        parts = [items] + [self._gathered[peer] for peer in range(1, self.world_size)]
        merged = []
        for index in range(max(len(part) for part in parts)):
            merged += [part[index] for part in parts if index < len(part)]
        return merged

    def close(self, error=None):
        """Say the last word: process 0 tells the others to stop (``error``) or that all is done; another process
        that failed sends process 0 its error and, once process 0 has taken it over, stops quietly
        (``StoppedByPeer``)."""
        if self.world_size == 1:
            return
        self.hold_stops()
        try:
            if self.rank == 0:
                for peer in range(1, self.world_size):
                    with contextlib.suppress(Exception):  # a process that died hears nothing
                        _send(STOP if error is not None else DONE, None, peer, self._control)
            elif error is not None and not isinstance(error, StoppedByPeer) and not self._sent:
                with contextlib.suppress(Exception):
                    _send(FAILED, one_line(error), 0, self._control)
                self._listeners[0].join(ANSWER_SECONDS)
                if self._failure is not None:
                    raise StoppedByPeer() from error  # process 0 prints the error
            else:
                self._listeners[0].join()
                if self._failure is not None and error is None:
                    raise StoppedByPeer()  # process 0 failed after this process had finished its share
        finally:
            if error is None:  # else the process is stopping: signals stay held until it has exited
                for signum, handler in self._previous_handlers.items():
                    signal.signal(signum, handler)
            if not any(listener.is_alive() for listener in self._listeners):  # else the process is stopping
                with contextlib.suppress(Exception):
                    dist.destroy_process_group()


@contextlib.contextmanager
def shared_scratch(share, scratch, index):
    """The folder under ``scratch`` through which the processes of ``share`` pass the windows of sequence ``index``;
    made by whoever needs it first, removed when all are done, or by any process that stops."""
    folder = osp.join(scratch, f'memdeblur_shared_{share.token}_{index}')
    try:
        yield folder
        share.barrier()  # inside: a process lost while the others wait here leaves no folder behind either
    except BaseException:
        share.hold_stops()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if share.rank == 0:
        shutil.rmtree(folder, ignore_errors=True)


def save_window(restored, folder, path):
    """Write a restored window whole (a temporary name, then renamed), naming ``--scratch`` when it cannot (a full
    disk, a read-only folder: serialised in memory first, so that the error is the file system's)."""
    buffer = io.BytesIO()
    torch.save(restored, buffer)
    try:
        os.makedirs(folder, exist_ok=True)
        write_bytes(path + '.part', buffer.getvalue())
        os.replace(path + '.part', path)
    except (OSError, OutputError) as err:
        with contextlib.suppress(OSError):
            os.remove(path + '.part')
        raise OutputError(f'--scratch {osp.dirname(folder)}: cannot write a window for process 0 there '
                          f'({getattr(err, "strerror", None) or err}); give --scratch a folder with room that every '
                          'process can write.') from err


def shared_windows(restore, share, folder):
    """``restore`` (of ``restore_stream``) with the windows shared between the processes of ``share``: window k is
    restored by process k mod N. Process 0 writes the output: the other processes' windows reach it as files in
    ``folder`` (written whole, then renamed; removed once read), and it waits for each at most
    ``WINDOW_WAIT_FACTOR`` times its own slowest window (``WINDOW_WAIT_MIN_SECONDS`` at least). The other processes
    skip the windows they do not restore (nothing they return is written)."""
    counter = itertools.count()
    slowest = [0.0]

    def run(window):
        index = next(counter)
        path = osp.join(folder, f'window_{index}.pt')
        if index % share.world_size == share.rank:
            start = time.monotonic()
            restored = restore(window)
            slowest[0] = max(slowest[0], time.monotonic() - start)
            if share.rank != 0:
                save_window(restored, folder, path)
            return restored
        if share.rank != 0:
            return window
        share.wait_until(lambda: osp.exists(path), f'window {index} of process {index % share.world_size}',
                         timeout=max(WINDOW_WAIT_MIN_SECONDS, WINDOW_WAIT_FACTOR * slowest[0]))
        restored = torch.load(path, weights_only=True)
        os.remove(path)
        return restored

    return run

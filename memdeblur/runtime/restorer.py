"""Restoring frames with a deblurring model: one ``Restorer`` for the video job, the test harness, the benchmarks
and library users.

    from memdeblur.runtime import Restorer
    restorer = Restorer.from_options('options/test_memdeblur_gopro_ds.yml', 'memdeblur_gopro_ds.pth.tar')
    for restored in restorer.restore(frames):   # numpy (H, W, 3) uint8/uint16 frames, or (3, H, W) tensors
        ...

A ``Restorer`` holds one clip model (``memdeblur.runtime.backends``: a PyTorch network, or an exported model run in
ONNX Runtime or OpenVINO, opened by ``open_model``) and how a sequence is cut for it (``memdeblur.runtime.settings``:
windows in time and tiles in space, or ``exact`` whole-sequence restoration), checked when it is made, so every
caller gets the same errors. ``restore`` streams: frames are taken from the iterable as the windows need them and
given back as they are restored, in order, so memory does not grow with the number of frames (as
``RealESRGANer.enhance`` for one image). With ``exact`` the input frames wait in a scratch file and the per-frame
states in others (``memdeblur.runtime.exact``).
"""
import os.path as osp
import queue
import tempfile
import threading
from collections import deque

import numpy as np
import torch
from tqdm import tqdm

from memdeblur.runtime.backends import open_model
from memdeblur.runtime.exact import FileFrames, RecomputedFrames
from memdeblur.runtime.frames import checked_frame, numpy_layout, owned_frame, prepend, tensor_layout, \
    to_float_frames, to_integer_frames
from memdeblur.runtime.settings import DEFAULT_TILE_OVERLAP, RestoreSettings
from memdeblur.runtime.windows import restore_stream
from memdeblur.utils.threads import cpu_step, process_governor


class Restorer:
    """Restores sequences of frames with one model.

    Args:
        model (nn.Module | str | VerifiedExport | ClipModel): A loaded whole-clip network (any ``network_traits``
            but a window), an exported ``.onnx`` model (its path, or as ``load_export`` read it), or a clip model
            ``open_model`` made; ``device``, ``precision``, ``fast``, ``compile_net`` and ``backend`` open it
            (``open_model``) and are left out for a clip model.
        device (torch.device | str | None): ``cpu`` (default), ``cuda[:N]`` or ``auto``.
        precision (str | None): ``float32`` (default), ``bfloat16``, or ``float16`` (GPUs; PyTorch only).
        fast (bool): The fast path (``memdeblur.networks.fast_runner``); False runs the network as it is.
        compile_net (bool): ``torch.compile`` the network.
        window (int | None): Frames restored together (default: 30; an exported model's own window).
        overlap (int | None): Frames shared by consecutive windows (default: 6; for an exported model's window a
            fifth of it, at most 6).
        tile (int | str): Tile side in pixels, 0 for whole frames, ``auto``: 512 for frames larger than 1280x720.
        tile_overlap (int): Pixels shared by neighbouring tiles.
        exact (bool): Restore each sequence as one whole (networks with whole-sequence passes), per-frame state in
            ``scratch``.
        scratch (str | None): Folder for ``exact``'s scratch files (default: the system's temporary folder).
        backend (str | None): ``pytorch`` (networks), ``onnxruntime`` or ``openvino`` (exported models); default: the
            first that runs the model.
    """

    def __init__(self, model, device=None, precision=None, fast=True, compile_net=False, window=None, overlap=None,
                 tile='auto', tile_overlap=DEFAULT_TILE_OVERLAP, exact=False, scratch=None, backend=None):
        self.model = open_model(model, backend, device, precision, fast=fast, compile_net=compile_net)
        self.settings = RestoreSettings.resolve(window, overlap, tile, tile_overlap, exact, scratch,
                                                self.model.fixed_window, ', '.join(self.model.sources) or 'the model')
        if exact:
            self.model.check_exact()
        if self.device.type == 'cpu':
            process_governor()  # the thread count this machine's CPUs and load allow, from the first frame on

    @classmethod
    def from_options(cls, opt_path, ckpt=None, **settings):
        """A ``Restorer`` of the network of a test options file (its ``network_g``), with the weights of ``ckpt`` or
        its ``path:pretrain_network_g``; ``settings`` as the constructor's."""
        from memdeblur.networks.checkpoint import network_from_options, weights_source
        from memdeblur.run_options import read_options
        opt = read_options(opt_path)
        restorer = cls(network_from_options(opt, opt_path, ckpt), **settings)
        restorer.model.sources += [path for path in (opt_path, weights_source(opt, ckpt).file) if path]
        return restorer

    @property
    def device(self):
        return self.model.device

    @property
    def label(self):
        """What outputs are labelled with: ``deblurred (MemDeblurNet)``, ``deblurred (MemDeblurNet, openvino)``."""
        return f'deblurred ({self.model.label})'

    @property
    def sources(self):
        """Files the model was read from: never outputs."""
        return self.model.sources

    def restore(self, frames):
        """Restored frames, one per input frame, in order, of the input's type: numpy (H, W, 3) uint8 or uint16
        frames give the same; tensors (3, H, W) uint8, uint16 or float32 in [0, 1] give the same.

        Each frame is copied as it is taken (``owned_frame``): a source that reuses one buffer for every frame, or
        changes a frame after giving it, restores as if each frame were a fresh array; the frames given back are
        the caller's to keep and change. Frames of any strides are taken (``frame[..., ::-1]``); anything else is
        a ``DataError`` (a ``ValueError``) naming the frame."""
        for _, restored in self.restore_pairs(frames):
            yield restored

    def restore_pairs(self, frames, wrap_windows=None, total=None, desc=None):
        """(input frame, restored frame) pairs, in order (``restore``'s frames beside the inputs they came from).

        Args:
            frames (Iterable): The frames (``restore``).
            wrap_windows (callable | None): Takes the function restoring one window and gives the one to use instead
                (the video job shares windows between processes so, ``memdeblur.video.process_share``); not with
                ``exact``.
            total (int | None): The number of frames, when known (progress).
            desc (str | None): Show progress under this name.
        """
        frames = iter(frames)
        first = next(frames, None)
        if first is None:
            return
        like = owned_frame(first, 0)
        as_given = numpy_layout if isinstance(first, np.ndarray) else tensor_layout
        inputs = prepend(like, (checked_frame(frame, index, like) for index, frame in enumerate(frames, 1)))
        settings = self.settings
        if settings.exact:
            yield from self._exact_pairs(inputs, as_given, total, desc)
            return
        restore = self._governed(self.model.window_function(settings.tile_for(*like.shape[-2:]),
                                                            settings.tile_overlap))
        if wrap_windows is not None:
            restore = wrap_windows(restore)
        waiting = deque()  # input frames whose restored frames are still to come (a window's worth at most)

        def tensors():
            for frame in inputs:
                waiting.append(frame)
                yield frame

        outputs = restore_stream(restore, tensors(), settings.window, settings.overlap,
                                 self.model.fixed_window is not None)
        with tqdm(total=total, unit='frame', desc=desc, disable=desc is None) as bar:
            for restored in outputs:
                yield as_given(waiting.popleft()), as_given(restored)
                if self.device.type == 'cpu':
                    bar.set_postfix_str(f'{process_governor().threads} threads', refresh=False)
                bar.update()

    def _governed(self, restore):
        """``restore`` (a window function) with each window timed for the thread count on a CPU
        (``memdeblur.utils.threads``; an exported model runs its session of the count chosen)."""

        def governed(window):
            with cpu_step(self.device, window.shape[0]):
                return restore(window)

        return governed

    def exact_steps(self, num_frames):
        """Progress steps of ``exact`` for ``num_frames`` frames (per-frame results written)."""
        return self.model.exact_steps(num_frames)

    def _exact_pairs(self, inputs, as_given, total, desc):
        """The whole sequence read into a scratch file, then restored by ``restore_exact`` in a worker thread that
        hands each frame over as it is finished (at most two waiting)."""
        with tempfile.TemporaryDirectory(prefix='memdeblur_exact_', dir=self.settings.scratch) as scratch:
            decoded = FileFrames(osp.join(scratch, 'input.bin'), 0, torch.device('cpu'))
            try:
                for frame in tqdm(inputs, total=total, unit='frame', disable=desc is None, desc=f'{desc} reading'):
                    decoded.append(frame)
                with tqdm(total=self.exact_steps(len(decoded)), unit='step', desc=f'{desc} exact',
                          disable=desc is None) as bar:
                    for index, restored in self._exact_outputs(decoded, scratch, bar.update):
                        yield as_given(decoded[index]), as_given(restored)
            finally:
                decoded.close()

    def _exact_outputs(self, decoded, scratch, on_step):
        """(index, restored frame in the input's integer type) from ``restore_exact`` running in a thread."""
        finished, stop = queue.Queue(maxsize=2), threading.Event()
        frames = RecomputedFrames(lambda frame: to_float_frames(frame) if not frame.is_floating_point() else frame,
                                  decoded)

        def hand_over(item):
            while not stop.is_set():
                try:
                    finished.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue
            raise StopRestoring

        def step():
            if stop.is_set():
                raise StopRestoring
            on_step()

        def work():
            try:
                self.model.restore_exact(frames, lambda index, restored: hand_over(
                    (index, restored if decoded[index].is_floating_point() else
                     to_integer_frames(restored, decoded[index].dtype))), scratch, on_write=step)
                hand_over(None)
            except StopRestoring:
                pass
            except BaseException as err:  # handed to the caller's thread, raised there
                try:
                    hand_over(err)
                except StopRestoring:
                    pass

        worker = threading.Thread(target=work, name='memdeblur-exact', daemon=True)
        worker.start()
        try:
            while True:
                item = finished.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join()


class StopRestoring(Exception):
    """Raised in the exact worker thread when the caller no longer wants its frames."""

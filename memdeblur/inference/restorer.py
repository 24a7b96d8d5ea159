"""Restoring frames with a deblurring model: one ``Restorer`` for the video tool, the test harness, the benchmarks
and library users.

    from memdeblur.inference.restorer import Restorer
    restorer = Restorer.from_options('options/test_memdeblur_gopro_ds.yml', 'memdeblur_gopro_ds.pth.tar')
    for restored in restorer.restore(frames):   # numpy (H, W, 3) uint8/uint16 frames, or (3, H, W) tensors
        ...

A ``Restorer`` holds a model (a PyTorch network, or a model exported by ``tools/export_onnx.py`` run in ONNX
Runtime or OpenVINO) and how it runs: device, precision, the fast path, windows in time and tiles in space, or
``exact`` whole-sequence restoration. It checks those settings when it is made, so every caller gets the same
errors. ``restore`` streams: frames are taken from the iterable as the windows need them and given back as they are
restored, in order, so memory does not grow with the number of frames (as ``RealESRGANer.enhance`` for one
image). With ``exact`` the input frames wait in a scratch file and the per-frame states in others
(``memdeblur.inference.exact``).
"""
import os.path as osp
import queue
import tempfile
import threading
from collections import deque

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from memdeblur.utils.errors import DataError
from memdeblur.inference.exact import FileFrames, RecomputedFrames, check_exact_supported, restore_exact
from memdeblur.inference.fast_inference import inference_runner
from memdeblur.inference.frame_tensors import to_float_frames, to_integer_frames
from memdeblur.inference.onnx_backends import BACKENDS, ExportedModel
from memdeblur.inference.process_share import shared_windows
from memdeblur.inference.windows import clip_window_restorer, restore_stream, window_restorer
from memdeblur.utils.allocator import retain_freed_memory
from memdeblur.utils.devices import resolve_device
from memdeblur.utils.threads import cpu_step, process_governor
from memdeblur.networks.traits import bare_network, network_traits
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.precision import PRECISIONS

AUTO_TILE_AREA = 1280 * 720  # frames larger than this are tiled by default
AUTO_TILE = 512
MIN_TILE = 32  # smaller tiles leave a network almost nothing around each pixel (MemDeblur's coarsest scale: 2x2)
DEFAULT_WINDOW = 30
DEFAULT_OVERLAP = 6
FRAME_TYPES = (torch.uint8, torch.uint16, torch.float32)


class Restorer:
    """Restores sequences of frames with one model.

    Args:
        model (nn.Module | str | VerifiedExport): A loaded whole-clip network (any ``network_traits`` but a
            window), or the path of an exported ``.onnx`` model, or one ``onnx_export.load_export`` read.
        device (torch.device | str): Where it runs: ``cpu``, ``cuda[:N]`` or ``auto``; one this machine lacks is
            refused here (``memdeblur.utils.devices.resolve_device``).
        precision (str): ``float32``, ``bfloat16`` or ``float16`` (GPUs; PyTorch only).
        fast (bool): The fast path (``memdeblur.inference.fast_inference``); False runs the network as it is.
        compile_net (bool): ``torch.compile`` the network.
        window (int | None): Frames restored together (default: 30; an exported model's own window).
        overlap (int | None): Frames shared by consecutive windows (default: 6; for an exported model's window a
            fifth of it, at most 6).
        tile (int | str): Tile side in pixels, 0 for whole frames, ``auto``: ``AUTO_TILE`` for frames larger than
            1280x720.
        tile_overlap (int): Pixels shared by neighbouring tiles.
        exact (bool): Restore each sequence as one whole (``whole_sequence_passes`` networks), per-frame state in
            ``scratch``.
        scratch (str | None): Folder for ``exact``'s scratch files (default: the system's temporary folder).
        backend (str | None): ``pytorch`` (networks), ``onnxruntime`` or ``openvino`` (exported models; default
            ``onnxruntime``).
    """

    def __init__(self, model, device='cpu', precision='float32', fast=True, compile_net=False, window=None,
                 overlap=None, tile='auto', tile_overlap=32, exact=False, scratch=None, backend=None):
        self.device = resolve_device(device)
        if self.device.type == 'cpu':
            process_governor()  # the thread count this machine's CPUs and load allow, from the first frame on
        if precision not in PRECISIONS:
            raise OptionError(f'precision {precision!r}: one of {", ".join(PRECISIONS)}.')
        if isinstance(model, nn.Module):
            self._check_network(model, backend)
            window = DEFAULT_WINDOW if window is None else window
            overlap = default_overlap(window, False) if overlap is None else overlap
            check_settings(window, overlap, tile, tile_overlap, exact)  # before the network is prepared: at once
            self.backend, self.exported = 'pytorch', None
            traits = network_traits(model)
            self.margins, self.label = traits.frame_margins, f'deblurred ({type(bare_network(model)).__name__})'
            self.padding = traits.padding()
            self.network, self.context = inference_runner(model, self.device, precision, fast=fast,
                                                          compile_net=compile_net)
            if self.device.type == 'cpu' and fast:
                retain_freed_memory()
            if exact:
                check_exact_supported(self.network)
        else:
            self.backend = backend or BACKENDS[0]
            name = getattr(model, 'path', model)
            if compile_net or not fast:
                raise OptionError(f'{name}: an exported model runs as exported (its fast path built in): no '
                                  'compile, no plain network.')
            if exact:
                raise OptionError(f'{name}: exact whole-sequence restoration runs the PyTorch network; an exported '
                                  'model restores windows.')
            self.exported = ExportedModel(model, self.backend, precision, self.device)
            self.network, self.margins = None, self.exported.margins
            self.label = f'deblurred ({self.exported.label})'
            window = self._own_window(window)
            overlap = default_overlap(window, True) if overlap is None else overlap
            check_settings(window, overlap, tile, tile_overlap, exact)
        self.window, self.overlap, self.tile, self.tile_overlap = window, overlap, tile, tile_overlap
        self.exact, self.scratch = exact, scratch or tempfile.gettempdir()
        # files the model was read from: never outputs
        self.sources = [] if self.exported is None else [self.exported.path]

    @staticmethod
    def _check_network(net, backend):
        """Refuse a network this restorer cannot run: one that restores window centres, or a backend for exported
        models."""
        if backend not in (None, 'pytorch'):
            raise OptionError(f'backend {backend}: runs an exported model; export the network first '
                              '(tools/export_onnx.py) and give the .onnx file.')
        traits = network_traits(net)
        if traits.restores_windows:
            raise OptionError(f'{type(bare_network(net)).__name__} restores the centre of a {traits.window}-frame '
                              'window; restore whole-clip networks (MemDeblur, ESTRNN, BasicVSR++) here and test '
                              'sliding-window networks (EDVR) with tools/test.py.')

    @classmethod
    def from_options(cls, opt_path, ckpt=None, **settings):
        """A ``Restorer`` of the network of a test options file (its ``network_g``), with the weights of ``ckpt`` or
        its ``path:pretrain_network_g``; ``settings`` as the constructor's."""
        from memdeblur.networks.checkpoint import network_from_options, weights_source
        from memdeblur.run_options import read_options
        opt = read_options(opt_path)
        restorer = cls(network_from_options(opt, opt_path, ckpt), **settings)
        restorer.sources = [path for path in (opt_path, weights_source(opt, ckpt).file) if path]
        return restorer

    def _own_window(self, window):
        """The window an exported model restores (it was traced for its number of frames); ``window`` may only
        repeat it."""
        own = self.exported.output_frames
        if window not in (None, own):
            raise OptionError(f'window {window}: {self.exported.path} was exported for windows of {own} frames; use '
                              f'window {own}, or export again with --frames for another window.')
        return own

    def tile_for(self, height, width):
        """The tile side used for frames of this size (0: whole frames)."""
        if self.exact:
            return 0
        if self.tile == 'auto':
            return AUTO_TILE if height * width > AUTO_TILE_AREA else 0
        return self.tile

    def restore(self, frames):
        """Restored frames, one per input frame, in order, of the input's type: numpy (H, W, 3) uint8 or uint16
        frames give the same; tensors (3, H, W) uint8, uint16 or float32 in [0, 1] give the same.

        Each frame is copied as it is taken (``owned_frame``): a source that reuses one buffer for every frame, or
        changes a frame after giving it, restores as if each frame were a fresh array; the frames given back are
        the caller's to keep and change. Frames of any strides are taken (``frame[..., ::-1]``); anything else is
        a ``DataError`` (a ``ValueError``) naming the frame."""
        for _, restored in self.restore_pairs(frames):
            yield restored

    def restore_pairs(self, frames, share=None, folder=None, total=None, desc=None):
        """(input frame, restored frame) pairs, in order (``restore``'s frames beside the inputs they came from).

        Args:
            frames (Iterable): The frames (``restore``).
            share (ProcessShare | None): Processes restoring this sequence together, its windows shared through
                ``folder`` (``memdeblur.inference.process_share.shared_windows``): process 0 gets every frame,
                the others' restored frames are not theirs to use.
            folder (str | None): The shared scratch folder of ``share``.
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
        if self.exact:
            yield from self._exact_pairs(inputs, as_given, total, desc)
            return
        restore = self._governed(self._window_function(self.tile_for(*like.shape[-2:])))
        if share is not None:
            restore = shared_windows(restore, share, folder)
        waiting = deque()  # input frames whose restored frames are still to come (a window's worth at most)

        def tensors():
            for frame in inputs:
                waiting.append(frame)
                yield frame

        outputs = restore_stream(restore, tensors(), self.window, self.overlap, self.exported is not None)
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

    def _window_function(self, tile):
        if self.exported is not None:
            return clip_window_restorer(self.exported, self.margins, tile, self.tile_overlap)
        return window_restorer(self.network, self.context, self.device, self.margins, tile, self.tile_overlap,
                               self.padding)

    def exact_steps(self, num_frames):
        """Progress steps of ``exact`` for ``num_frames`` frames (per-frame results written)."""
        return num_frames * network_traits(self.network).whole_sequence_passes

    def _exact_pairs(self, inputs, as_given, total, desc):
        """The whole sequence read into a scratch file, then restored by ``restore_exact`` in a worker thread that
        hands each frame over as it is finished (at most two waiting)."""
        with tempfile.TemporaryDirectory(prefix='memdeblur_exact_', dir=self.scratch) as scratch:
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
                with self.context():
                    restore_exact(self.network, frames, lambda index, restored: hand_over(
                        (index, restored if decoded[index].is_floating_point() else
                         to_integer_frames(restored, decoded[index].dtype))), scratch, self.device, on_write=step)
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


def default_overlap(window, exported):
    """Frames consecutive windows share when not told: ``DEFAULT_OVERLAP``; for an exported model's window (often
    short) a fifth of it, at most ``DEFAULT_OVERLAP``."""
    return min(DEFAULT_OVERLAP, round(window / 5)) if exported else DEFAULT_OVERLAP


def check_settings(window, overlap, tile, tile_overlap, exact, name=str):
    """Raise ``OptionError`` for windows, tiles and exact mode a ``Restorer`` cannot run; ``name(setting)`` is how the
    caller spells a setting in the message (a tool: its flag)."""
    if not isinstance(window, int) or window < 1 or not isinstance(overlap, int) or not 0 <= overlap < window:
        raise OptionError(f'{name("window")} {window} {name("overlap")} {overlap}: need window >= 1 and 0 <= overlap '
                          '< window.')
    if tile != 'auto' and (not isinstance(tile, int) or tile < 0):
        raise OptionError(f'{name("tile")} {tile!r}: auto, 0 (whole frames) or a side in pixels.')
    if exact and tile not in ('auto', 0):
        raise OptionError(f'{name("exact")} restores whole frames; drop {name("tile")} (or use windows without '
                          f'{name("exact")}).')
    if tile not in ('auto', 0):
        if tile < MIN_TILE:
            raise OptionError(f'{name("tile")} {tile}: tiles of fewer than {MIN_TILE} pixels leave the network too '
                              f'little to see; use 0 (whole frames) or a side of at least {MIN_TILE}.')
        if not isinstance(tile_overlap, int) or not 0 <= tile_overlap < tile:
            raise OptionError(f'{name("tile")} {tile} {name("tile_overlap")} {tile_overlap}: need 0 <= tile overlap '
                              '< tile.')


class StopRestoring(Exception):
    """Raised in the exact worker thread when the caller no longer wants its frames."""


def prepend(first, rest):
    """``first``, then the items of ``rest``."""
    yield first
    yield from rest


def owned_frame(frame, index):
    """A frame as a (3, H, W) CPU tensor of its own memory: a copy, since the caller may reuse its buffer for the
    next frame (OpenCV's ``cap.read(frame)``) or change it after handing it over, while a window holds frames
    past the call that gave them. Any strides are taken (``frame[..., ::-1]``, crops, ``permute``d tensors).

    Raises:
        DataError: naming frame ``index`` and what frames must be: numpy (H, W, 3) uint8/uint16, or tensors
            (3, H, W) uint8/uint16, or float32 with finite values in [0, 1].
    """
    if isinstance(frame, np.ndarray):
        if frame.dtype not in (np.uint8, np.uint16) or frame.ndim != 3 or frame.shape[2] != 3:
            raise DataError(f'frame {index}: numpy frames are (H, W, 3) uint8 or uint16, got {frame.shape} '
                            f'{frame.dtype}.')
        return torch.from_numpy(np.array(frame, order='C')).permute(2, 0, 1)
    if not torch.is_tensor(frame) or frame.dtype not in FRAME_TYPES or frame.ndim != 3 or frame.shape[0] != 3:
        shown = f'{tuple(frame.shape)} {frame.dtype}' if torch.is_tensor(frame) else type(frame).__name__
        raise DataError(f'frame {index}: tensors are (3, H, W) uint8, uint16 or float32 in [0, 1], got {shown}.')
    owned = frame.detach().to('cpu', copy=True)
    if owned.is_floating_point():
        low, high = torch.aminmax(owned) if owned.numel() else (torch.tensor(0.), torch.tensor(0.))
        if not (torch.isfinite(low) and torch.isfinite(high) and 0 <= low and high <= 1):
            raise DataError(f'frame {index}: float32 frames hold values in [0, 1], got values from {low.item():g} '
                            f'to {high.item():g} (scale 8-bit frames by 1/255, clamp, or give uint8).')
    return owned


def checked_frame(frame, index, first):
    """``owned_frame`` of ``frame``, which must have the shape and type of the sequence's ``first`` frame tensor."""
    tensor = owned_frame(frame, index)
    if tensor.shape != first.shape or tensor.dtype != first.dtype:
        raise DataError(f'frame {index} is {tuple(tensor.shape[-2:])} (height, width) {tensor.dtype}, the first '
                        f'frame {tuple(first.shape[-2:])} {first.dtype}: a sequence has one frame size and type.')
    return tensor


def numpy_layout(frame):
    """A (3, H, W) tensor as the (H, W, 3) numpy frame callers who gave numpy frames get back."""
    return frame.permute(1, 2, 0).numpy()


def tensor_layout(frame):
    """A (3, H, W) tensor as callers who gave tensors get it back: as it is."""
    return frame

"""Deblurring whole videos and frame folders with one network: what ``tools/deblur_video.py`` runs, for library
users too.

    from memdeblur.inference.video_deblurring import VideoDeblurrer
    from memdeblur.utils.checkpoint import network_from_options
    from memdeblur.data.video_io import find_inputs
    deblurrer = VideoDeblurrer(network_from_options(read_options('options/test_memdeblur_gopro_ds.yml')))
    for seq in find_inputs('clips/'):
        deblurrer.deblur(seq, f'out/{seq.name}.mp4')

Each sequence is streamed: frames are read, restored in overlapping windows (``memdeblur.inference.windows``)
or, with ``exact``, as one whole with per-frame state in scratch files (``memdeblur.inference.exact``), and
written as they come, so memory does not grow with the length of the video. What the network needs comes from
its ``network_traits``: frame margins filled by reflection, frame sizes padded; networks that restore the centre
of a window (EDVR) are tested with ``tools/test.py`` instead.
"""
import collections
import itertools
import os.path as osp
import tempfile
import time

import numpy as np
import torch
from tqdm import tqdm

from memdeblur.data.errors import DataError
from memdeblur.evaluation.comparison_image import labelled_row
from memdeblur.evaluation.no_reference import FootageReport
from memdeblur.data.video_io import DEFAULT_CRF, VideoWriter, check_video_encoding, is_video_name
from memdeblur.inference.exact import FileFrames, RecomputedFrames, check_exact_supported, passes_per_frame, \
    restore_exact
from memdeblur.inference.fast_path import inference_runner
from memdeblur.inference.process_share import shared_scratch, shared_windows
from memdeblur.inference.frame_tensors import to_float_frames, to_integer_frames
from memdeblur.inference.run_plan import output_frame_names, report_paths
from memdeblur.utils.padding import SpatialPadding
from memdeblur.inference.windows import restore_stream, window_restorer
from memdeblur.utils.allocator import retain_freed_memory
from memdeblur.utils.memory import peak_memory_mib
from memdeblur.utils.network_traits import bare_network, network_traits

AUTO_TILE_AREA = 1280 * 720  # frames larger than this are tiled by default
AUTO_TILE = 512
MIN_TILE = 32  # smaller tiles leave a network almost nothing around each pixel (MemDeblur's coarsest scale: 2x2)


class DiscardedOutput:
    """What the processes other than process 0 write to when they share one video's windows: nothing."""

    count, notes = 0, ()

    def write(self, frame, pts=None):
        self.count += 1


def to_image(restored):
    """(3, H, W) uint8 tensor -> (H, W, 3) numpy, as the writers take it."""
    return restored.permute(1, 2, 0).numpy()


def side_by_side(original, restored, label, rotation=0):
    """Input | restored, each half labelled so that a viewer can tell which is which, as a player shows them: a
    video's display ``rotation`` (degrees counter-clockwise, which the output keeps) is applied to the halves before
    they are labelled and put side by side, and undone on the whole, so that the player's rotation shows the halves
    upright, next to each other."""
    turns = round(rotation / 90) % 4
    shown = labelled_row([np.rot90(original, turns), np.rot90(restored, turns)], ['input', label])
    return np.ascontiguousarray(np.rot90(shown, -turns))


class VideoDeblurrer:
    """Deblurs sequences (``memdeblur.data.video_io.VideoInput``) into videos or frame folders with one network.

    Args:
        net (nn.Module): A loaded network that restores whole clips (any ``network_traits`` but a window).
        device (torch.device | str): Where it runs.
        precision (str): ``float32``, ``bfloat16`` or ``float16`` (GPUs).
        fast (bool): The fast path (``memdeblur.inference.fast_path``); False runs the network as it is.
        compile_net (bool): ``torch.compile`` the network.
        window, overlap (int): Frames restored together and shared by consecutive windows.
        tile (int | str): Tile side in pixels, 0 for whole frames, ``auto``: ``AUTO_TILE`` for frames larger than
            1280x720.
        tile_overlap (int): Pixels shared by neighbouring tiles.
        exact (bool): Restore each sequence as one whole (``whole_sequence_passes`` networks), per-frame state in
            ``scratch``.
        scratch (str | None): Folder for ``exact``'s scratch files (default: the system's temporary folder).
        side_by_side (bool): Write input | deblurred side by side.
        codec (str | None): Video codec of video outputs (default: the container's).
        crf (int): Its constant rate factor.
        pix_fmt (str | None): Their pixel format (default: 8-bit ``yuv420p``; ``yuv420p10le`` keeps 10 bits).
        report (bool): Also write a no-ground-truth report per sequence (``report_paths``): edge sharpness and
            NIQE of input and output frames, CSV and plot (``memdeblur.evaluation.no_reference``).
    """

    def __init__(self, net, device='cpu', precision='float32', fast=True, compile_net=False, window=30, overlap=6,
                 tile='auto', tile_overlap=32, exact=False, scratch=None, side_by_side=False, codec=None,
                 crf=DEFAULT_CRF, pix_fmt=None, report=False):
        traits = network_traits(net)
        if traits.restores_windows:
            raise DataError(f'{type(net).__name__} restores the centre of a {traits.window}-frame window; this tool '
                            'runs networks that restore whole clips (MemDeblur, ESTRNN, BasicVSR++): test '
                            'sliding-window networks (EDVR) with tools/test.py.')
        self.device = torch.device(device)
        self.label = f'deblurred ({type(bare_network(net)).__name__})'
        self.margins = traits.frame_margins
        self.padding = SpatialPadding.for_network(net)
        self.runner, self.context = inference_runner(net, self.device, precision, fast=fast, compile_net=compile_net)
        if self.device.type == 'cpu' and fast:
            retain_freed_memory()
        if exact:
            check_exact_supported(self.runner)
        self.window, self.overlap, self.tile, self.tile_overlap = window, overlap, tile, tile_overlap
        self.exact, self.scratch, self.side_by_side = exact, scratch or tempfile.gettempdir(), side_by_side
        self.codec, self.crf, self.pix_fmt, self.report = codec, crf, pix_fmt, report
        self._report = None
        self._shared_sequences = itertools.count()  # names each shared sequence's scratch alike in every process

    def deblur(self, seq, out_path, inputs=(), overwrite=False, share=None, record=None):
        """Deblur one sequence into ``out_path`` (a video file or a folder of PNG frames).

        Args:
            seq (VideoInput): The sequence.
            out_path (str): Where its output goes (written whole or not at all).
            inputs (Iterable[str]): Paths the output may not be, hold or lie in (everything the run reads).
            overwrite (bool): Replace an existing output.
            share (ProcessShare | None): Processes that restore this sequence together (its windows shared;
                process 0 writes the output and returns the summary, the others None). With ``exact``, process 0
                restores it alone.
            record (str | None): Text the output keeps of what made it (``VideoWriter``'s ``record``).

        Returns:
            dict: ``sequence``, ``output``, ``frames``, ``seconds``, ``frames_per_second``, ``peak_memory_mib``
            (of the process so far), ``peak_memory_kind`` and ``notes`` (what became of the input's other
            streams): what the tool's summary prints and its ``--summary`` JSON holds.
        """
        frames = seq.frames()
        first = next(frames, None)
        frames.close()
        if first is None:
            raise DataError(f'{seq.path} holds no frames.')
        if is_video_name(out_path):  # an output the encoder cannot take is refused before any frame is restored
            shown = side_by_side(first, first, self.label, self._rotation(seq)) if self.side_by_side else first
            check_video_encoding(out_path, *shown.shape[:2], self.codec, self.pix_fmt, self.crf,
                                 seq.facts.colour if seq.facts else None)
        start = time.perf_counter()
        shared = share is not None and share.world_size > 1
        scratch = shared_scratch(share, self.scratch, next(self._shared_sequences)) if shared else None
        if shared and share.rank != 0:
            if not self.exact:
                with scratch as folder:
                    self._deblur_windows(seq, DiscardedOutput(), self._tile_size(*first.shape[:2]), share, folder)
            return None
        self._report = FootageReport() if self.report else None
        names = None if is_video_name(out_path) else output_frame_names(seq)
        writer = VideoWriter(out_path, seq.fps, names, list(inputs), overwrite, source=seq, codec=self.codec,
                             crf=self.crf, pix_fmt=self.pix_fmt, record=record)
        with writer:
            if self.exact:
                self._deblur_exact(seq, writer)
            elif shared:
                with scratch as folder:
                    self._deblur_windows(seq, writer, self._tile_size(*first.shape[:2]), share, folder)
            else:
                self._deblur_windows(seq, writer, self._tile_size(*first.shape[:2]))
        seconds = time.perf_counter() - start
        memory, kind = peak_memory_mib(self.device)
        summary = {'sequence': seq.name, 'output': out_path, 'frames': writer.count, 'seconds': seconds,
                   'frames_per_second': writer.count / seconds, 'peak_memory_mib': memory, 'peak_memory_kind': kind,
                   'notes': writer.notes}
        if self._report is not None:
            csv_path, plot_path = report_paths(out_path)
            self._report.write(csv_path, plot_path, f'{seq.name}: input and {self.label}')
            summary['report'] = {'csv': csv_path, 'plot': plot_path, 'means': self._report.means()}
        return summary

    @staticmethod
    def _rotation(seq):
        return seq.facts.rotation if seq.facts else 0

    def _tile_size(self, height, width):
        if self.tile == 'auto':
            return AUTO_TILE if height * width > AUTO_TILE_AREA else 0
        return self.tile

    def _write(self, writer, original, restored, pts, seq):
        image = to_image(restored)
        if self._report is not None:
            shown = writer.count / seq.fps if pts is None else float(pts * seq.facts.time_base)
            self._report.add(shown, original, image)
        if self.side_by_side:
            image = side_by_side(original, image, self.label, self._rotation(seq))
        writer.write(image, pts)

    def _deblur_windows(self, seq, writer, tile, share=None, folder=None):
        """Stream the sequence through overlapping windows into ``writer`` (with ``share``: the windows shared
        between its processes through ``folder``)."""
        restore = window_restorer(self.runner, self.context, self.device, self.margins, tile, self.tile_overlap,
                                  self.padding)
        if share is not None:
            restore = shared_windows(restore, share, folder)
        waiting = collections.deque()  # (input frame for side by side, timestamp) of frames not yet written

        def frames():
            for frame, pts in seq.timed_frames():
                waiting.append((frame if self.side_by_side or self.report else None, pts))
                yield torch.from_numpy(frame).permute(2, 0, 1)  # uint8, or uint16 for deeper frames

        with tqdm(total=seq.num_frames or None, unit='frame', desc=seq.name) as bar:
            for restored in restore_stream(restore, frames(), self.window, self.overlap):
                original, pts = waiting.popleft()
                self._write(writer, original, restored, pts, seq)
                bar.update()

    def _deblur_exact(self, seq, writer):
        """Restore the sequence as one whole (``restore_exact``) into ``writer``."""
        with tempfile.TemporaryDirectory(prefix='memdeblur_exact_', dir=self.scratch) as scratch:
            decoded = FileFrames(osp.join(scratch, 'input.bin'), 0, torch.device('cpu'))
            timestamps = []
            try:
                for frame, pts in tqdm(seq.timed_frames(), total=seq.num_frames or None, unit='frame',
                                       desc=f'{seq.name} reading'):
                    decoded.append(torch.from_numpy(frame))
                    timestamps.append(pts)
                frames = RecomputedFrames(lambda frame: to_float_frames(frame.permute(2, 0, 1)), decoded)
                with tqdm(total=len(decoded) * passes_per_frame(self.runner), unit='step',
                          desc=f'{seq.name} exact') as bar:

                    def write(index, restored):
                        image = to_integer_frames(restored, decoded[index].dtype)
                        self._write(writer, decoded[index].numpy(), image, timestamps[index], seq)

                    with self.context():
                        restore_exact(self.runner, frames, write, scratch, self.device, on_write=bar.update)
            finally:
                decoded.close()

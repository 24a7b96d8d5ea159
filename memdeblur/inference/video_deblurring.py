"""Deblurring whole videos and frame folders with one network: what ``tools/deblur_video.py`` runs, for library
users too.

    from memdeblur.inference.video_deblurring import VideoDeblurrer, network_from_options
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
import contextlib
import itertools
import os
import os.path as osp
import shutil
import tempfile
import time

import numpy as np
import torch
import torch.distributed as dist
from basicsr.archs import build_network
from tqdm import tqdm

from memdeblur.data.errors import DataError
from memdeblur.evaluation.comparison_image import labelled
from memdeblur.evaluation.no_reference import FootageReport
from memdeblur.data.video_io import DEFAULT_CRF, VideoWriter, is_video_name, list_frame_files, output_container
from memdeblur.inference.exact import FileFrames, RecomputedFrames, check_exact_supported, passes_per_frame, \
    restore_exact
from memdeblur.inference.fast_path import inference_runner
from memdeblur.inference.frame_tensors import to_float_frames, to_integer_frames
from memdeblur.utils.padding import SpatialPadding
from memdeblur.inference.windows import restore_stream, window_restorer
from memdeblur.utils.allocator import retain_freed_memory
from memdeblur.utils.checkpoint import load_pretrained
from memdeblur.utils.memory import peak_memory_mib
from memdeblur.utils.network_traits import bare_network, network_traits
from memdeblur.utils.outputs import check_outputs

AUTO_TILE_AREA = 1280 * 720  # frames larger than this are tiled by default
AUTO_TILE = 512
MIN_TILE = 32  # smaller tiles leave a network almost nothing around each pixel (MemDeblur's coarsest scale: 2x2)


def network_from_options(opt, opt_path='options', ckpt=None):
    """The network of a test options file (read by ``read_options``), loaded from ``ckpt`` or the file's
    ``path:pretrain_network_g`` (BasicSR or the authors' format)."""
    if 'network_g' not in opt:
        raise DataError(f'{opt_path} has no network_g section.')
    weights = ckpt or (opt.get('path') or {}).get('pretrain_network_g')
    if not weights:
        raise DataError(f'No weights: give --ckpt or set path:pretrain_network_g in {opt_path}.')
    return load_pretrained(build_network(dict(opt['network_g'])), weights)


def plan_outputs(inputs, output, kind):
    """The output path of every input sequence: ``output`` for one, ``output/<name>[.mp4]`` for several.

    Args:
        inputs (list[VideoInput]): The sequences.
        output (str): A video file name or a folder.
        kind (str): ``auto`` (mp4 when ``output`` has a video extension, else PNG frames), ``mp4`` or ``png``.
    """
    if kind == 'auto':
        kind = 'mp4' if is_video_name(output) else 'png'
    elif kind == 'png' and is_video_name(output):
        raise DataError(f'--format png writes a folder of frames, but {output} is named like a video file; '
                        'name a folder, or drop --format png for a video.')
    if len(inputs) == 1:
        if kind == 'mp4' and not is_video_name(output):
            return [output + '.mp4']
        return [output]
    if is_video_name(output):
        raise DataError(f'{len(inputs)} input sequences need an output folder, not {output}.')
    return [osp.join(output, seq.name + ('.mp4' if kind == 'mp4' else '')) for seq in inputs]


def check_planned_outputs(outputs, inputs, overwrite):
    """Refuse, before a network is loaded, outputs that ``VideoWriter`` would refuse after it: existing ones
    (without ``overwrite``) and any that is, holds or lies inside one of ``inputs`` (paths)."""
    for out in outputs:
        is_video = is_video_name(out)
        if is_video:
            output_container(out)  # a name we cannot write is refused here, before the network is loaded
        check_outputs(files=[out] if is_video else [], folders=[] if is_video else [out], overwrite=overwrite,
                      inputs=inputs)


def report_paths(out_path):
    """(CSV, PNG) of the no-ground-truth report of an output video or frame folder, beside it."""
    stem = osp.splitext(out_path)[0] if is_video_name(out_path) else osp.normpath(out_path)
    return stem + '_report.csv', stem + '_report.png'


class ProcessShare:
    """This process's share of the work under ``torchrun`` (``WORLD_SIZE`` > 1): the process group, started here
    (gloo on CPUs, nccl on GPUs), and every ``world_size``-th item from ``rank``; one process alone otherwise.

    A process that fails ends the run: torchrun stops the others (SIGTERM, which our tools turn into an exception
    that removes their temporary outputs).
    """

    def __init__(self, use_gpus):
        self.world_size = int(os.environ.get('WORLD_SIZE', '1'))
        self.rank = int(os.environ.get('RANK', '0'))
        self.local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group('nccl' if use_gpus else 'gloo')

    def mine(self, items):
        return items[self.rank::self.world_size]

    def barrier(self):
        if self.world_size > 1:
            dist.barrier()

    def broadcast(self, value):
        """Process 0's ``value``, on every process."""
        if self.world_size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, items):
        """Everyone's ``items`` on every process, in the order of ``mine``'s shares interleaved back."""
        if self.world_size == 1:
            return items
        parts = [None] * self.world_size
        dist.all_gather_object(parts, items)
        merged = []
        for index in range(max(len(part) for part in parts)):
            merged += [part[index] for part in parts if index < len(part)]
        return merged

    def close(self):
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def shared_windows(restore, share, folder):
    """``restore`` (of ``restore_stream``) with the windows shared between the processes of ``share``: window k is
    restored by process k mod N. Process 0 writes the output: the other processes' windows reach it as files in
    ``folder`` (written whole, then renamed; removed once read). The other processes skip the windows they do not
    restore (nothing they return is written)."""
    counter = itertools.count()

    def run(window):
        index = next(counter)
        path = osp.join(folder, f'window_{index}.pt')
        if index % share.world_size == share.rank:
            restored = restore(window)
            if share.rank != 0:
                torch.save(restored, path + '.part')
                os.replace(path + '.part', path)
            return restored
        if share.rank != 0:
            return window
        while not osp.exists(path):  # a process that fails ends the run (torchrun stops this one too)
            time.sleep(0.01)
        restored = torch.load(path, weights_only=True)
        os.remove(path)
        return restored

    return run


class DiscardedOutput:
    """What the processes other than process 0 write to when they share one video's windows: nothing."""

    count, notes = 0, ()

    def write(self, frame, pts=None):
        self.count += 1


def output_frame_names(seq):
    """The names of a frame folder's frames (the output keeps them); None for a video file."""
    return None if seq.is_video_file else [osp.splitext(f)[0] for f in list_frame_files(seq.path)]


def to_image(restored):
    """(3, H, W) uint8 tensor -> (H, W, 3) numpy, as the writers take it."""
    return restored.permute(1, 2, 0).numpy()


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

    def deblur(self, seq, out_path, inputs=(), overwrite=False, share=None):
        """Deblur one sequence into ``out_path`` (a video file or a folder of PNG frames).

        Args:
            seq (VideoInput): The sequence.
            out_path (str): Where its output goes (written whole or not at all).
            inputs (Iterable[str]): Paths the output may not be, hold or lie in (everything the run reads).
            overwrite (bool): Replace an existing output.
            share (ProcessShare | None): Processes that restore this sequence together (its windows shared;
                process 0 writes the output and returns the summary, the others None). With ``exact``, process 0
                restores it alone.

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
        start = time.perf_counter()
        shared = share is not None and share.world_size > 1
        if shared and share.rank != 0:
            if not self.exact:
                with self._shared_scratch(share) as folder:
                    self._deblur_windows(seq, DiscardedOutput(), self._tile_size(*first.shape[:2]), share, folder)
            return None
        self._report = FootageReport() if self.report else None
        writer = VideoWriter(out_path, seq.fps, output_frame_names(seq), list(inputs), overwrite, source=seq,
                             codec=self.codec, crf=self.crf, pix_fmt=self.pix_fmt)
        with writer:
            if self.exact:
                self._deblur_exact(seq, writer)
            elif shared:
                with self._shared_scratch(share) as folder:
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

    def _tile_size(self, height, width):
        if self.tile == 'auto':
            return AUTO_TILE if height * width > AUTO_TILE_AREA else 0
        return self.tile

    def _write(self, writer, original, restored, pts, seq):
        image = to_image(restored)
        if self._report is not None:
            shown = writer.count / seq.fps if pts is None else float(pts * seq.facts.time_base)
            self._report.add(shown, original, image)
        if self.side_by_side:  # each half labelled, so a viewer can tell which is which
            image = np.concatenate([labelled(original, 'input'), labelled(image, self.label)], axis=1)
        writer.write(image, pts)

    @contextlib.contextmanager
    def _shared_scratch(self, share):
        """A folder under ``scratch`` that every process of ``share`` knows, removed by process 0 when all are done."""
        made = tempfile.mkdtemp(prefix='memdeblur_shared_', dir=self.scratch) if share.rank == 0 else None
        folder = share.broadcast(made)
        try:
            yield folder
        finally:
            share.barrier()
            if share.rank == 0:
                shutil.rmtree(folder, ignore_errors=True)

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

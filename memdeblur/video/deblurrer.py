"""Deblurring whole videos and frame folders with one ``Restorer``: what the video job (``memdeblur.video.job``)
runs for each sequence, for library users too.

    from memdeblur.runtime import Restorer
    from memdeblur.video.deblurrer import VideoDeblurrer
    from memdeblur.media.inputs import find_inputs
    deblurrer = VideoDeblurrer(Restorer.from_options('options/test_memdeblur_gopro_ds.yml'))
    for seq in find_inputs('clips/'):
        deblurrer.deblur(seq, f'out/{seq.name}.mp4')

Each sequence is streamed through the ``Restorer`` (``memdeblur.runtime``: windows and tiles, or exact
whole-sequence restoration) and written as its frames come, so memory does not grow with the length of the video;
this module adds what a file needs: the output's encoding checked before any frame is restored, timestamps,
side-by-side pictures, the no-reference report, the run's record and the summary.
"""
import itertools
import time
from collections import deque

import numpy as np

from memdeblur.utils.errors import DataError
from memdeblur.media.video_encoding import DEFAULT_CRF, check_video_encoding
from memdeblur.media.video_files import is_video_name
from memdeblur.media.writers import open_writer
from memdeblur.evaluation.comparison_image import labelled_row
from memdeblur.evaluation.no_reference import FootageReport
from memdeblur.video.process_share import shared_scratch, shared_windows
from memdeblur.runtime.restorer import Restorer
from memdeblur.video.run_plan import output_frame_names, report_paths
from memdeblur.utils.peak_memory import peak_memory_mib
from memdeblur.utils.threads import process_governor


class DiscardedOutput:
    """What the processes other than process 0 write to when they share one video's windows: nothing."""

    count, notes = 0, ()

    def write(self, frame, pts=None):
        self.count += 1


def side_by_side(original, restored, label, rotation=0):
    """Input | restored, each half labelled so that a viewer can tell which is which, as a player shows them: a
    video's display ``rotation`` (degrees counter-clockwise, which the output keeps) is applied to the halves before
    they are labelled and put side by side, and undone on the whole, so that the player's rotation shows the halves
    upright, next to each other."""
    turns = round(rotation / 90) % 4
    shown = labelled_row([np.rot90(original, turns), np.rot90(restored, turns)], ['input', label])
    return np.ascontiguousarray(np.rot90(shown, -turns))


class VideoDeblurrer:
    """Deblurs sequences (``memdeblur.media.inputs.VideoInput``) into videos or frame folders with one ``Restorer``.

    Args:
        restorer (Restorer): The model and how it runs (windows, tiles, exact, device, precision, backend).
        side_by_side (bool): Write input | deblurred side by side.
        codec (str | None): Video codec of video outputs (default: the container's).
        crf (int): Its constant rate factor.
        pix_fmt (str | None): Their pixel format (default: 8-bit ``yuv420p``; ``yuv420p10le`` keeps 10 bits).
        report (bool): Also write a no-ground-truth report per sequence (``report_paths``): edge sharpness and
            NIQE of input and output frames, CSV and plot (``memdeblur.evaluation.no_reference``).
    """

    def __init__(self, restorer, side_by_side=False, codec=None, crf=DEFAULT_CRF, pix_fmt=None, report=False):
        if not isinstance(restorer, Restorer):
            raise TypeError(f'VideoDeblurrer takes a Restorer (memdeblur.runtime), got '
                            f'{type(restorer).__name__}: VideoDeblurrer(Restorer(net, ...)).')
        self.restorer, self.label = restorer, restorer.label
        self.side_by_side, self.codec, self.crf, self.pix_fmt, self.report = side_by_side, codec, crf, pix_fmt, report
        self._report = None
        self._shared_sequences = itertools.count()  # names each shared sequence's scratch alike in every process

    def deblur(self, seq, out_path, inputs=(), overwrite=False, share=None, record=None):
        """Deblur one sequence into ``out_path`` (a video file or a folder of PNG frames).

        Args:
            seq (VideoInput): The sequence.
            out_path (str): Where its output goes (written whole or not at all).
            inputs (Iterable[str]): Paths the output may not be, hold or lie in (everything the run reads), besides
                the sequence itself and the files the restorer's model came from (``Restorer.sources``), which
                are always refused as outputs.
            overwrite (bool): Replace an existing output.
            share (ProcessShare | None): Processes that restore this sequence together (its windows shared;
                process 0 writes the output and returns the summary, the others None). With ``exact``, process 0
                restores it alone.
            record (str | None): Text the output keeps of what made it (its writer's ``record``).

        Returns:
            dict: ``sequence``, ``output``, ``frames``, ``seconds``, ``frames_per_second``, ``peak_memory_mib``
            (of the process so far), ``peak_memory_kind`` and ``notes`` (what reading the input decided,
            ``VideoInput.notes``, and what became of its other streams): what the tool's summary prints and its
            ``--summary`` JSON holds.
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
        exact = self.restorer.settings.exact
        scratch = shared_scratch(share, self.restorer.settings.scratch, next(self._shared_sequences)) if shared else None
        if shared and share.rank != 0:
            if not exact:
                with scratch as folder:
                    self._deblur(seq, DiscardedOutput(), share, folder)
            return None
        self._report = FootageReport() if self.report else None
        names = None if is_video_name(out_path) else output_frame_names(seq)
        inputs = [seq.path, *self.restorer.sources, *inputs]
        writer = open_writer(out_path, seq.fps, names, inputs, overwrite, record, source=seq,
                             codec=self.codec, crf=self.crf, pix_fmt=self.pix_fmt)
        with writer:
            if shared and not exact:
                with scratch as folder:
                    self._deblur(seq, writer, share, folder)
            else:
                self._deblur(seq, writer)
        seconds = time.perf_counter() - start
        memory, kind = peak_memory_mib(self.restorer.device)
        summary = {'sequence': seq.name, 'output': out_path, 'frames': writer.count, 'seconds': seconds,
                   'frames_per_second': writer.count / seconds, 'peak_memory_mib': memory, 'peak_memory_kind': kind,
                   'notes': [*seq.notes, *writer.notes]}
        if self.restorer.device.type == 'cpu':
            governor = process_governor()
            summary.update(threads=governor.threads, thread_changes=[list(change) for change in governor.changes])
        if self._report is not None:
            csv_path, plot_path = report_paths(out_path)
            self._report.write(csv_path, plot_path, f'{seq.name}: input and {self.label}')
            summary['report'] = {'csv': csv_path, 'plot': plot_path, 'means': self._report.means()}
        return summary

    @staticmethod
    def _rotation(seq):
        return seq.facts.rotation if seq.facts else 0

    def _write(self, writer, original, image, pts, seq):
        if self._report is not None:
            shown = writer.count / seq.fps if pts is None else float(pts * seq.facts.time_base)
            self._report.add(shown, original, image)
        if self.side_by_side:
            image = side_by_side(original, image, self.label, self._rotation(seq))
        writer.write(image, pts)

    def _deblur(self, seq, writer, share=None, folder=None):
        """Stream the sequence through the restorer into ``writer`` (with ``share``: the windows shared between its
        processes through ``folder``)."""
        timestamps = deque()  # of the frames read and not yet written

        def frames():
            for frame, pts in seq.timed_frames():
                timestamps.append(pts)
                yield frame

        shared = None if share is None else (lambda restore: shared_windows(restore, share, folder))
        for original, restored in self.restorer.restore_pairs(frames(), shared, seq.num_frames or None, seq.name):
            self._write(writer, original, restored, timestamps.popleft(), seq)

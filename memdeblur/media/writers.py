"""Writing restored frames to an output whole or not at all: a video file (``VideoFileWriter``) or a folder of PNG
frames (``FrameFolderWriter``).

Both have one small interface: ``write(frame, pts)`` appends an (H, W, 3) RGB frame (uint8 or uint16), ``count``
and ``notes`` say what was written, and ``close`` (or ``abort``) ends it, as a context manager does. The output is
staged (``memdeblur.utils.outputs.staged_outputs``): frames go to a temporary sibling, which ``close`` checks and
only then renames into place; an error, Ctrl-C or SIGTERM leaves an existing output untouched and nothing behind.
``open_writer`` picks the writer an output's name asks for (``is_video_name``), and ``read_record`` reads back the
text each keeps of what made it (its ``record``).
"""
import abc
import contextlib
import os
import os.path as osp

import av
import numpy as np

from memdeblur.media.colour import ColourConventions, component_bits
from memdeblur.media.images import to_8_bits, write_png
from memdeblur.media.streams import StreamCopier
from memdeblur.media.video_encoding import DEFAULT_CRF, check_video_encoding, output_container
from memdeblur.media.video_files import is_video_name
from memdeblur.utils.errors import DataError
from memdeblur.utils.outputs import OutputError, staged_outputs, write_bytes

# where a writer keeps its ``record``: a frame folder's hidden file, a video's comment tag
RECORD_FILE, RECORD_TAG, RECORD_PREFIX = '.memdeblur-run.json', 'comment', 'memdeblur run: '


class StagedWriter(abc.ABC):
    """What both writers share: the staged output, the frame count, ``close``, ``abort`` and the context manager.

    A writer appends frames (``_write``), completes and checks its staged output once every frame is written
    (``_finish``) and lets go of what it holds open when the output is dropped (``_release``).

    Args:
        path (str): The output.
        is_folder (bool): Whether it is a folder (else a file).
        inputs (list[str]): What the run reads: the output may not be, contain or lie inside one.
        overwrite (bool): Replace an existing output (``--force``), if it is one this tool could have written.
        record (str | None): Text kept with the output, read back by ``read_record`` (what made it).
    """

    def __init__(self, path, is_folder, inputs, overwrite, record):
        self.path, self.record = path, record
        self.count = 0
        self.notes = []  # what became of the source's other streams, in words
        self._stage = contextlib.ExitStack()
        staging = self._stage.enter_context(staged_outputs(
            files=[] if is_folder else [path], folders=[path] if is_folder else [], overwrite=overwrite,
            inputs=inputs, tool='tools/deblur_video.py'))
        self.tmp_path = staging[path]

    def write(self, frame, pts=None):
        """Append one (H, W, 3) RGB frame (uint8 or uint16); ``pts``: its timestamp in the source's time base."""
        self._write(frame, pts)
        self.count += 1

    @abc.abstractmethod
    def _write(self, frame, pts):
        """Write frame number ``count`` to the staged output."""

    @abc.abstractmethod
    def _finish(self):
        """Complete and check the staged output, which holds ``count`` (at least one) frames."""

    def _release(self):
        """Let go of what writing holds open (the output is being dropped)."""

    @staticmethod
    @abc.abstractmethod
    def read_record(path):
        """The text a writer of this kind kept with output ``path`` (its ``record``); None when it has none."""

    def close(self):
        """Finish and check the output, then move it into place."""
        try:
            if self.count == 0:
                raise DataError(f'No frame was written to {self.path}.')
            self._finish()
        except BaseException:
            self.abort()
            raise
        self._stage.close()

    def abort(self):
        """Drop the temporary output; an existing output stays as it was."""
        self._release()
        self._stage.__exit__(OutputError, OutputError('aborted'), None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class FrameFolderWriter(StagedWriter):
    """Writes RGB frames to a folder of PNGs (16-bit frames keep their 16 bits), each checked as it is written
    (``write_png``). Its ``record`` is kept in the folder's hidden ``RECORD_FILE``.

    Args:
        path (str): The output folder.
        frame_names (list[str] | None): PNG file stems (default: 000000, 000001, ...).
        inputs, overwrite, record: As ``StagedWriter`` takes them.
    """

    def __init__(self, path, frame_names=None, inputs=(), overwrite=False, record=None):
        super().__init__(path, True, inputs, overwrite, record)
        self.frame_names = frame_names
        os.makedirs(self.tmp_path)

    def _write(self, frame, pts):
        name = self.frame_names[self.count] if self.frame_names else f'{self.count:06d}'
        write_png(osp.join(self.tmp_path, f'{name}.png'), np.ascontiguousarray(frame[..., ::-1]))

    def _finish(self):
        if self.record is not None:
            write_bytes(osp.join(self.tmp_path, RECORD_FILE), self.record.encode())

    @staticmethod
    def read_record(path):
        try:
            with open(osp.join(path, RECORD_FILE), encoding='utf-8') as f:
                return f.read()
        except (OSError, UnicodeDecodeError):
            return None


class VideoFileWriter(StagedWriter):
    """Writes RGB frames to a video in the container its name says (``OUTPUT_CONTAINERS``); ``close`` reads the
    video back, which must hold as many frames as were written. Its ``record`` is kept in the video's ``comment``
    tag.

    A video written from a video file (``source``) keeps what the source carries besides its pixels: each frame
    the timestamp given to ``write`` (variable frame rates keep their timing, the duration its length), the
    display rotation, the colour conventions (matrix, range, primaries, transfer), and the audio, subtitle and
    data streams (``StreamCopier``; ``notes`` says what was copied, re-encoded or left out).

    Args:
        path (str): Output video file.
        fps (Fraction): Frame rate of a video written without timestamps.
        inputs, overwrite, record: As ``StagedWriter`` takes them.
        source (VideoInput | None): The video file the frames come from.
        codec (str | None): Video codec (default: the container's, ``OUTPUT_CONTAINERS``).
        crf (int): Constant rate factor of the video codec (lower: better and larger). Default: 17.
        pix_fmt (str | None): Pixel format, e.g. ``yuv420p10le`` to keep 10-bit frames (default: ``yuv420p``,
            ``yuv444p`` for odd frame sizes). 16-bit frames (uint16) written to an 8-bit pixel format are rounded to
            8 bits, which ``notes`` says.
    """

    def __init__(self, path, fps, inputs=(), overwrite=False, source=None, codec=None, crf=DEFAULT_CRF, pix_fmt=None,
                 record=None):
        self.container_format = output_container(path)  # a name no container takes is refused before staging
        super().__init__(path, False, inputs, overwrite, record)
        self.fps = fps
        self.source = source if source is not None and source.is_video_file else None
        self.codec, self.crf, self.pix_fmt = codec, crf, pix_fmt
        self._container = self._stream = self._copier = self._held = None
        self._keeps_time = False
        self._durations = {}  # timestamp -> how long the frame shows, for the packets the encoder gives back

    def _write(self, frame, pts):
        if self._container is None:
            self._open_video(*frame.shape[:2])
        video_frame = self._colour.from_rgb(self._depth(frame), self._stream.pix_fmt)
        if self._keeps_time and pts is not None:
            video_frame.pts, video_frame.time_base = pts, self._stream.codec_context.time_base
            self._encode_held(until=pts)
            self._held = video_frame  # encoded when the next frame's time says how long it shows
        else:
            if self._copier is not None:
                self._copier.mux_until(float(self.count / self.fps))
            self._encode(video_frame)

    def _depth(self, frame):
        """``frame`` in the depth of the output's pixel format: 16-bit frames rounded to 8 bits for an 8-bit one,
        8-bit frames widened for a deeper one."""
        if self._rgb == 'rgb48le':
            return frame if frame.dtype == np.uint16 else frame.astype(np.uint16) * 257
        if frame.dtype != np.uint8 and not self._rounded_to_8_bits:
            self._rounded_to_8_bits = True
            self.notes.append(f'{self.source.facts.bits if self.source else 16}-bit frames written as 8-bit '
                              f'({self._stream.pix_fmt}); --pix-fmt yuv420p10le keeps 10 bits')
        return to_8_bits(frame)

    def _encode(self, video_frame):
        if video_frame is not None and video_frame.duration:
            self._durations[video_frame.pts] = video_frame.duration
        try:
            packets = self._stream.encode(video_frame)
        except av.FFmpegError as err:  # what check_video_encoding's trial could not foresee
            raise DataError(f'{self.path}: the {self._stream.codec_context.name} encoder failed near frame '
                            f'{self.count} ({err}); try another --codec or --pix-fmt.') from err
        for packet in packets:
            if packet.pts in self._durations:  # the encoder reorders frames: each packet gets its own frame's
                packet.duration = self._durations.pop(packet.pts)
            self._container.mux(packet)

    def _encode_held(self, until):
        """Encode the frame held back, shown until ``until`` (the next frame's timestamp, or the source's end), and
        the source's other streams up to it."""
        if self._held is None:
            return
        if until is not None and until > self._held.pts:
            self._held.duration = until - self._held.pts
        self._copier.mux_until(float(self._held.pts * self._held.time_base))
        self._encode(self._held)
        self._held = None

    def _open_video(self, height, width):
        muxer, _, audio_codec = self.container_format
        colour = self.source.facts.colour if self.source is not None else None
        codec, pix_fmt, options = check_video_encoding(self.path, height, width, self.codec, self.pix_fmt, self.crf,
                                                       colour)
        self._container = av.open(self.tmp_path, mode='w', format=muxer)
        if self.record is not None:
            self._container.metadata[RECORD_TAG] = RECORD_PREFIX + self.record
        self._stream = self._container.add_stream(codec, rate=self.fps)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = pix_fmt
        deep = component_bits(av.VideoFormat(pix_fmt)) > 8
        self._rgb, self._rounded_to_8_bits = ('rgb48le' if deep else 'rgb24'), False
        self._stream.options = options
        self._colour = ColourConventions()  # FFmpeg's defaults: BT.601, limited range, untagged
        self._keeps_time = self.source is not None and muxer != 'avi'
        if self.source is not None:
            facts = self.source.facts
            if self._keeps_time:  # frames and packets in the source's time base, which the muxer rescales to its own
                self._stream.codec_context.time_base = facts.time_base
            if facts.rotation:
                self._stream.set_display_rotation(facts.rotation)
            context = self._stream.codec_context
            for key, value in vars(facts.colour).items():
                setattr(context, key, value)
            self._colour = facts.colour
            self._copier = StreamCopier(self.source.path, self._container, audio_codec)
            self.notes = self._copier.notes
            if facts.colour.hdr:
                self.notes.append(f'HDR ({facts.colour.hdr}) transfer: frames are restored as coded, and the output '
                                  'is tagged with the same primaries and transfer; no tone mapping')
            if not self._keeps_time:
                self.notes.insert(0, f'the {muxer} container holds a constant frame rate: frames written at '
                                     f'{float(self.fps):g} fps, the source\'s timestamps not kept')

    def _check_video(self):
        """Read the finished video back: it must open and hold every frame written."""
        try:
            with av.open(self.tmp_path) as container:
                stream = container.streams.video[0]
                frames = stream.frames or sum(1 for _ in container.decode(stream))
        except (av.FFmpegError, IndexError) as err:
            raise OutputError(f'{self.path}: the video written cannot be read back ({err}); nothing was replaced.'
                              ) from err
        if frames != self.count:
            raise OutputError(f'{self.path}: {frames} of {self.count} frames reached the video; nothing was replaced.')

    def _finish(self):
        if self._container is None:
            return
        if self._held is not None:
            self._encode_held(until=self.source.facts.end_pts)
        self._encode(None)
        if self._copier is not None:
            self._copier.finish()
        self._container.close()
        self._container = None
        self._check_video()

    def _release(self):
        if self._container is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                if self._copier is not None:
                    self._copier.close()
                self._container.close()
            self._container = None

    @staticmethod
    def read_record(path):
        try:
            with av.open(path) as container:
                tag = next((v for k, v in container.metadata.items() if k.lower() == RECORD_TAG), '')  # mkv: COMMENT
        except av.FFmpegError:
            return None
        return tag[len(RECORD_PREFIX):] if tag.startswith(RECORD_PREFIX) else None


def writer_class(path):
    """The writer an output name asks for: ``VideoFileWriter`` for a video name (``is_video_name``), else
    ``FrameFolderWriter``."""
    return VideoFileWriter if is_video_name(path) else FrameFolderWriter


def open_writer(path, fps, frame_names=None, inputs=(), overwrite=False, record=None, **video):
    """The writer of output ``path`` (``writer_class``), to use as a context manager.

    Args:
        path (str): Output video file, or folder for PNG frames.
        fps (Fraction): Frame rate of a video written without timestamps.
        frame_names (list[str] | None): A frame folder's PNG file stems.
        inputs, overwrite, record: As ``StagedWriter`` takes them.
        **video: ``source``, ``codec``, ``crf``, ``pix_fmt`` of a video (``VideoFileWriter``); a frame folder
            has none.
    """
    if writer_class(path) is VideoFileWriter:
        return VideoFileWriter(path, fps, inputs, overwrite, record=record, **video)
    return FrameFolderWriter(path, frame_names, inputs, overwrite, record)


def read_record(path):
    """The text a writer kept with output ``path`` (its ``record``); None when it has none."""
    return writer_class(path).read_record(path)

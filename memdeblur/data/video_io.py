"""Reading and writing videos and frame folders as streams of RGB frames, one frame in memory at a time.

Inputs: a video file (anything FFmpeg decodes: mp4, mov, avi, mkv, ...; read with PyAV, which
bundles FFmpeg), a folder of frames, or a folder of sequence folders. Outputs: a video in the container its
name says (``OUTPUT_CONTAINERS``: H.264 at CRF 17 by default, visually lossless; VP9 for webm; yuv444p for odd
frame sizes, which yuv420p cannot hold) or a folder of PNG frames. Frames are (H, W, 3) RGB numpy arrays, uint8,
or uint16 for frames of more than 8 bits.
A video written from a video file keeps its timestamps, display rotation, colour conventions, audio, subtitle
and data streams (``memdeblur.data.video_streams``).
"""
import contextlib
import os
import os.path as osp
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import av
import numpy as np

from memdeblur.data.errors import DataError
from memdeblur.data.frame_io import (IMAGE_EXTENSIONS, frame_bits, list_frame_files, read_frame, to_8_bits,
                                     to_integer_image, write_png)
from memdeblur.data.frame_names import natural_sorted
from memdeblur.data.video_streams import StreamCopier, VideoFacts, probe_video_facts
from memdeblur.utils.outputs import OutputError, staged_outputs

VIDEO_EXTENSIONS = ('.mp4', '.mov', '.avi', '.mkv', '.m4v', '.webm', '.mpg', '.mpeg', '.wmv')
# output extension -> (FFmpeg muxer, video codec, audio codec for audio the muxer cannot take as it is)
OUTPUT_CONTAINERS = {
    '.mp4': ('mp4', 'libx264', 'aac'), '.m4v': ('mp4', 'libx264', 'aac'), '.mov': ('mov', 'libx264', 'aac'),
    '.mkv': ('matroska', 'libx264', 'aac'), '.avi': ('avi', 'libx264', 'aac'),
    '.webm': ('webm', 'libvpx-vp9', 'libopus'),
}
DEFAULT_FPS = Fraction(30)  # for frame folders, which carry no frame rate
BLURRY_SUBFOLDERS = ('blur_gamma', 'blur', 'input', osp.join('Blur', 'RGB'))  # GOPRO, DVD and BSD layouts
DEFAULT_CRF = 17


def output_container(path):
    """(muxer, video codec, audio codec) of an output video's name; a clear error for names we cannot write."""
    extension = osp.splitext(path)[1].lower()
    if extension not in OUTPUT_CONTAINERS:
        raise DataError(f'{path}: cannot write a video named {extension or "without an extension"}; name an '
                        f'{", ".join(sorted(OUTPUT_CONTAINERS))} file, or a folder for PNG frames.')
    return OUTPUT_CONTAINERS[extension]


def is_video_name(path):
    """Whether an output name asks for a video (any video extension, or .gif: refused by ``output_container``)."""
    return path.lower().endswith(VIDEO_EXTENSIONS + ('.gif', ))


@dataclass
class VideoInput:
    """One sequence to deblur: where it comes from, its name, frame rate, (approximate) length, and for a video
    file what it carries besides its pixels (``facts``)."""

    path: str
    name: str
    fps: Fraction
    num_frames: int  # 0 when the container does not say
    is_video_file: bool
    facts: Optional[VideoFacts] = None
    bits: int = 8  # of a frame folder's frames (a video's: ``facts.bits``)

    @property
    def deep(self):
        """Whether its frames have more than 8 bits per component: read (and written) as uint16."""
        return (self.facts.bits if self.facts else self.bits) > 8

    def frames(self):
        """Yield (H, W, 3) RGB frames in order: uint8, or uint16 for deeper frames (``deep``)."""
        return (frame for frame, _ in self.timed_frames())

    def timed_frames(self):
        """Yield (frame, timestamp in ``facts.time_base`` units, or None for frame folders) in order."""
        if self.is_video_file:
            return read_video_frames(self.path, self.facts)
        return ((frame, None) for frame in read_folder_frames(self.path, np.uint16 if self.deep else np.uint8))


def is_video_file(path):
    return osp.isfile(path) and path.lower().endswith(VIDEO_EXTENSIONS)


def find_inputs(path, fps=None):
    """The sequences at ``path``: a video file, a folder of frames, or a folder of sequence folders.

    Args:
        path (str): The input.
        fps (Fraction | None): Frame rate for frame folders (default 30); ignored for videos.

    Returns:
        list[VideoInput]

    Raises:
        DataError: naming the path when it is missing, unreadable or holds nothing to deblur.
    """
    if not osp.exists(path):
        raise DataError(f'Input {path} does not exist.')
    if osp.isfile(path):
        if not is_video_file(path):
            raise DataError(f'Input {path} is not a video file ({", ".join(VIDEO_EXTENSIONS)}) or a folder.')
        return [probe_video(path)]
    frames = sequence_frames_folder(path)
    if frames:
        return [folder_input(frames, osp.basename(osp.normpath(path)), fps)]
    sequences = [d for d in natural_sorted(os.listdir(path)) if osp.isdir(osp.join(path, d)) and not d.startswith('.')]
    found = {d: sequence_frames_folder(osp.join(path, d)) for d in sequences}
    left_out = [d for d, frames in found.items() if frames is None]
    if left_out and len(left_out) < len(found):
        raise DataError(f'Input folder {path}: {", ".join(left_out)} hold(s) neither frames nor a '
                        f'{"/".join(BLURRY_SUBFOLDERS)} folder of frames, unlike the other sequences; move them out '
                        'or give the sequences one by one.')
    inputs = [folder_input(frames, d, fps) for d, frames in found.items() if frames]
    if not inputs:
        raise DataError(f'Input folder {path} holds no frames ({", ".join(IMAGE_EXTENSIONS)}) and no folders of '
                        'frames.')
    return inputs


def sequence_frames_folder(folder):
    """The folder of a sequence's (blurry) frames: ``folder`` itself, or its blurry folder in a data set's layout
    (GOPRO ``blur_gamma`` or ``blur``, DVD ``input``, BSD ``Blur/RGB``); None when neither holds frames."""
    for candidate in (folder, *(osp.join(folder, sub) for sub in BLURRY_SUBFOLDERS)):
        if osp.isdir(candidate) and list_frame_files(candidate):
            return candidate
    return None


def folder_input(folder, name, fps):
    """The ``VideoInput`` of a folder of frames, of the bit depth of its first frame (8 or 16)."""
    files = list_frame_files(folder)
    return VideoInput(folder, name, fps or DEFAULT_FPS, len(files), False, bits=frame_bits(osp.join(folder, files[0])))


def probe_video(path):
    """A video file's stream facts, with a clear error for files FFmpeg cannot open."""
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise DataError(f'Video {path} has no video stream.')
            stream = container.streams.video[0]
            # variable frame rate: the average rate; guessed_rate for streams that lack it
            fps = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
            num_frames = stream.frames or 0
            facts = probe_video_facts(container)
    except av.FFmpegError as err:
        raise DataError(f'Video {path} cannot be read: {err}') from err
    return VideoInput(path, osp.splitext(osp.basename(path))[0], Fraction(fps), num_frames, True, facts)


def read_video_frames(path, facts=None):
    """Yield (RGB frame, timestamp) of a video file, decoding one at a time; its pixels converted with the
    video's own matrix and range (``facts.colour``), not FFmpeg's BT.601 default; frames of more than 8 bits per
    component as uint16, the others as uint8."""
    conversion = facts.colour.conversion() if facts else {}
    source = {f'src_{key}': value for key, value in conversion.items()}
    rgb = 'rgb48le' if facts and facts.bits > 8 else 'rgb24'  # 10-bit video: not clipped to 8 bits
    try:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                yield frame.reformat(format=rgb, **source).to_ndarray(), frame.pts
    except av.FFmpegError as err:
        raise DataError(f'Video {path} is corrupt or truncated: {err}') from err


def read_folder_frames(folder, dtype=np.uint8):
    """Yield the frames of a folder of images (8/16-bit, gray or colour) in natural order, as ``dtype``."""
    size = None
    for name in list_frame_files(folder):
        path = osp.join(folder, name)
        frame = to_integer_image(read_frame(path), dtype)
        if size is None:
            size = frame.shape
        elif frame.shape != size:
            raise DataError(f'Frame {path} is {frame.shape[0]}x{frame.shape[1]}, but the sequence started at '
                            f'{size[0]}x{size[1]}.')
        yield frame


class VideoWriter:
    """Writes RGB frames to a video (the container its name says, ``OUTPUT_CONTAINERS``) or, for a path without a
    video extension, a folder of PNGs.

    The output is written whole or not at all (``memdeblur.utils.outputs.staged_outputs``): frames go
    to a temporary sibling, which ``close`` checks (every PNG complete; the video read back with as
    many frames as were written) and only then renames into place; an error, Ctrl-C or SIGTERM
    leaves an existing output untouched and nothing behind. Use as a context manager.

    A video written from a video file (``source``) keeps what the source carries besides its pixels: each frame
    the timestamp given to ``write`` (variable frame rates keep their timing, the duration its length), the
    display rotation, the colour conventions (matrix, range, primaries, transfer), and the audio, subtitle and
    data streams (``StreamCopier``; ``notes`` says what was copied, re-encoded or left out).

    Args:
        path (str): Output video file or folder.
        fps (Fraction): Frame rate of a video written without timestamps.
        frame_names (list[str] | None): PNG file stems (default: 000000, 000001, ...).
        inputs (list[str]): What the run reads: the output may not be, contain or lie inside one.
        overwrite (bool): Replace an existing output (``--force``), if it is one this tool could have written.
        source (VideoInput | None): The video file the frames come from.
        codec (str | None): Video codec (default: the container's, ``OUTPUT_CONTAINERS``).
        crf (int): Constant rate factor of the video codec (lower: better and larger). Default: 17.
        pix_fmt (str | None): Pixel format of a video, e.g. ``yuv420p10le`` to keep 10-bit frames (default:
            ``yuv420p``, ``yuv444p`` for odd frame sizes). 16-bit frames (uint16) written to an 8-bit pixel format
            are rounded to 8 bits, which ``notes`` says; PNG frames keep 16 bits.
    """

    def __init__(self, path, fps, frame_names=None, inputs=(), overwrite=False, source=None, codec=None,
                 crf=DEFAULT_CRF, pix_fmt=None):
        self.path = path
        self.fps = fps
        self.frame_names = frame_names
        self.is_video = is_video_name(path)
        self.container_format = output_container(path) if self.is_video else None
        self.source = source if source is not None and source.is_video_file else None
        self.codec, self.crf, self.pix_fmt = codec, crf, pix_fmt
        self.count = 0
        self.notes = []
        self._container = self._stream = self._copier = self._held = None
        self._keeps_time = False
        self._durations = {}  # timestamp -> how long the frame shows, for the packets the encoder gives back
        self._stage = contextlib.ExitStack()
        staging = self._stage.enter_context(staged_outputs(
            files=[path] if self.is_video else [], folders=[] if self.is_video else [path], overwrite=overwrite,
            inputs=inputs, tool='tools/deblur_video.py'))
        self.tmp_path = staging[path]
        if not self.is_video:
            os.makedirs(self.tmp_path)

    def write(self, frame, pts=None):
        """Append one (H, W, 3) RGB frame (uint8 or uint16); ``pts``: its timestamp in the source's time base."""
        if not self.is_video:
            name = self.frame_names[self.count] if self.frame_names else f'{self.count:06d}'
            write_png(osp.join(self.tmp_path, f'{name}.png'), np.ascontiguousarray(frame[..., ::-1]))
        else:
            if self._container is None:
                self._open_video(*frame.shape[:2])
            video_frame = av.VideoFrame.from_ndarray(self._depth(frame), format=self._rgb).reformat(
                format=self._stream.pix_fmt, **self._colour)
            if self._keeps_time and pts is not None:
                video_frame.pts, video_frame.time_base = pts, self._stream.codec_context.time_base
                self._encode_held(until=pts)
                self._held = video_frame  # encoded when the next frame's time says how long it shows
            else:
                if self._copier is not None:
                    self._copier.mux_until(float(self.count / self.fps))
                self._encode(video_frame)
        self.count += 1

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
        for packet in self._stream.encode(video_frame):
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
        muxer, video_codec, audio_codec = self.container_format
        self._container = av.open(self.tmp_path, mode='w', format=muxer)
        codec = self.codec or video_codec
        try:
            self._stream = self._container.add_stream(codec, rate=self.fps)
        except (av.FFmpegError, ValueError) as err:
            raise DataError(f'{self.path}: cannot encode video with codec {codec!r} ({err}).') from err
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = self.pix_fmt or ('yuv420p' if height % 2 == 0 and width % 2 == 0 else 'yuv444p')
        deep = max(c.bits for c in av.VideoFormat(self._stream.pix_fmt).components) > 8
        self._rgb, self._rounded_to_8_bits = ('rgb48le' if deep else 'rgb24'), False
        self._stream.options = {'crf': str(self.crf)} if codec.startswith(('libx26', 'libvpx')) else {}
        if codec == 'libx264':
            self._stream.options['preset'] = 'medium'
        elif codec == 'libvpx-vp9':
            self._stream.options['b'] = '0'  # constant quality: VP9 takes crf with no target bitrate
        self._colour = {}
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
            self._colour = {f'dst_{key}': value for key, value in facts.colour.conversion().items()}
            self._copier = StreamCopier(self.source.path, self._container, audio_codec)
            self.notes = self._copier.notes
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

    def close(self):
        """Finish and check the output, then move it into place."""
        try:
            if self.count == 0:
                raise DataError(f'No frame was written to {self.path}.')
            if self._container is not None:
                if self._held is not None:
                    self._encode_held(until=self.source.facts.end_pts)
                self._encode(None)
                if self._copier is not None:
                    self._copier.finish()
                self._container.close()
                self._container = None
                self._check_video()
        except BaseException:
            self.abort()
            raise
        self._stage.close()

    def abort(self):
        """Drop the temporary output; an existing output stays as it was."""
        if self._container is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                if self._copier is not None:
                    self._copier.close()
                self._container.close()
            self._container = None
        self._stage.__exit__(OutputError, OutputError('aborted'), None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

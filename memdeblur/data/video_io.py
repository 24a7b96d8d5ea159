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
import io
import os
import os.path as osp
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import av
import numpy as np

from memdeblur.utils.errors import DataError
from memdeblur.data.frame_io import (IMAGE_EXTENSIONS, frame_bits, list_frame_files, read_frame, to_8_bits,
                                     to_integer_image, write_png)
from memdeblur.data.frame_names import natural_sorted
from memdeblur.data.video_streams import ColourConventions, StreamCopier, VideoFacts, probe_video_facts
from memdeblur.utils.outputs import OutputError, staged_outputs, write_bytes

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
# where a VideoWriter keeps its ``record``: a frame folder's hidden file, a video's comment tag
RECORD_FILE, RECORD_TAG, RECORD_PREFIX = '.memdeblur-run.json', 'comment', 'memdeblur run: '


def read_record(path):
    """The text a ``VideoWriter`` kept with output ``path`` (its ``record``); None when it has none."""
    if not is_video_name(path):
        try:
            with open(osp.join(path, RECORD_FILE), encoding='utf-8') as f:
                return f.read()
        except (OSError, UnicodeDecodeError):
            return None
    try:
        with av.open(path) as container:
            tag = next((v for k, v in container.metadata.items() if k.lower() == RECORD_TAG), '')  # mkv: COMMENT
    except av.FFmpegError:
        return None
    return tag[len(RECORD_PREFIX):] if tag.startswith(RECORD_PREFIX) else None


def output_container(path):
    """(muxer, video codec, audio codec) of an output video's name; a clear error for names we cannot write."""
    extension = osp.splitext(path)[1].lower()
    if extension not in OUTPUT_CONTAINERS:
        raise DataError(f'{path}: cannot write a video named {extension or "without an extension"}; name an '
                        f'{", ".join(sorted(OUTPUT_CONTAINERS))} file, or a folder for PNG frames.')
    return OUTPUT_CONTAINERS[extension]


def check_video_encoding(path, height, width, codec=None, pix_fmt=None, crf=DEFAULT_CRF, colour=None):
    """Refuse, before any work, a video output that cannot be encoded: an unknown codec, an audio or subtitle
    codec, a codec the container cannot hold, a pixel format that is not one or that the codec does not take, a
    frame size the pixel format cannot hold (odd sides with 4:2:0), or settings the encoder refuses (found by
    opening it on nothing); ``VideoWriter`` calls it too.

    Args:
        path (str): The output video's name (its container: ``output_container``).
        height, width (int): Its frame size.
        codec, pix_fmt, crf: As ``VideoWriter`` takes them (``--codec``, ``--pix-fmt``, ``--crf``).
        colour (ColourConventions | None): The colour conventions it will be tagged with (the source's).

    Returns:
        tuple[str, str, dict]: The codec, the pixel format and the encoder options the writer uses.

    Raises:
        DataError: naming the flag (or the output) and the problem, in one line.
    """
    muxer, default_codec, _ = output_container(path)
    codec = codec or default_codec
    try:
        encoder = av.codec.Codec(codec, 'w')
    except ValueError as err:
        raise DataError(f'--codec {codec}: FFmpeg has no encoder of that name ({err}).') from err
    if encoder.type != 'video':
        raise DataError(f'--codec {codec}: an {encoder.type} codec, not a video one; name a video codec such as '
                        f'libx264, libx265 or libvpx-vp9 (or none: {default_codec} for {osp.basename(path)}).')
    try:
        with av.open(io.BytesIO(), 'w', format=muxer) as probe:
            probe.add_stream(codec, rate=25)
    except (ValueError, av.FFmpegError) as err:
        raise DataError(f'--codec {codec}: {osp.basename(path)} ({muxer} container) cannot hold it ({err}); name '
                        'another codec or container.') from err
    pix_fmt = pix_fmt or ('yuv420p' if height % 2 == 0 and width % 2 == 0 else 'yuv444p')
    try:
        form = av.VideoFormat(pix_fmt)
    except ValueError as err:
        raise DataError(f'--pix-fmt {pix_fmt}: not a pixel format FFmpeg knows.') from err
    takes = [f.name for f in encoder.video_formats or ()]
    if takes and pix_fmt not in takes:
        raise DataError(f'--pix-fmt {pix_fmt}: the {codec} codec does not take it; it takes {", ".join(takes)}.')
    sub_y, sub_x = 1024 // form.chroma_height(1024), 1024 // form.chroma_width(1024)
    if height % sub_y or width % sub_x:
        raise DataError(f'--pix-fmt {pix_fmt}: its chroma is subsampled {sub_x}x{sub_y}, which frames of '
                        f'{width}x{height} (an odd side) cannot hold; use --pix-fmt yuv444p (or yuv444p10le).')
    options = {'crf': str(crf)} if codec.startswith(('libx26', 'libvpx')) else {}
    if codec == 'libx264':
        options['preset'] = 'medium'
    elif codec == 'libvpx-vp9':
        options['b'] = '0'  # constant quality: VP9 takes crf with no target bitrate
    context = av.codec.CodecContext.create(codec, 'w')
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = Fraction(1, 25)
    if colour is not None:
        context.colorspace, context.color_range = colour.colorspace, colour.color_range
    context.options = dict(options)
    try:
        context.open()
    except av.FFmpegError as err:
        raise DataError(f'{path}: the {codec} codec refuses {width}x{height} frames in --pix-fmt {pix_fmt}'
                        f'{f" at --crf {crf}" if "crf" in options else ""} ({err}); try another --pix-fmt or '
                        '--codec.') from err
    return codec, pix_fmt, options


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
    """Yield (RGB frame, timestamp) of a video file, decoding one at a time: its pixels converted with the
    video's own matrix and range (``facts.colour``, ``ColourConventions.to_rgb``), frames of more than 8 bits per
    component as uint16, the others as uint8.

    The stream must be what it declares: a frame whose size differs from the first's, a timestamp that does not
    come after the previous frame's (a stream restarting, or spliced), or fewer frames than the container
    declares (``facts.declared_frames``: a cut download) is a ``DataError`` naming the file and the frame, so no
    run ends with a silently shorter or garbled output.
    """
    colour = facts.colour if facts else ColourConventions()
    count, size, last_pts = 0, None, None
    try:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                size = size or (frame.width, frame.height)
                check_next_frame(path, count, frame, size, last_pts)
                last_pts = last_pts if frame.pts is None else frame.pts
                yield colour.to_rgb(frame), frame.pts
                count += 1
    except av.FFmpegError as err:
        raise DataError(f'Video {path} is corrupt or truncated after {count} frame(s): {err}') from err
    declared = facts.declared_frames if facts else 0
    if declared and count < declared:
        raise DataError(f'Video {path} declares {declared} frames but only {count} could be decoded: the file is '
                        'truncated (an unfinished download or copy?) or damaged.')


def check_next_frame(path, index, frame, size, last_pts):
    """Refuse frame ``index`` of a video when its size is not ``size`` (the first frame's: width, height), or its
    timestamp does not come after ``last_pts`` (the last timed frame's)."""
    if (frame.width, frame.height) != size:
        raise DataError(f'Video {path}: frame {index} (from 0) is {frame.width}x{frame.height}, but the video starts '
                        f'at {size[0]}x{size[1]}; a size change within a stream is not supported (cut the '
                        'video there and deblur the parts one by one).')
    if frame.pts is not None and last_pts is not None and frame.pts <= last_pts:
        raise DataError(f'Video {path}: frame {index} (from 0) has timestamp {frame.pts}, not after the previous '
                        f'frame\'s ({last_pts}): its timestamps restart or go backwards (a joined or damaged '
                        'video); cut it there, or give it fresh timestamps (ffmpeg -i IN -vf setpts=N/FRAME_RATE/TB '
                        'OUT).')


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
        record (str | None): Text kept with the output, read back by ``read_record`` (what made it): in a
            video's ``comment`` tag, in a frame folder's ``RECORD_FILE``.
    """

    def __init__(self, path, fps, frame_names=None, inputs=(), overwrite=False, source=None, codec=None,
                 crf=DEFAULT_CRF, pix_fmt=None, record=None):
        self.path = path
        self.record = record
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
            video_frame = self._colour.from_rgb(self._depth(frame), self._stream.pix_fmt)
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
        deep = max(c.bits for c in av.VideoFormat(pix_fmt).components) > 8
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

    def close(self):
        """Finish and check the output, then move it into place."""
        try:
            if self.count == 0:
                raise DataError(f'No frame was written to {self.path}.')
            if not self.is_video and self.record is not None:
                write_bytes(osp.join(self.tmp_path, RECORD_FILE), self.record.encode())
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

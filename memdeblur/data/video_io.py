"""Reading and writing videos and frame folders as streams of RGB frames, one frame in memory at a time.

Inputs: a video file (anything FFmpeg decodes: mp4, mov, avi, mkv, ...; read with PyAV, which
bundles FFmpeg), a folder of frames, or a folder of sequence folders. Outputs: an mp4 (H.264,
CRF 17: visually lossless; yuv444p for odd frame sizes, which yuv420p cannot hold) or a folder
of PNG frames. Frames are (H, W, 3) uint8 RGB numpy arrays.
"""
import contextlib
import os
import os.path as osp
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from memdeblur.data.errors import DataError
from memdeblur.data.frame_io import IMAGE_EXTENSIONS, list_frame_files, read_frame, to_uint8, write_png
from memdeblur.data.frame_names import natural_sorted
from memdeblur.utils.outputs import OutputError, staged_outputs

VIDEO_EXTENSIONS = ('.mp4', '.mov', '.avi', '.mkv', '.m4v', '.webm', '.mpg', '.mpeg', '.wmv')
DEFAULT_FPS = Fraction(30)  # for frame folders, which carry no frame rate


@dataclass
class VideoInput:
    """One sequence to deblur: where it comes from, its name, frame rate and (approximate) length."""

    path: str
    name: str
    fps: Fraction
    num_frames: int  # 0 when the container does not say
    is_video_file: bool

    def frames(self):
        """Yield (H, W, 3) uint8 RGB frames in order."""
        return read_video_frames(self.path) if self.is_video_file else read_folder_frames(self.path)


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
    frames = list_frame_files(path)
    if frames:
        return [VideoInput(path, osp.basename(osp.normpath(path)), fps or DEFAULT_FPS, len(frames), False)]
    sequences = [d for d in natural_sorted(os.listdir(path)) if osp.isdir(osp.join(path, d)) and not d.startswith('.')]
    inputs = [find_inputs(osp.join(path, d), fps)[0] for d in sequences if list_frame_files(osp.join(path, d))]
    if not inputs:
        raise DataError(f'Input folder {path} holds no frames ({", ".join(IMAGE_EXTENSIONS)}) and no folders of '
                        'frames.')
    return inputs


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
    except av.FFmpegError as err:
        raise DataError(f'Video {path} cannot be read: {err}') from err
    return VideoInput(path, osp.splitext(osp.basename(path))[0], Fraction(fps), num_frames, True)


def read_video_frames(path):
    """Yield the frames of a video file, decoding one at a time."""
    try:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format='rgb24')
    except av.FFmpegError as err:
        raise DataError(f'Video {path} is corrupt or truncated: {err}') from err


def read_folder_frames(folder):
    """Yield the frames of a folder of images in natural order (8/16-bit, gray or colour)."""
    size = None
    for name in list_frame_files(folder):
        path = osp.join(folder, name)
        frame = to_uint8(read_frame(path))
        if size is None:
            size = frame.shape
        elif frame.shape != size:
            raise DataError(f'Frame {path} is {frame.shape[0]}x{frame.shape[1]}, but the sequence started at '
                            f'{size[0]}x{size[1]}.')
        yield frame


class VideoWriter:
    """Writes RGB frames to an mp4 (H.264, CRF 17) or, for a path without a video extension, a folder of PNGs.

    The output is written whole or not at all (``memdeblur.utils.outputs.staged_outputs``): frames go
    to a temporary sibling, which ``close`` checks (every PNG complete; the video read back with as
    many frames as were written) and only then renames into place; an error, Ctrl-C or SIGTERM
    leaves an existing output untouched and nothing behind. Use as a context manager.

    Args:
        path (str): Output mp4 file or folder.
        fps (Fraction): Frame rate of the mp4.
        frame_names (list[str] | None): PNG file stems (default: 000000, 000001, ...).
        inputs (list[str]): What the run reads: the output may not be, contain or lie inside one.
        overwrite (bool): Replace an existing output (``--force``), if it is one this tool could have written.
    """

    def __init__(self, path, fps, frame_names=None, inputs=(), overwrite=False):
        self.path = path
        self.fps = fps
        self.frame_names = frame_names
        self.is_video = path.lower().endswith(VIDEO_EXTENSIONS)
        self.count = 0
        self._container = self._stream = None
        self._stage = contextlib.ExitStack()
        staging = self._stage.enter_context(staged_outputs(
            files=[path] if self.is_video else [], folders=[] if self.is_video else [path], overwrite=overwrite,
            inputs=inputs, tool='tools/deblur_video.py'))
        self.tmp_path = staging[path]
        if not self.is_video:
            os.makedirs(self.tmp_path)

    def write(self, frame):
        """Append one (H, W, 3) uint8 RGB frame."""
        if not self.is_video:
            name = self.frame_names[self.count] if self.frame_names else f'{self.count:06d}'
            write_png(osp.join(self.tmp_path, f'{name}.png'), np.ascontiguousarray(frame[..., ::-1]))
        else:
            if self._container is None:
                self._open_video(*frame.shape[:2])
            for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                self._container.mux(packet)
        self.count += 1

    def _open_video(self, height, width):
        self._container = av.open(self.tmp_path, mode='w', format='mp4')
        self._stream = self._container.add_stream('libx264', rate=self.fps)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = 'yuv420p' if height % 2 == 0 and width % 2 == 0 else 'yuv444p'
        self._stream.options = {'crf': '17', 'preset': 'medium'}

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
                for packet in self._stream.encode():
                    self._container.mux(packet)
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

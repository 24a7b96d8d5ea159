"""Video files: which names are videos, and reading a video's frames as RGB arrays, one decoded at a time.

Anything FFmpeg decodes is read (mp4, mov, avi, mkv, ...; with PyAV, which bundles FFmpeg), its pixels converted
with the video's own colour conventions (``memdeblur.media.colour``); a stream that is not what it declares (a cut
download, a size change, restarting timestamps) is a ``DataError`` naming the file and the frame.
"""
import os.path as osp

import av

from memdeblur.media.colour import ColourConventions
from memdeblur.utils.errors import DataError

VIDEO_EXTENSIONS = ('.mp4', '.mov', '.avi', '.mkv', '.m4v', '.webm', '.mpg', '.mpeg', '.wmv')


def is_video_name(path):
    """Whether an output name asks for a video (any video extension, or .gif: refused by
    ``memdeblur.media.video_encoding.output_container``)."""
    return path.lower().endswith(VIDEO_EXTENSIONS + ('.gif', ))


def is_video_file(path):
    """Whether ``path`` is a file with a video extension (``VIDEO_EXTENSIONS``): an input to decode."""
    return osp.isfile(path) and path.lower().endswith(VIDEO_EXTENSIONS)


def read_video_frames(path, facts=None):
    """Yield (RGB frame, timestamp) of a video file, decoding one at a time: its pixels converted with the
    video's own matrix and range (``facts.colour``, ``ColourConventions.to_rgb``), frames of more than 8 bits per
    component as uint16, the others as uint8.

    The stream must be what it declares: a frame whose size differs from the first's, a timestamp that does not
    come after the previous frame's (a stream restarting, or spliced), or fewer frames than the container
    declares (``facts.declared_frames``: a cut download) is a ``DataError`` naming the file and the frame, so no
    run ends with a silently shorter or garbled output.

    Args:
        path (str): The video file.
        facts (VideoFacts | None): Its facts (``memdeblur.media.streams.probe_video_facts``).
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

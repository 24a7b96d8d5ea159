"""Video files: which names are videos, and reading a video's frames as RGB arrays, one decoded at a time.

Anything FFmpeg decodes is read (mp4, mov, mkv, webm, avi, MPEG transport streams, ...; with PyAV, which bundles
FFmpeg), its pixels converted with the video's own colour conventions (``memdeblur.media.colour``); a stream that is
not what it declares (a file cut short, a damaged frame, a size change, restarting timestamps) is a ``DataError``
naming the file, and the frame or how many frames could be decoded (``read_video_frames``).
"""
import heapq
import os.path as osp

import av

from memdeblur.media.colour import ColourConventions
from memdeblur.media.cut_files import find_cut
from memdeblur.utils.errors import DataError

# containers whose packets are timed in the order they are stored (decoding order; AVI numbers its chunks), not in
# the order their frames are shown: with B-frames, a decoded frame's time is the earliest packet time not yet shown
DECODING_ORDER_TIMES = ('avi', )
VIDEO_EXTENSIONS = ('.mp4', '.mov', '.avi', '.mkv', '.m4v', '.webm', '.ts', '.m2ts', '.mts', '.mpg', '.mpeg', '.wmv')


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

    The stream must be what it declares, or a ``DataError`` names the file and says how many frames could be
    decoded, so that no run ends with a silently shorter or garbled output:

    * a frame whose size differs from the first's, or whose timestamp does not come after the previous frame's (a
      stream restarting, or spliced), is refused (``check_next_frame``); the frames of containers that time packets
      in decoding order (``DECODING_ORDER_TIMES``: AVI) take the packets' times in the order frames are shown;
    * a frame the decoder could only conceal errors in, or an incomplete packet (its data runs past the end of the
      file), is damage, or the cut of a file cut short;
    * a file shorter than its container declares (``memdeblur.media.cut_files.find_cut``: MP4/MOV, Matroska/WebM,
      AVI, MPEG-TS) is cut: the frames after the cut are lost, about how many its container says where it does;
    * fewer frames than the container's frame table lists (``facts.declared_frames``, MP4/MOV) is a cut too.

    A file cut after its last frame (in an index that follows the frames) is not an error where the container's
    header shows every frame arrived (``frames_arrived``).

    Args:
        path (str): The video file.
        facts (VideoFacts | None): Its facts (``memdeblur.media.streams.probe_video_facts``).
    """
    colour = facts.colour if facts else ColourConventions()
    declared = facts.declared_frames if facts else 0
    read = ReadSoFar()
    try:
        container = av.open(path)
    except av.FFmpegError as err:
        raise unreadable(path, err) from err
    with container:
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate
        unshown = [] if container.format.name in DECODING_ORDER_TIMES else None  # a heap of packet times
        try:
            for packet in container.demux(stream):
                if packet.is_corrupt:
                    raise stopped(path, container, read, declared, f'frame data at byte {packet.pos} is incomplete')
                if packet.size:
                    read.packets += 1
                    if unshown is not None and packet.pts is not None:
                        heapq.heappush(unshown, packet.pts)
                for frame in packet.decode():
                    if unshown:
                        frame.pts = heapq.heappop(unshown)
                    if frame.is_corrupt:
                        raise stopped(path, container, read, declared,
                                      f'frame {read.frames} (from 0) decodes only with errors concealed')
                    read.size = read.size or (frame.width, frame.height)
                    check_next_frame(path, read.frames, frame, read.size, read.last_pts)
                    read.add(frame, fps)
                    yield colour.to_rgb(frame), frame.pts
        except av.FFmpegError as err:
            raise stopped(path, container, read, declared, f'FFmpeg stops decoding it ({err})') from err
        cut = find_cut(path, container.format.name)
        if cut and not frames_arrived(container, read, declared, cut):
            raise truncated(path, cut, read, declared, container)
    if declared and read.frames < declared:
        raise DataError(f'Video {path} declares {declared} frames but only {read.frames} could be decoded: the file is '
                        f'truncated (an unfinished download or copy?) or damaged; the other {declared - read.frames} '
                        'frames are lost.')


class ReadSoFar:
    """What has been read of a video: frames decoded, whole packets demuxed, the first frame's size, the last timed
    frame's timestamp and where the last frame ends, in seconds (its timestamp plus its duration, or one frame at
    the average rate)."""

    def __init__(self):
        self.frames = self.packets = 0
        self.size = self.last_pts = self.end = None

    def add(self, frame, fps):
        """Count a decoded frame (``fps``: the stream's average rate, for frames that carry no duration)."""
        self.frames += 1
        if frame.pts is not None:
            self.last_pts = frame.pts
        if frame.time is not None:
            shown = frame.duration * frame.time_base if frame.duration else (1 / fps if fps else 0)
            self.end = frame.time + float(shown)


def frames_arrived(container, read, declared, cut):
    """Whether every frame of a file cut after them arrived, as its container's header says: as many frames as its
    frame table (MP4/MOV) or its header (AVI: chunks, counting those of dropped frames, which are not packets)
    lists, or frames up to the duration its header declares (Matroska, within half a frame)."""
    stream = container.streams.video[0]
    if declared:
        return read.frames >= declared
    if container.format.name == 'avi':
        return 0 < (stream.frames or 0) <= read.packets
    fps = stream.average_rate or stream.guessed_rate
    return cut.seconds is not None and read.end is not None and fps is not None and \
        read.end >= cut.seconds - 0.5 / float(fps)


def truncated(path, cut, read, declared, container):
    """The ``DataError`` of a video cut short (``cut``): where it was cut, the frames decoded, and what is lost, as far
    as its container says."""
    stream = container.streams.video[0]
    upto = f' (up to {read.end:.2f} s)' if read.end is not None else ''
    if declared:
        lost = f'the other {declared - read.frames} of the {declared} frames it declares are lost'
    elif container.format.name == 'avi' and (stream.frames or 0) > read.packets:
        lost = f'the rest, up to {stream.frames - read.packets} of the {stream.frames} frames its header lists, is lost'
    elif cut.seconds is not None and read.end is not None:
        fps = stream.average_rate or stream.guessed_rate
        missing = max(cut.seconds - read.end, 0)
        frames = f', about {round(missing * fps)} frame(s)' if fps else ''
        lost = f'the rest, about {missing:.2f} s of the {cut.seconds:.2f} s it declares{frames}, is lost'
    else:
        lost = 'the rest is lost (how much, the file does not say)'
    return DataError(f'Video {path} is cut short: {cut} (an unfinished download or copy?). {read.frames} '
                     f'frame(s){upto} could be decoded; {lost}. Complete the file (download or copy it again) and run '
                     'again.')


def unreadable(path, err):
    """The ``DataError`` of a video FFmpeg cannot open (``err``): a cut file's where it is shorter than the container
    its extension names declares (an MP4 cut before its index, which is written last), else FFmpeg's reason."""
    cut = find_cut(path)
    if cut:
        return DataError(f'Video {path} is cut short: {cut} (an unfinished download or copy?), and FFmpeg cannot '
                         f'open what is left ({err}): no frame can be read. Complete the file (download or copy it '
                         'again) and run again.')
    return DataError(f'Video {path} cannot be read: {err}')


def stopped(path, container, read, declared, what):
    """The ``DataError`` of a video whose decoding stops at ``what`` (a damaged frame, incomplete data, an FFmpeg
    error): a cut file's (``truncated``) where the file is shorter than its container declares, else damage."""
    cut = find_cut(path, container.format.name)
    if cut:
        return truncated(path, cut, read, declared, container)
    return DataError(f'Video {path} is damaged: {what}; {read.frames} frame(s) before it could be decoded. Repair '
                     'the file, or re-encode it to keep what FFmpeg makes of the damage (ffmpeg -i IN -c:v libx264 '
                     '-crf 12 OUT), or cut the video before it.')


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

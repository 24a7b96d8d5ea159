"""The sequences a user gives the video tool: a video file, a folder of frames, or a folder of sequence folders
(``find_inputs``), each a ``VideoInput`` that reads its frames as a stream of (H, W, 3) RGB arrays, uint8, or
uint16 for frames of more than 8 bits, and says in its ``notes`` what was decided in reading it that the user
would not otherwise know (which of a sequence's blurry folders was read, frames turned by their EXIF orientation).
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

import av
import numpy as np

from memdeblur.media.frame_folders import frame_orientations, read_folder_frames, sequence_frames_folders
from memdeblur.media.frame_names import natural_sorted
from memdeblur.media.images import IMAGE_EXTENSIONS, UPRIGHT, frame_bits, list_frame_files
from memdeblur.media.layouts import BLURRY_FOLDERS
from memdeblur.media.streams import VideoFacts, probe_video_facts
from memdeblur.media.video_files import VIDEO_EXTENSIONS, is_video_file, read_video_frames, unreadable
from memdeblur.utils.errors import DataError

DEFAULT_FPS = Fraction(30)  # for frame folders, which carry no frame rate


@dataclass
class VideoInput:
    """One sequence to deblur: where it comes from, its name, frame rate, (approximate) length, for a video
    file what it carries besides its pixels (``facts``), and what reading it decides, in words (``notes``)."""

    path: str
    name: str
    fps: Fraction
    num_frames: int  # 0 when the container does not say
    is_video_file: bool
    facts: Optional[VideoFacts] = None
    bits: int = 8  # of a frame folder's frames (a video's: ``facts.bits``)
    notes: list = field(default_factory=list)

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
    folders = sequence_frames_folders(path)
    if folders:
        return [folder_input(folders, osp.basename(osp.normpath(path)), fps)]
    sequences = [d for d in natural_sorted(os.listdir(path)) if osp.isdir(osp.join(path, d)) and not d.startswith('.')]
    found = {d: sequence_frames_folders(osp.join(path, d)) for d in sequences}
    left_out = [d for d, folders in found.items() if not folders]
    if left_out and len(left_out) < len(found):
        raise DataError(f'Input folder {path}: {", ".join(left_out)} hold(s) neither frames nor a '
                        f'{"/".join(BLURRY_FOLDERS)} folder of frames, unlike the other sequences; move them out '
                        'or give the sequences one by one.')
    inputs = [folder_input(folders, d, fps) for d, folders in found.items() if folders]
    if not inputs:
        raise DataError(f'Input folder {path} holds no frames ({", ".join(IMAGE_EXTENSIONS)}) and no folders of '
                        'frames.')
    return inputs


def folder_input(folders, name, fps):
    """The ``VideoInput`` of a sequence's folder of frames, the first of ``folders`` (``sequence_frames_folders``),
    of the bit depth of its first frame (8 or 16); its frames' headers are read, and must give one size once upright.

    Its ``notes`` say which folder was read when the sequence has others (GOPRO's ``blur_gamma`` and ``blur``) and
    how to read one of those instead, and how many frames their EXIF orientation turns, and how.
    """
    folder = folders[0]
    files = list_frame_files(folder)
    notes = [f'read {folder}; {other}, also there, was not read (give that folder as the input to restore it instead)'
             for other in folders[1:]]
    orientations = frame_orientations(folder)
    notes += [f'{count} of {len(files)} frames rotated by EXIF orientation {orientation} '
              f'({UPRIGHT[orientation][0]}), upright as viewers show them'
              for orientation, count in sorted(orientations.items()) if orientation != 1]
    return VideoInput(folder, name, fps or DEFAULT_FPS, len(files), False, bits=frame_bits(osp.join(folder, files[0])),
                      notes=notes)


def probe_video(path):
    """A video file's stream facts, with a clear error for files FFmpeg cannot open (``unreadable``)."""
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
        raise unreadable(path, err) from err
    return VideoInput(path, osp.splitext(osp.basename(path))[0], Fraction(fps), num_frames, True, facts)

"""Folders of frames as sequences: finding a sequence's blurry frames in its folder (the folder itself, or the
blurry folders of a data set's layout, ``memdeblur.media.layouts``), checking that its frames share one size once
upright, and reading them in order."""
import os.path as osp
from collections import Counter

import numpy as np

from memdeblur.media.images import frame_header, list_frame_files, read_frame, size_mismatch, to_integer_image
from memdeblur.media.layouts import BLURRY_FOLDERS
from memdeblur.utils.errors import DataError


def sequence_frames_folders(folder):
    """The folders of a sequence's (blurry) frames, the one to read first: ``folder`` itself when it holds frames,
    else those of its blurry folders in a data set's layout that do (``BLURRY_FOLDERS``: GOPRO ``blur_gamma`` and
    ``blur``, BSD ``Blur/RGB``, DVD ``input``), in that order; empty when none holds frames."""
    if list_frame_files(folder):
        return [folder]
    return [path for path in (osp.join(folder, sub) for sub in BLURRY_FOLDERS)
            if osp.isdir(path) and list_frame_files(path)]


def frame_orientations(folder):
    """How many of a folder's frames each EXIF orientation turns upright (``Counter``: orientation -> frames),
    from their headers; a ``DataError`` names the first frame whose size once upright differs from the first
    frame's, and the orientations when they are why."""
    first, orientations = None, Counter()
    for name in list_frame_files(folder):
        path = osp.join(folder, name)
        header = frame_header(path)
        if first is None:
            first = path, header
        elif header[:2] != first[1][:2]:
            raise DataError(size_mismatch(path, header, *first))
        orientations[header.orientation] += 1
    return orientations


def read_folder_frames(folder, dtype=np.uint8):
    """Yield the frames of a folder of images (8/16-bit, gray or colour) in natural order, upright, as ``dtype``."""
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

"""Folders of frames as sequences: finding a sequence's blurry frames in its folder (the folder itself, or the
blurry folder of a data set's layout, ``memdeblur.media.layouts``) and reading them in order."""
import os.path as osp

import numpy as np

from memdeblur.media.images import list_frame_files, read_frame, to_integer_image
from memdeblur.media.layouts import BLURRY_FOLDERS
from memdeblur.utils.errors import DataError


def sequence_frames_folder(folder):
    """The folder of a sequence's (blurry) frames: ``folder`` itself, or its blurry folder in a data set's layout
    (``BLURRY_FOLDERS``: GOPRO ``blur_gamma`` or ``blur``, BSD ``Blur/RGB``, DVD ``input``); None when neither holds
    frames."""
    for candidate in (folder, *(osp.join(folder, sub) for sub in BLURRY_FOLDERS)):
        if osp.isdir(candidate) and list_frame_files(candidate):
            return candidate
    return None


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

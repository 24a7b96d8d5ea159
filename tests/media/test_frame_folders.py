"""A sequence's folder gives its blurry frames in every layout of the one registry (GOPRO's blur_gamma before its
blur), or is itself the folder of frames."""
import cv2
import numpy as np
import pytest

from memdeblur.media.frame_folders import read_folder_frames, sequence_frames_folder
from memdeblur.media.layouts import FOLDER_LAYOUTS


def write_frames(folder, shade):
    folder.mkdir(parents=True)
    for index in range(2):
        cv2.imwrite(str(folder / f'{index:06d}.png'), np.full((8, 12, 3), shade + index, np.uint8))


@pytest.mark.parametrize('layout', sorted(FOLDER_LAYOUTS))
def test_a_sequence_folder_of_any_layout_gives_its_blurry_frames(tmp_path, layout):
    folders = FOLDER_LAYOUTS[layout]
    for shade, sub in enumerate((*folders.blurry, folders.sharp)):
        write_frames(tmp_path / 'SEQ' / sub, 10 * shade)
    found = sequence_frames_folder(str(tmp_path / 'SEQ'))
    assert found == str(tmp_path / 'SEQ' / (folders.read_first or folders.blurry[0]))
    assert len(list(read_folder_frames(found))) == 2


def test_a_folder_of_frames_is_its_own_and_an_empty_one_has_none(tmp_path):
    write_frames(tmp_path / 'frames', 0)
    (tmp_path / 'empty').mkdir()
    assert sequence_frames_folder(str(tmp_path / 'frames')) == str(tmp_path / 'frames')
    assert sequence_frames_folder(str(tmp_path / 'empty')) is None

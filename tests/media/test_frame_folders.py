"""A sequence's folder gives its blurry frames in every layout of the one registry (GOPRO's blur_gamma before its
blur, the other named in the sequence's notes), or is itself the folder of frames; its frames must share one size
once upright by their EXIF orientation."""
import cv2
import numpy as np
import pytest
from PIL import Image

from memdeblur.media.frame_folders import read_folder_frames, sequence_frames_folders
from memdeblur.media.inputs import find_inputs
from memdeblur.media.layouts import FOLDER_LAYOUTS
from memdeblur.utils.errors import DataError
from tests.media.test_images import exif_jpeg, pattern


def write_frames(folder, shade):
    folder.mkdir(parents=True)
    for index in range(2):
        cv2.imwrite(str(folder / f'{index:06d}.png'), np.full((8, 12, 3), shade + index, np.uint8))


@pytest.mark.parametrize('layout', sorted(FOLDER_LAYOUTS))
def test_a_sequence_folder_of_any_layout_gives_its_blurry_frames(tmp_path, layout):
    folders = FOLDER_LAYOUTS[layout]
    for shade, sub in enumerate((*folders.blurry, folders.sharp)):
        write_frames(tmp_path / 'SEQ' / sub, 10 * shade)
    found = sequence_frames_folders(str(tmp_path / 'SEQ'))
    assert found == [str(tmp_path / 'SEQ' / sub) for sub in folders.search_order]
    assert found[0] == str(tmp_path / 'SEQ' / (folders.read_first or folders.blurry[0]))
    assert len(list(read_folder_frames(found[0]))) == 2


def test_a_folder_of_frames_is_its_own_and_an_empty_one_has_none(tmp_path):
    write_frames(tmp_path / 'frames', 0)
    (tmp_path / 'empty').mkdir()
    assert sequence_frames_folders(str(tmp_path / 'frames')) == [str(tmp_path / 'frames')]
    assert sequence_frames_folders(str(tmp_path / 'empty')) == []


def test_a_sequence_with_blur_and_blur_gamma_says_which_it_read_and_how_to_read_the_other(tmp_path):
    """GOPRO's blur_gamma is read; the note names it, the blur folder not read, and giving that folder as the
    input reads it (and says nothing more)."""
    for shade, sub in ((40, 'blur'), (200, 'blur_gamma'), (120, 'sharp')):
        write_frames(tmp_path / 'GOPRO' / 'SEQ' / sub, shade)
    for given in (tmp_path / 'GOPRO', tmp_path / 'GOPRO' / 'SEQ'):
        (seq, ) = find_inputs(str(given))
        assert seq.path == str(tmp_path / 'GOPRO' / 'SEQ' / 'blur_gamma')
        assert next(seq.frames())[0, 0, 0] == 200
        (note, ) = seq.notes
        assert f'read {seq.path}' in note and f'{tmp_path / "GOPRO" / "SEQ" / "blur"}, also there, was not read' in note
    (other, ) = find_inputs(str(tmp_path / 'GOPRO' / 'SEQ' / 'blur'))
    assert next(other.frames())[0, 0, 0] == 40 and other.notes == []


def test_frames_turned_by_their_exif_orientation_are_noted_and_mixed_ones_refused_naming_why(tmp_path):
    folder = tmp_path / 'phone'
    folder.mkdir()
    for index in range(3):
        exif_jpeg(folder / f'{index}.jpg', pattern(), 6)
    (seq, ) = find_inputs(str(folder))
    assert seq.notes == ['3 of 3 frames rotated by EXIF orientation 6 (rotated 90 degrees clockwise), upright as '
                         'viewers show them']
    assert all(frame.shape == (67, 45, 3) for frame in seq.frames())  # stored 45x67, upright 67x45
    exif_jpeg(folder / '3.jpg', np.ascontiguousarray(np.rot90(pattern())), 3)  # stored 67x45: upright the same
    assert [note[:43] for note in find_inputs(str(folder))[0].notes] == [
        '1 of 4 frames rotated by EXIF orientation 3', '3 of 4 frames rotated by EXIF orientation 6']
    Image.fromarray(pattern()).save(folder / '4.jpg', quality=95)  # upright as stored, 45x67: not the others' size
    with pytest.raises(DataError, match=r'4\.jpg is 45x67, but the sequence started at 67x45 once turned upright by '
                       r'its EXIF orientation 6 \(rotated 90 degrees clockwise\) \(.*0\.jpg\)\. Their EXIF '
                       'orientations differ'):
        find_inputs(str(folder))

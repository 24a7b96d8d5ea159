"""Odd image formats are explicit: gray and 16-bit frames are converted, an opaque alpha channel dropped, and a
transparent one, float pixels, other channel counts and missing files refused naming the frame; frames with an EXIF
orientation (phone pictures) are read upright, as viewers show them."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from memdeblur.media.images import EXIF_ORIENTATION, decode_frame, frame_header, read_frame, to_float_rgb
from memdeblur.utils.errors import FrameError


def test_gray_sixteen_bit_and_alpha_frames(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    cv2.imwrite(str(tmp_path / 'gray.png'), gray)
    assert np.array_equal(read_frame(str(tmp_path / 'gray.png')), np.repeat(gray[..., None], 3, 2) / np.float32(255))
    deep = (np.arange(36, dtype=np.uint16).reshape(3, 4, 3) * 1800)
    cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    assert np.allclose(read_frame(str(tmp_path / 'deep.png')), deep[..., ::-1] / 65535.0)
    opaque = np.dstack([np.full((3, 4, 3), 7, np.uint8), np.full((3, 4), 255, np.uint8)])
    cv2.imwrite(str(tmp_path / 'opaque.png'), opaque)
    assert np.allclose(read_frame(str(tmp_path / 'opaque.png')), 7 / 255.0)
    opaque[0, 0, 3] = 0
    cv2.imwrite(str(tmp_path / 'transparent.png'), opaque)
    with pytest.raises(FrameError, match=r'transparent.png has a transparent alpha channel'):
        read_frame(str(tmp_path / 'transparent.png'))
    with pytest.raises(FrameError, match='pixel type float32'):
        to_float_rgb(np.zeros((2, 2, 3), np.float32), 'x.exr')
    with pytest.raises(FrameError, match='2 channels'):
        to_float_rgb(np.zeros((2, 2, 2), np.uint8), 'x.png')
    with pytest.raises(FrameError, match='missing.png cannot be read'):
        read_frame(str(tmp_path / 'missing.png'))


def pattern():
    """An upright 45x67 frame that shows how it was turned: saturated red top left, green top right, blue bottom
    left, black bottom right."""
    image = np.zeros((45, 67, 3), np.uint8)
    image[:15, :20], image[:15, -20:], image[-15:, :20] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    return image


def exif_jpeg(path, stored, orientation):
    """Write RGB pixels ``stored`` as a JPEG tagged with EXIF ``orientation``, as a phone does."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    Image.fromarray(stored).save(path, quality=95, exif=exif)


@pytest.mark.parametrize('orientation, stored', [(3, lambda p: np.rot90(p, 2)), (6, lambda p: np.rot90(p, 1)),
                                                 (8, lambda p: np.rot90(p, -1))], ids=('3', '6', '8'))
def test_a_phone_jpeg_is_read_upright_by_its_exif_orientation(tmp_path, orientation, stored):
    """The camera stores the pixels turned and says how to turn them back; they are read as a viewer shows them."""
    path = tmp_path / 'phone.jpg'
    exif_jpeg(path, np.ascontiguousarray(stored(pattern())), orientation)
    assert frame_header(str(path)) == (45, 67, orientation)
    frame = read_frame(str(path))
    assert frame.shape == (45, 67, 3)
    for (y, x), colour in (((7, 10), (1, 0, 0)), ((7, 56), (0, 1, 0)), ((37, 10), (0, 0, 1)), ((37, 56), (0, 0, 0))):
        assert np.abs(frame[y, x] - colour).max() < 0.1, ((y, x), frame[y, x])


@pytest.mark.parametrize('form', ('PNG', 'WEBP', 'TIFF'))
def test_every_exif_orientation_turns_frames_as_viewers_do_in_every_format(form):
    """All eight orientations, in lossless formats, give Pillow's ``exif_transpose`` bit for bit (TIFF's decoders
    turn the pixels themselves: not turned twice), from bytes as the LMDB datasets decode them, and the size the
    header gives is the upright one."""
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        encoded = io.BytesIO()
        tag = {'tiffinfo': {EXIF_ORIENTATION: orientation}} if form == 'TIFF' else {'exif': exif}
        Image.fromarray(pattern()).save(encoded, form, **tag, **({'lossless': True} if form == 'WEBP' else {}))
        with Image.open(encoded) as image:
            viewed = np.asarray(ImageOps.exif_transpose(image).convert('RGB'))
        frame = decode_frame(encoded.getvalue(), f'{form} {orientation}')
        assert np.array_equal(np.rint(frame * 255).astype(np.uint8), viewed), orientation
        assert viewed.shape[:2] == ((67, 45) if orientation >= 5 else (45, 67))


def test_a_png_with_no_exif_is_read_as_stored(tmp_path):
    cv2.imwrite(str(tmp_path / 'plain.png'), pattern()[..., ::-1])
    assert frame_header(str(tmp_path / 'plain.png')) == (45, 67, 1)
    assert np.array_equal(np.rint(read_frame(str(tmp_path / 'plain.png')) * 255).astype(np.uint8), pattern())

"""Odd image formats are explicit: gray and 16-bit frames are converted, an opaque alpha channel dropped, and a
transparent one, float pixels, other channel counts and missing files refused naming the frame."""
import cv2
import numpy as np
import pytest

from memdeblur.media.images import read_frame, to_float_rgb
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

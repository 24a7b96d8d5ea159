"""A video output that cannot be encoded is refused in one line naming the flag and the problem, before anything
is written: odd frame sizes in a 4:2:0 pixel format, an image or audio codec, a codec the container cannot hold,
a pixel format the codec does not take or that does not exist."""
from fractions import Fraction

import cv2
import numpy as np
import pytest

from memdeblur.utils.errors import DataError
from memdeblur.media.video_encoding import check_video_encoding
from memdeblur.media.writers import VideoFileWriter
from tests.media.test_video_streams import deblur, phone_clip

REFUSED = [
    ('odd.mp4', (33, 47), None, 'yuv420p', r'--pix-fmt yuv420p: its chroma is subsampled 2x2, which frames of 47x33'),
    ('odd.mkv', (32, 47), None, 'yuv422p10le', r'--pix-fmt yuv422p10le: .* frames of 47x32 \(an odd side\)'),
    ('jpeg.mp4', (32, 48), 'mjpeg', None, r'jpeg\.mp4: the mjpeg codec refuses 48x32 frames in --pix-fmt yuv420p'),
    ('sound.mp4', (32, 48), 'aac', None, r'--codec aac: an audio codec, not a video one'),
    ('none.mkv', (32, 48), 'nonesuch', None, r'--codec nonesuch: FFmpeg has no encoder of that name'),
    ('pro.avi', (32, 48), 'prores_ks', None, r'--codec prores_ks: pro\.avi \(avi container\) cannot hold it'),
    ('web.webm', (32, 48), 'libx264', None, r'--codec libx264: web\.webm \(webm container\) cannot hold it'),
    ('rgb.mp4', (32, 48), None, 'rgb24', r'--pix-fmt rgb24: the libx264 codec does not take it; it takes yuv420p'),
    ('what.mp4', (32, 48), None, 'yuv999p', r'--pix-fmt yuv999p: not a pixel format'),
]


@pytest.mark.parametrize('name, size, codec, pix_fmt, message', REFUSED)
def test_outputs_that_cannot_be_encoded_are_refused_naming_the_flag(tmp_path, name, size, codec, pix_fmt, message):
    path = str(tmp_path / name)
    with pytest.raises(DataError, match=message):
        check_video_encoding(path, *size, codec=codec, pix_fmt=pix_fmt)
    with pytest.raises(DataError, match=message):  # the writer checks too, and leaves nothing behind
        with VideoFileWriter(path, Fraction(25), codec=codec, pix_fmt=pix_fmt) as writer:
            writer.write(np.zeros((*size, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('size, pix_fmt', [((33, 47), None), ((33, 47), 'yuv444p10le'), ((32, 48), 'yuv420p10le')])
def test_what_can_be_encoded_passes_and_says_how(tmp_path, size, pix_fmt):
    codec, chosen, options = check_video_encoding(str(tmp_path / 'ok.mp4'), *size, pix_fmt=pix_fmt, crf=20)
    assert codec == 'libx264' and chosen == (pix_fmt or 'yuv444p') and options['crf'] == '20'
    with VideoFileWriter(str(tmp_path / 'ok.mp4'), Fraction(25), pix_fmt=pix_fmt) as writer:
        writer.write(np.zeros((*size, 3), np.uint8))
    assert (tmp_path / 'ok.mp4').stat().st_size > 0


@pytest.mark.parametrize('flags, message', [(('--codec', 'aac'), '--codec aac: an audio codec'),
                                            (('--codec', 'mjpeg'), 'the mjpeg codec refuses'),
                                            (('--pix-fmt', 'yuv420p'), '--pix-fmt yuv420p: its chroma is subsampled')])
def test_the_tool_says_it_in_one_line(identity_options, tmp_path, flags, message):  # noqa: F811
    if '--pix-fmt' in flags:  # frames of odd sides
        source = tmp_path / 'frames'
        source.mkdir()
        for index in range(3):
            cv2.imwrite(str(source / f'{index:03d}.png'), np.full((33, 47, 3), 60 * index, np.uint8))
    else:
        source = tmp_path / 'clip.mp4'
        phone_clip(source, frames=3)
    out = tmp_path / 'out.mp4'
    result = deblur(source, '-o', out, '--opt', identity_options, *flags)
    assert result.returncode == 1 and message in result.stderr and 'Traceback' not in result.stderr
    assert not out.exists()

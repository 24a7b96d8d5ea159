"""Colours are exact at every depth: a video's pixels reach the network as the RGB its planes and colour tags say,
and a restored video's planes hold the RGB written, in the matrix and range of its tags.

The reference is written here from the standards (BT.601, BT.709, BT.2020 non-constant luminance: Kr and Kb;
limited range Y 16-235 and chroma 16-240 times 2^(bits-8), full range 0 to 2^bits - 1), not taken from FFmpeg. The
clips hold saturated colour blocks (pure primaries and secondaries, mid tones) of odd sizes, coded losslessly
(H.264 at qp 0, FFV1), so that what is measured is the colour conversion, not the compression.
"""
from fractions import Fraction

import av
import numpy as np
import pytest

from memdeblur.media.inputs import probe_video
from memdeblur.media.writers import VideoFileWriter
from tests.media.test_video_streams import deblur

# AVColorSpace -> (Kr, Kb); the primaries and transfer tagged with it (AVColorPrimaries, AVColorTransferCharacteristic)
STANDARDS = {'bt601': (6, (0.299, 0.114), 6, 6), 'bt709': (1, (0.2126, 0.0722), 1, 1),
             'bt2020': (9, (0.2627, 0.0593), 9, 14)}
LIMITED, FULL = 1, 2
COLOURS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0),
                    (203, 40, 40), (40, 203, 40), (40, 40, 203), (128, 128, 128), (255, 255, 255), (0, 0, 0)],
                   float) / 255
BLOCK_H, BLOCK_W = 13, 11  # odd: block edges fall inside chroma samples
ROWS, COLUMNS = 3, 4
EDGE = 2  # pixels this far inside a block: its own chroma under nearest or bilinear upsampling, any siting


def rgb_to_codes(rgb, kr, kb, full, bits):
    """Y, Cb, Cr codes (float) of R'G'B' in [0, 1] by the standard's equations."""
    luma = rgb @ np.array([kr, 1 - kr - kb, kb])
    cb, cr = (rgb[..., 2] - luma) / (2 * (1 - kb)), (rgb[..., 0] - luma) / (2 * (1 - kr))
    if full:
        peak = 2 ** bits - 1
        return luma * peak, cb * peak + 2 ** (bits - 1), cr * peak + 2 ** (bits - 1)
    step = 2 ** (bits - 8)
    return (16 + 219 * luma) * step, (128 + 224 * cb) * step, (128 + 224 * cr) * step


def codes_to_rgb(y, cb, cr, kr, kb, full, bits):
    """R'G'B' in [0, 1] of Y, Cb, Cr codes."""
    if full:
        peak = 2 ** bits - 1
        luma, cb, cr = y / peak, (cb - 2 ** (bits - 1)) / peak, (cr - 2 ** (bits - 1)) / peak
    else:
        step = 2 ** (bits - 8)
        luma, cb, cr = (y / step - 16) / 219, (cb / step - 128) / 224, (cr / step - 128) / 224
    red, blue = luma + 2 * (1 - kr) * cr, luma + 2 * (1 - kb) * cb
    return np.stack([red, (luma - kr * red - kb * blue) / (1 - kr - kb), blue], axis=-1)


def block_image():
    """(H, W, 3) R'G'B' in [0, 1]: ``COLOURS`` in a grid of odd-sized blocks, and a mask of block interiors."""
    height, width = ROWS * BLOCK_H + 1, COLUMNS * BLOCK_W + 2  # even, for 4:2:0
    image = np.full((height, width, 3), 0.5)
    interior = np.zeros((height, width), bool)
    for index, colour in enumerate(COLOURS):
        top, left = index // COLUMNS * BLOCK_H, index % COLUMNS * BLOCK_W
        image[top:top + BLOCK_H, left:left + BLOCK_W] = colour
        interior[top + EDGE:top + BLOCK_H - EDGE, left + EDGE:left + BLOCK_W - EDGE] = True
    return image, interior


def plane_view(plane, bits):
    dtype = np.dtype('<u2') if bits > 8 else np.dtype(np.uint8)
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width * dtype.itemsize] \
        .view(dtype)


def subsampling(pix_fmt):
    form = av.VideoFormat(pix_fmt)
    return 1024 // form.chroma_height(1024), 1024 // form.chroma_width(1024)


def make_clip(path, standard, full, pix_fmt, frames=2, trc=None):
    """A lossless H.264 clip of ``block_image`` whose planes are coded here by the reference equations; returns
    the RGB (in [0, 1]) its planes say, each chroma sample covering the pixels it was made from."""
    colorspace, (kr, kb), primaries, transfer = STANDARDS[standard]
    bits = av.VideoFormat(pix_fmt).components[0].bits
    image, _ = block_image()
    y, cb, cr = rgb_to_codes(image, kr, kb, full, bits)
    sub_y, sub_x = subsampling(pix_fmt)
    height, width = y.shape
    chroma = [c.reshape(height // sub_y, sub_y, width // sub_x, sub_x).mean(axis=(1, 3)) for c in (cb, cr)]
    codes = [np.clip(np.rint(p), 0, 2 ** bits - 1) for p in (y, *chroma)]
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, values in zip(frame.planes, codes):
        plane_view(plane, bits)[...] = values
    frame.colorspace, frame.color_range = colorspace, FULL if full else LIMITED
    with av.open(str(path), 'w') as out:
        stream = out.add_stream('libx264', rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {'qp': '0'}
        context = stream.codec_context
        context.colorspace, context.color_range = colorspace, FULL if full else LIMITED
        context.color_primaries, context.color_trc = primaries, trc or transfer
        for index in range(frames):
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    upsampled = [np.repeat(np.repeat(c, sub_y, 0), sub_x, 1) for c in codes[1:]]
    return codes_to_rgb(codes[0], *upsampled, kr, kb, full, bits)


CASES = [(standard, full, pix_fmt) for standard in STANDARDS for full in (False, True)
         for pix_fmt in ('yuv444p', 'yuv420p', 'yuv444p10le', 'yuv420p10le')] + [
    ('bt709', False, 'yuv422p10le'), ('bt2020', True, 'yuv422p10le')]


@pytest.mark.parametrize('standard, full, pix_fmt', CASES)
def test_decoded_colours_are_what_the_planes_and_tags_say(tmp_path, standard, full, pix_fmt):
    path = tmp_path / 'blocks.mp4'
    expected = make_clip(path, standard, full, pix_fmt)
    _, interior = block_image()
    seq = probe_video(str(path))
    deep = av.VideoFormat(pix_fmt).components[0].bits > 8
    assert seq.deep == deep
    frames = list(seq.timed_frames())
    assert len(frames) == 2
    for frame, _ in frames:
        assert frame.dtype == (np.uint16 if deep else np.uint8) and frame.shape == expected.shape
        peak = 65535 if deep else 255
        error = np.abs(frame.astype(float) - np.clip(expected, 0, 1) * peak) / (peak / 255)
        assert error[interior].max() <= 1, (error[interior].max(), standard, full, pix_fmt)  # 1 level at 8 bits
        if pix_fmt.startswith('yuv444'):  # no chroma to interpolate: every pixel
            assert error.max() <= 1


@pytest.mark.parametrize('standard, full, pix_fmt', [
    (standard, full, pix_fmt) for standard in STANDARDS for full in (False, True)
    for pix_fmt in ('yuv420p', 'yuv444p10le', 'yuv420p10le')])
def test_written_planes_hold_the_rgb_in_the_sources_matrix_and_range(tmp_path, standard, full, pix_fmt):
    """VideoFileWriter codes RGB into the source's matrix and range (FFV1: lossless), and tags the video so."""
    source = tmp_path / 'source.mp4'
    make_clip(source, standard, full, 'yuv444p10le', frames=1)
    image, interior = block_image()
    bits = av.VideoFormat(pix_fmt).components[0].bits
    rgb = np.rint(image * 65535).astype(np.uint16) if bits > 8 else np.rint(image * 255).astype(np.uint8)
    out = tmp_path / 'written.mkv'
    with VideoFileWriter(str(out), Fraction(25), source=probe_video(str(source)), codec='ffv1',
                         pix_fmt=pix_fmt) as writer:
        writer.write(rgb, 0)
    colorspace, (kr, kb), primaries, transfer = STANDARDS[standard]
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        planes = [plane_view(plane, bits).astype(float) for plane in frame.planes]
        assert (frame.colorspace, frame.color_range) == (colorspace, FULL if full else LIMITED)
        assert (frame.color_primaries, frame.color_trc) == (primaries, transfer)
    sub_y, sub_x = subsampling(pix_fmt)
    expected = rgb_to_codes(image, kr, kb, full, bits)
    step = 2 ** (bits - 8)
    assert np.abs(planes[0] - expected[0]).max() <= step  # within 1 level at 8 bits
    for plane, reference in zip(planes[1:], expected[1:]):
        centres = reference[sub_y // 2::sub_y, sub_x // 2::sub_x]
        inside = interior[sub_y // 2::sub_y, sub_x // 2::sub_x]
        assert np.abs(plane - np.clip(centres, 0, 2 ** bits - 1))[inside].max() <= step


def block_centres(path):
    """The RGB (8-bit scale) of each block's centre in the first frame of a video."""
    frame = next(probe_video(str(path)).frames()).astype(float)
    frame = frame / 257 if frame.max() > 255 else frame
    return np.array([frame[index // COLUMNS * BLOCK_H + BLOCK_H // 2, index % COLUMNS * BLOCK_W + BLOCK_W // 2]
                     for index in range(len(COLOURS))])


@pytest.mark.parametrize('standard, trc, note', [
    ('bt709', None, None), ('bt2020', 16, 'HDR (PQ, SMPTE 2084) transfer'),
    ('bt2020', 18, 'HDR (HLG, ARIB STD-B67) transfer')])
def test_ten_bit_saturated_colours_survive_the_tool(identity_options, tmp_path, standard, trc, note):  # noqa: F811
    """Through tools/deblur_video.py and an identity network: every block within 2 levels (8-bit scale) of what
    it was; an HDR clip says in one line what its output is, and keeps its primaries and transfer tags."""
    source = tmp_path / 'ten.mp4'
    expected = make_clip(source, standard, False, 'yuv420p10le', frames=3, trc=trc)
    out = tmp_path / 'out.mp4'
    result = deblur(source, '-o', out, '--opt', identity_options, '--pix-fmt', 'yuv420p10le', '--crf', '0')
    assert result.returncode == 0, result.stderr[-2000:]
    centres = np.array([expected[index // COLUMNS * BLOCK_H + BLOCK_H // 2, index % COLUMNS * BLOCK_W + BLOCK_W // 2]
                        for index in range(len(COLOURS))])
    assert np.abs(block_centres(out) - np.clip(centres, 0, 1) * 255).max() <= 2
    colorspace, _, primaries, transfer = STANDARDS[standard]
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert (frame.colorspace, frame.color_primaries, frame.color_trc) == (colorspace, primaries, trc or transfer)
    if note:
        assert sum(note in line for line in result.stdout.splitlines()) == 1
        assert 'no tone mapping' in result.stdout
    else:
        assert 'HDR' not in result.stdout

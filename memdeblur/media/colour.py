"""How a video's RGB is coded in YUV, and converting frames between the two by the standards' equations.

A video's pixels are coded in a matrix (BT.601, BT.709 or BT.2020), a range (limited or full), primaries and a
transfer (PQ and HLG for HDR): ``ColourConventions`` holds them, as FFmpeg numbers them, converts decoded frames to
RGB (``to_rgb``) and RGB back to frames to encode (``from_rgb``), so that a restored video is coded as its source
was.
"""
from dataclasses import dataclass

import av
import numpy as np

# FFmpeg's "unspecified" values of the colour properties (AVColorSpace, AVColorRange, ...)
UNSPECIFIED_COLORSPACE, UNSPECIFIED_RANGE = 2, 0
FULL_RANGE = 2
# (Kr, Kb) of the YUV matrices by AVColorSpace: BT.709; FCC; BT.470BG and SMPTE 170M (BT.601); SMPTE 240M; BT.2020
# (non-constant luminance). Unspecified: BT.601, FFmpeg's default.
MATRICES = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
            9: (0.2627, 0.0593), UNSPECIFIED_COLORSPACE: (0.299, 0.114)}
# HDR transfers (AVColorTransferCharacteristic): restored as coded, without tone mapping
HDR_TRANSFERS = {16: 'PQ, SMPTE 2084', 18: 'HLG, ARIB STD-B67'}


@dataclass(frozen=True)
class ColourConventions:
    """How a video's RGB is coded in YUV: FFmpeg's enum values of the matrix, range, primaries and transfer."""

    colorspace: int = UNSPECIFIED_COLORSPACE
    color_range: int = UNSPECIFIED_RANGE
    color_primaries: int = 2
    color_trc: int = 2

    @classmethod
    def of(cls, frame):
        return cls(int(frame.colorspace), int(frame.color_range), int(frame.color_primaries), int(frame.color_trc))

    def conversion(self):
        """``VideoFrame.reformat`` arguments of the matrix and range (FFmpeg's defaults where unspecified)."""
        args = {}
        if self.colorspace != UNSPECIFIED_COLORSPACE:
            args['colorspace'] = self.colorspace
        if self.color_range != UNSPECIFIED_RANGE:
            args['color_range'] = self.color_range
        return args

    @property
    def hdr(self):
        """The name of its HDR transfer (PQ, HLG), or None."""
        return HDR_TRANSFERS.get(self.color_trc)

    def to_rgb(self, frame):
        """The (H, W, 3) RGB image of a decoded frame: uint8 for 8-bit frames, uint16 for deeper ones.

        Planar YUV frames (``yuv4xxp``, 8 to 16 bits) are converted here, by the standard's equations of the
        frame's matrix and range, with each chroma sample covering the pixels it was subsampled from: swscale
        (FFmpeg 8, through PyAV's ``reformat``) shifts the chroma of decoded frames of more than 8 bits by a
        sample and rounds its 8-bit path by up to 3 levels. Other formats (RGB, semi-planar, grey) go through
        swscale, nearest-sample chroma, accurate rounding.
        """
        layout = _planar_yuv(frame.format)
        deep = component_bits(frame.format) > 8
        if layout is None or self._matrix(frame) is None:
            return frame.reformat(format='rgb48le' if deep else 'rgb24', interpolation=_ACCURATE,
                                  **{f'src_{key}': value for key, value in self.conversion().items()}).to_ndarray()
        bits, (sub_y, sub_x) = layout
        planes = [_plane_array(plane, bits) for plane in frame.planes[:3]]
        kr, kb = self._matrix(frame)
        y_scale, y_offset, c_scale, c_offset = _quantisation(bits, self._full_range(frame))
        height, width = frame.height, frame.width
        luma = (planes[0].astype(np.float32) - y_offset) / y_scale
        cb, cr = ((p.astype(np.float32) - c_offset) / c_scale for p in planes[1:])
        cb, cr = (np.repeat(np.repeat(c, sub_y, 0), sub_x, 1)[:height, :width] for c in (cb, cr))
        red, blue = luma + 2 * (1 - kr) * cr, luma + 2 * (1 - kb) * cb
        green = (luma - kr * red - kb * blue) / (1 - kr - kb)
        peak = 65535 if deep else 255
        rgb = np.stack([red, green, blue], axis=-1) * peak
        return np.clip(np.rint(rgb), 0, peak).astype(np.uint16 if deep else np.uint8)

    def from_rgb(self, image, pix_fmt):
        """A ``VideoFrame`` of ``pix_fmt`` holding an (H, W, 3) RGB image (uint8 or uint16) in this matrix and
        range: planar YUV by the standard's equations (each chroma sample the mean of the pixels it covers), other
        formats through swscale."""
        form = av.VideoFormat(pix_fmt)
        layout = _planar_yuv(form)
        if layout is None or MATRICES.get(self.colorspace) is None:
            rgb = 'rgb48le' if image.dtype == np.uint16 else 'rgb24'
            frame = av.VideoFrame.from_ndarray(image, format=rgb).reformat(
                format=pix_fmt, interpolation=_ACCURATE,
                **{f'dst_{key}': value for key, value in self.conversion().items()})
        else:
            bits, (sub_y, sub_x) = layout
            kr, kb = MATRICES[self.colorspace]
            rgb = image.astype(np.float32) / (65535 if image.dtype == np.uint16 else 255)
            luma = rgb @ np.array([kr, 1 - kr - kb, kb], np.float32)
            cb, cr = (rgb[..., 2] - luma) / (2 * (1 - kb)), (rgb[..., 0] - luma) / (2 * (1 - kr))
            full = self.color_range == FULL_RANGE or pix_fmt.startswith('yuvj')
            y_scale, y_offset, c_scale, c_offset = _quantisation(bits, full)
            frame = av.VideoFrame(image.shape[1], image.shape[0], pix_fmt)
            planes = [luma * y_scale + y_offset] + [_subsample(c, sub_y, sub_x) * c_scale + c_offset for c in (cb, cr)]
            for plane, values in zip(frame.planes, planes):
                target = _plane_array(plane, bits)
                target[...] = np.clip(np.rint(values), 0, 2 ** bits - 1)
        for key in ('colorspace', 'color_range', 'color_primaries', 'color_trc'):
            setattr(frame, key, getattr(self, key))
        return frame

    def _matrix(self, frame):
        return MATRICES.get(self.colorspace if self.colorspace != UNSPECIFIED_COLORSPACE else int(frame.colorspace))

    def _full_range(self, frame):
        color_range = self.color_range if self.color_range != UNSPECIFIED_RANGE else int(frame.color_range)
        return color_range == FULL_RANGE or frame.format.name.startswith('yuvj')


_ACCURATE = av.video.reformatter.Interpolation.POINT | av.video.reformatter.Interpolation.ACCURATE_RND


def _planar_yuv(pixel_format):
    """(bits, (vertical, horizontal) chroma subsampling) of a planar YUV format of 8 to 16 bits (native little
    endian); None for other formats."""
    name = pixel_format.name
    components = pixel_format.components
    if not name.startswith(('yuv4', 'yuvj4')) or len(components) != 3 or name.endswith('be'):
        return None
    if [c.plane for c in components] != [0, 1, 2]:
        return None
    return components[0].bits, (1024 // pixel_format.chroma_height(1024), 1024 // pixel_format.chroma_width(1024))


def _plane_array(plane, bits):
    """A writable (height, width) view of a frame's plane."""
    dtype = np.dtype('<u2') if bits > 8 else np.dtype(np.uint8)
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, :plane.width * dtype.itemsize].view(dtype)


def _quantisation(bits, full):
    """(Y scale, Y offset, chroma scale, chroma offset) of ``bits``-bit codes: limited range (BT.601/709/2020: Y
    16-235, chroma 16-240, times 2^(bits-8)) or full range (0 to 2^bits - 1, chroma centred on 2^(bits-1))."""
    if full:
        peak = 2 ** bits - 1
        return peak, 0.0, peak, 2.0 ** (bits - 1)
    step = 2.0 ** (bits - 8)
    return 219 * step, 16 * step, 224 * step, 128 * step


def _subsample(chroma, sub_y, sub_x):
    """The mean of each ``sub_y`` x ``sub_x`` block of a chroma plane (edge pixels repeated for odd sizes)."""
    if sub_y == sub_x == 1:
        return chroma
    height, width = chroma.shape
    padded = np.pad(chroma, ((0, -height % sub_y), (0, -width % sub_x)), mode='edge')
    return padded.reshape(padded.shape[0] // sub_y, sub_y, padded.shape[1] // sub_x, sub_x).mean(axis=(1, 3))


def component_bits(pixel_format):
    """Bits per colour component of a pixel format (``av.VideoFormat``)."""
    return max((c.bits for c in pixel_format.components), default=8)

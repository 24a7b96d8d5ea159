"""What a video file carries besides its pixels, and how a restored video keeps it.

A phone video is more than frames: its audio, the display rotation a player applies, the time of each frame
(variable frame rates hold frames longer), and the colour conventions its pixels are coded in (BT.601, BT.709 or
BT.2020 matrix, limited or full range, the primaries and transfer: PQ and HLG for HDR). ``probe_video_facts`` reads
them; ``ColourConventions`` converts YUV frames to RGB and back by the standards' equations; ``VideoWriter``
(``memdeblur.data.video_io``) writes the restored frames with the same timestamps, rotation and colour
conventions, and ``StreamCopier`` carries the other streams over:

* audio is copied packet for packet when the output container takes its codec, otherwise decoded and
  re-encoded in the container's audio codec (AAC for mp4, mov, mkv, avi; Opus for webm);
* subtitle and data streams are copied when the container takes them, otherwise left out;
* attachments (fonts of Matroska subtitles, cover images) are copied into Matroska outputs, otherwise left out;
* each stream keeps its descriptive tags (``DESCRIPTIVE_TAGS``: language, title, ...) and disposition (default,
  forced, ...);

each decision is reported in words (``StreamCopier.notes``), so the tool can say what happened.
"""
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

import av
import numpy as np

# FFmpeg's "unspecified" values of the colour properties (AVColorSpace, AVColorRange, ...)
UNSPECIFIED_COLORSPACE, UNSPECIFIED_RANGE = 2, 0
FULL_RANGE = 2
# (Kr, Kb) of the YUV matrices by AVColorSpace: BT.709; FCC; BT.470BG and SMPTE 170M (BT.601); SMPTE 240M; BT.2020
# (non-constant luminance). Unspecified: BT.601, FFmpeg's default.
MATRICES = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
            9: (0.2627, 0.0593), UNSPECIFIED_COLORSPACE: (0.299, 0.114)}
# stream tags that describe the content, kept on the output's streams (the others describe the source's encoding)
DESCRIPTIVE_TAGS = ('language', 'title', 'handler_name', 'comment')
# containers whose frame table lists every frame the stream holds (FFmpeg's names start so): the mp4 family
FRAME_TABLE_FORMATS = ('mov', )
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


@dataclass(frozen=True)
class VideoFacts:
    """A video file's first video stream and what else it holds.

    Attributes:
        time_base (Fraction): The unit of its frames' timestamps.
        rotation (int): Display rotation in degrees, as the decoder reports it (``VideoFrame.rotation``).
        colour (ColourConventions): How its pixels are coded.
        bits (int): Bits per colour component (8, 10, ...).
        other_streams (list[tuple[int, str, str]]): (index, type, codec) of its audio, subtitle and data streams.
        end_pts (int | None): Where its last frame ends, in ``time_base`` units (None: the container does not say).
        declared_frames (int): How many frames the container's table of frames lists (mp4, mov:
            ``FRAME_TABLE_FORMATS``; 0 for the others, whose counts in headers may include dropped frames).
    """

    time_base: Fraction
    end_pts: Optional[int] = None
    rotation: int = 0
    colour: ColourConventions = ColourConventions()
    bits: int = 8
    other_streams: list = field(default_factory=list)
    declared_frames: int = 0


def component_bits(pixel_format):
    """Bits per colour component of a pixel format (``av.VideoFormat``)."""
    return max((c.bits for c in pixel_format.components), default=8)


def probe_video_facts(container):
    """The ``VideoFacts`` of an open input container (its first frame decoded for rotation and colour)."""
    stream = container.streams.video[0]
    first = next(container.decode(stream), None)
    others = [(s.index, s.type, s.codec_context.name if s.codec_context else '?')
              for s in container.streams if s.type in ('audio', 'subtitle', 'data')]
    end = stream.start_time + stream.duration if stream.duration and stream.start_time is not None else None
    declared = (stream.frames or 0) if container.format.name.startswith(FRAME_TABLE_FORMATS) else 0
    if first is None:
        return VideoFacts(Fraction(stream.time_base or Fraction(1, 90000)), end, other_streams=others,
                          declared_frames=declared)
    return VideoFacts(Fraction(stream.time_base), end, int(first.rotation or 0), ColourConventions.of(first),
                      component_bits(first.format), others, declared)


class StreamCopier:
    """Carries a source video's audio, subtitle and data streams into an output container being written.

    Create it before the first packet is written (the streams must exist when the header is), call
    ``mux_until(seconds)`` as video is written, so that packets interleave, and ``finish()`` at the end.

    Args:
        source (str): The input video file.
        output (av.container.OutputContainer): The container being written.
        audio_codec (str): Codec to re-encode audio in when the container cannot take the source's.
    """

    def __init__(self, source, output, audio_codec):
        self.output = output
        self.input = av.open(source)
        self.notes = []
        self._copied = {}  # input stream index -> output stream (packets copied)
        self._encoded = {}  # input stream index -> (output stream, resampler)
        supported = output.supported_codecs
        for stream in self.input.streams:
            if stream.type == 'attachment':
                self._attach(stream)
                continue
            if stream.type not in ('audio', 'subtitle', 'data'):
                continue
            codec = stream.codec_context.name if stream.codec_context else None
            what = f'{stream.type} stream #{stream.index} ({codec or "unknown codec"})'
            if codec in supported:
                self._copied[stream.index] = output.add_stream_from_template(stream)
                self._describe(self._copied[stream.index], stream)
                self.notes.append(f'{what}: copied without re-encoding')
            elif stream.type == 'audio':
                encoded = output.add_stream(audio_codec, rate=stream.codec_context.sample_rate,
                                            layout=stream.codec_context.layout.name)
                self._describe(encoded, stream)
                self._encoded[stream.index] = (encoded, av.AudioResampler(
                    format=encoded.codec_context.codec.audio_formats[0].name, layout=encoded.codec_context.layout.name,
                    rate=encoded.codec_context.sample_rate))
                self.notes.append(f'{what}: the {output.format.name} container does not take {codec}; '
                                  f're-encoded as {audio_codec}')
            else:
                self.notes.append(f'{what}: the {output.format.name} container does not take it; left out')
        streams = [self.input.streams[i] for i in (*self._copied, *self._encoded)]
        self._packets = self.input.demux(streams) if streams else iter(())
        self._pending: Optional[av.Packet] = None

    @staticmethod
    def _describe(output_stream, stream):
        """Give an output stream the source stream's descriptive tags and disposition."""
        output_stream.metadata.update({key: value for key, value in stream.metadata.items()
                                       if key.lower() in DESCRIPTIVE_TAGS})
        output_stream.disposition = stream.disposition

    def _attach(self, stream):
        """Copy an attachment (a font, a cover image) into a Matroska output; name it as left out elsewhere."""
        name = stream.metadata.get('filename', '')
        what = f'attachment #{stream.index} ({name or "unnamed"})'
        if self.output.format.name != 'matroska':
            self.notes.append(f'{what}: the {self.output.format.name} container cannot hold attachments; left out '
                              '(an .mkv output keeps it)')
            return
        copied = self.output.add_attachment(name or f'attachment_{stream.index}',
                                            stream.mimetype or 'application/octet-stream', stream.data)
        self._describe(copied, stream)
        self.notes.append(f'{what}: copied')

    def mux_until(self, seconds):
        """Write the source's packets up to ``seconds`` of presentation time."""
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            timed = packet.pts is not None and packet.time_base is not None
            if timed and float(packet.pts * packet.time_base) > seconds:
                self._pending = packet
                return
            self._write(packet)

    def finish(self):
        """Write the rest of the source's packets and flush the re-encoders; close the source."""
        self.mux_until(float('inf'))
        for stream, _ in self._encoded.values():
            for out in stream.encode(None):
                self.output.mux(out)
        self.input.close()

    def close(self):
        self.input.close()

    def _write(self, packet):
        index = packet.stream.index
        if index in self._copied:
            if packet.dts is None:  # the demuxer's flush packet
                return
            packet.stream = self._copied[index]
            self.output.mux(packet)
            return
        stream, resampler = self._encoded[index]
        for frame in packet.decode():
            for resampled in resampler.resample(frame):
                for out in stream.encode(resampled):
                    self.output.mux(out)

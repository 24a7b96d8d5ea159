"""What a video output is encoded as: the container its name says, the codec, pixel format and quality, and a
check, before any frame is restored, that FFmpeg can encode it so.

Outputs are H.264 at CRF 17 by default (visually lossless), VP9 for webm, in ``yuv420p``, or ``yuv444p`` for odd
frame sizes, which 4:2:0 cannot hold (``OUTPUT_CONTAINERS``, ``check_video_encoding``).
"""
import io
import os.path as osp
from fractions import Fraction

import av

from memdeblur.utils.errors import DataError

# output extension -> (FFmpeg muxer, video codec, audio codec for audio the muxer cannot take as it is)
OUTPUT_CONTAINERS = {
    '.mp4': ('mp4', 'libx264', 'aac'), '.m4v': ('mp4', 'libx264', 'aac'), '.mov': ('mov', 'libx264', 'aac'),
    '.mkv': ('matroska', 'libx264', 'aac'), '.avi': ('avi', 'libx264', 'aac'),
    '.webm': ('webm', 'libvpx-vp9', 'libopus'),
}
DEFAULT_CRF = 17


def output_container(path):
    """(muxer, video codec, audio codec) of an output video's name; a clear error for names we cannot write."""
    extension = osp.splitext(path)[1].lower()
    if extension not in OUTPUT_CONTAINERS:
        raise DataError(f'{path}: cannot write a video named {extension or "without an extension"}; name an '
                        f'{", ".join(sorted(OUTPUT_CONTAINERS))} file, or a folder for PNG frames.')
    return OUTPUT_CONTAINERS[extension]


def check_video_encoding(path, height, width, codec=None, pix_fmt=None, crf=DEFAULT_CRF, colour=None):
    """Refuse, before any work, a video output that cannot be encoded: an unknown codec, an audio or subtitle
    codec, a codec the container cannot hold, a pixel format that is not one or that the codec does not take, a
    frame size the pixel format cannot hold (odd sides with 4:2:0), or settings the encoder refuses (found by
    opening it on nothing); ``VideoFileWriter`` calls it too.

    Args:
        path (str): The output video's name (its container: ``output_container``).
        height, width (int): Its frame size.
        codec, pix_fmt, crf: As ``VideoFileWriter`` takes them (``--codec``, ``--pix-fmt``, ``--crf``).
        colour (ColourConventions | None): The colour conventions it will be tagged with (the source's).

    Returns:
        tuple[str, str, dict]: The codec, the pixel format and the encoder options the writer uses.

    Raises:
        DataError: naming the flag (or the output) and the problem, in one line.
    """
    muxer, default_codec, _ = output_container(path)
    codec = codec or default_codec
    try:
        encoder = av.codec.Codec(codec, 'w')
    except ValueError as err:
        raise DataError(f'--codec {codec}: FFmpeg has no encoder of that name ({err}).') from err
    if encoder.type != 'video':
        raise DataError(f'--codec {codec}: an {encoder.type} codec, not a video one; name a video codec such as '
                        f'libx264, libx265 or libvpx-vp9 (or none: {default_codec} for {osp.basename(path)}).')
    try:
        with av.open(io.BytesIO(), 'w', format=muxer) as probe:
            probe.add_stream(codec, rate=25)
    except (ValueError, av.FFmpegError) as err:
        raise DataError(f'--codec {codec}: {osp.basename(path)} ({muxer} container) cannot hold it ({err}); name '
                        'another codec or container.') from err
    pix_fmt = pix_fmt or ('yuv420p' if height % 2 == 0 and width % 2 == 0 else 'yuv444p')
    try:
        form = av.VideoFormat(pix_fmt)
    except ValueError as err:
        raise DataError(f'--pix-fmt {pix_fmt}: not a pixel format FFmpeg knows.') from err
    takes = [f.name for f in encoder.video_formats or ()]
    if takes and pix_fmt not in takes:
        raise DataError(f'--pix-fmt {pix_fmt}: the {codec} codec does not take it; it takes {", ".join(takes)}.')
    sub_y, sub_x = 1024 // form.chroma_height(1024), 1024 // form.chroma_width(1024)
    if height % sub_y or width % sub_x:
        raise DataError(f'--pix-fmt {pix_fmt}: its chroma is subsampled {sub_x}x{sub_y}, which frames of '
                        f'{width}x{height} (an odd side) cannot hold; use --pix-fmt yuv444p (or yuv444p10le).')
    options = {'crf': str(crf)} if codec.startswith(('libx26', 'libvpx')) else {}
    if codec == 'libx264':
        options['preset'] = 'medium'
    elif codec == 'libvpx-vp9':
        options['b'] = '0'  # constant quality: VP9 takes crf with no target bitrate
    context = av.codec.CodecContext.create(codec, 'w')
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = Fraction(1, 25)
    if colour is not None:
        context.colorspace, context.color_range = colour.colorspace, colour.color_range
    context.options = dict(options)
    try:
        context.open()
    except av.FFmpegError as err:
        raise DataError(f'{path}: the {codec} codec refuses {width}x{height} frames in --pix-fmt {pix_fmt}'
                        f'{f" at --crf {crf}" if "crf" in options else ""} ({err}); try another --pix-fmt or '
                        '--codec.') from err
    return codec, pix_fmt, options

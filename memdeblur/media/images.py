"""Image files of frames: listing a folder's, reading one into a float32 RGB array, probing its size and depth, and
writing a PNG; what the datasets and the video tool read and write frames with.

Every backend (image folders, BasicSR LMDB, the ESTRNN LMDB) decodes frames here, so a frame decodes
the same whatever its container. Formats are handled explicitly, never by accident:

* 8-bit and 16-bit images are scaled to [0, 1] by their own maximum (255 or 65535);
* grayscale frames are converted to RGB by repeating the channel;
* an alpha channel is dropped when it is fully opaque and refused otherwise (compositing onto
  an arbitrary background would invent data);
* an EXIF orientation (phone pictures, in JPEG, PNG, WebP or TIFF) is applied, so that a frame is read upright, as
  a viewer shows it (``UPRIGHT``, ``frame_header``): the training and test data too, so that a sequence's blurry and
  sharp frames are each turned by their own tag, alike, and a frame is the same frame to every tool;
* anything else (float images, other channel counts, undecodable bytes) is refused.

Errors are ``FrameError`` and name the frame.
"""
import io
import os
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from memdeblur.media.frame_names import natural_sorted
from memdeblur.utils.errors import FrameError
from memdeblur.utils.outputs import write_bytes

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
EXIF_ORIENTATION = 0x0112
# each EXIF orientation: what turns the stored pixels upright, in words and on an (H, W[, C]) array
UPRIGHT = {
    1: ('as stored', lambda image: image),
    2: ('mirrored left to right', lambda image: image[:, ::-1]),
    3: ('rotated 180 degrees', lambda image: image[::-1, ::-1]),
    4: ('mirrored top to bottom', lambda image: image[::-1]),
    5: ('mirrored along the diagonal from the top left', lambda image: image.swapaxes(0, 1)),
    6: ('rotated 90 degrees clockwise', lambda image: image[::-1].swapaxes(0, 1)),
    7: ('mirrored along the diagonal from the top right', lambda image: image[::-1, ::-1].swapaxes(0, 1)),
    8: ('rotated 90 degrees counter-clockwise', lambda image: image[:, ::-1].swapaxes(0, 1)),
}
# formats whose decoders (OpenCV's and Pillow's) apply the orientation themselves: their pixels and sizes come upright
UPRIGHT_WHEN_DECODED = ('TIFF', )


class FrameHeader(NamedTuple):
    """What an image file's header says: its size once upright, and the EXIF orientation that turns it so."""

    height: int
    width: int
    orientation: int = 1

    def turned(self):
        """How the frame is turned upright, in words ('' when it is stored upright)."""
        if self.orientation == 1:
            return ''
        return f'EXIF orientation {self.orientation} ({UPRIGHT[self.orientation][0]})'


def list_frame_files(folder):
    """The image files of a folder (``IMAGE_EXTENSIONS``), in natural order (frame 2 before frame 10)."""
    return natural_sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))


def to_8_bits(image):
    """A uint16 image rounded to uint8 (65535 -> 255); a uint8 one as it is."""
    return image if image.dtype == np.uint8 else np.rint(image / 257.0).astype(np.uint8)


def to_integer_image(image, dtype=np.uint8):
    """A [0, 1] float image as ``dtype`` (uint8, or uint16 for 16-bit frames), rounded and clipped: how frames are
    stored and written."""
    top = np.iinfo(dtype).max
    return np.clip(np.rint(image * top), 0, top).astype(dtype)


def decode_frame(data, name):
    """Decode encoded image bytes (PNG, JPEG, ...) to an (H, W, 3) float32 RGB array in [0, 1].

    Args:
        data (bytes): The encoded file content.
        name (str): Where the bytes come from (path or LMDB key), for error messages.
    """
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if image is None:
        raise FrameError(f'Frame {name} is unreadable or corrupt (not a decodable image).')
    try:
        with Image.open(io.BytesIO(data)) as header:
            if header.format not in UPRIGHT_WHEN_DECODED:
                image = UPRIGHT[exif_orientation(header)][1](image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        pass  # a header Pillow cannot parse (where OpenCV could) has no orientation it could read
    return to_float_rgb(image, name, channel_order='bgr')


def read_frame(path):
    """Read an image file to an (H, W, 3) float32 RGB array in [0, 1]."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as err:
        raise FrameError(f'Frame {path} cannot be read: {err.strerror}.') from err
    return decode_frame(data, path)


def to_float_rgb(image, name, channel_order='bgr'):
    """Convert a decoded uint8/uint16 image (H, W[, C]) to float32 RGB in [0, 1] (see module doc)."""
    if image.dtype == np.uint8:
        scale = 255.0
    elif image.dtype == np.uint16:
        scale = 65535.0
    else:
        raise FrameError(f'Frame {name} has pixel type {image.dtype}; only 8- and 16-bit images are supported.')
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[2]
    if channels == 4:
        if image[..., 3].min() != np.iinfo(image.dtype).max:
            raise FrameError(f'Frame {name} has a transparent alpha channel; refusing to guess a background.')
        image, channels = image[..., :3], 3
    if channels == 1:
        image = np.repeat(image, 3, axis=2)
    elif channels != 3:
        raise FrameError(f'Frame {name} has {channels} channels; expected 1 (gray), 3 (colour) or 4 (opaque alpha).')
    if channel_order == 'bgr':
        image = image[..., ::-1]
    return np.ascontiguousarray(image, dtype=np.float32) / np.float32(scale)


def frame_bits(path):
    """Bits per channel of an image file (8 or 16); the file is decoded (its header alone does not say for every
    format)."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FrameError(f'Frame {path} is unreadable or corrupt.')
    return 16 if image.dtype == np.uint16 else 8


def exif_orientation(image):
    """The EXIF orientation (1 to 8) of an image Pillow has opened, read without decoding its pixels; 1 when it
    has none (or an invalid one). A PNG's counts only in an eXIf chunk before its pixels: one after them would
    take decoding the whole image to find, and viewers do not apply it."""
    if image.format == 'PNG' and 'exif' not in image.info:
        return 1
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    return orientation if orientation in UPRIGHT else 1


def frame_header(path):
    """Read only an image file's header: its ``FrameHeader`` (size once upright, EXIF orientation). Cheap enough
    for every frame at start.

    Raises ``FrameError`` for a missing file, an unrecognised or corrupt header, or a mode that
    ``to_float_rgb`` would refuse (float or multi-layer images).
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = image.mode
            orientation = exif_orientation(image)
            if orientation >= 5 and image.format not in UPRIGHT_WHEN_DECODED:  # turned a quarter: sides swap
                width, height = height, width
    except FileNotFoundError as err:
        raise FrameError(f'Frame {path} does not exist.') from err
    except Exception as err:  # PIL raises several types for broken headers
        raise FrameError(f'Frame {path} is unreadable or corrupt: {err}') from err
    if mode in ('F', 'CMYK', 'YCbCr', 'LAB', 'HSV'):
        raise FrameError(f'Frame {path} is in image mode {mode!r}; expected 8- or 16-bit gray or colour.')
    return FrameHeader(height, width, orientation)


def size_mismatch(path, header, first_path, first_header):
    """Why frame ``path`` (its ``FrameHeader``) is refused in a sequence that started with ``first_path``: its size
    differs, because their EXIF orientations turn them differently where that is the reason."""
    shown = [f'{h.height}x{h.width}' + (f' once turned upright by its {h.turned()}' if h.turned() else '')
             for h in (header, first_header)]
    why = ''
    if header.orientation != first_header.orientation:
        why = (' Their EXIF orientations differ: frames of one sequence must be turned alike (re-save them upright, '
               'or move the odd ones out).')
    return f'Frame {path} is {shown[0]}, but the sequence started at {shown[1]} ({first_path}).{why}'


def write_png(path, image):
    """Write an (H, W, 3) uint8 BGR image as PNG (the bytes ``cv2.imwrite`` writes), checking that every byte
    reached the disk: ``cv2.imwrite`` reports a full disk only by returning False; here it is an ``OSError``."""
    ok, encoded = cv2.imencode('.png', image)
    if not ok:
        raise FrameError(f'{path}: the frame could not be encoded as PNG ({image.shape}, {image.dtype}).')
    write_bytes(path, encoded.tobytes())

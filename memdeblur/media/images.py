"""Image files of frames: listing a folder's, reading one into a float32 RGB array, probing its size and depth, and
writing a PNG; what the datasets and the video tool read and write frames with.

Every backend (image folders, BasicSR LMDB, the ESTRNN LMDB) decodes frames here, so a frame decodes
the same whatever its container. Formats are handled explicitly, never by accident:

* 8-bit and 16-bit images are scaled to [0, 1] by their own maximum (255 or 65535);
* grayscale frames are converted to RGB by repeating the channel;
* an alpha channel is dropped when it is fully opaque and refused otherwise (compositing onto
  an arbitrary background would invent data);
* anything else (float images, other channel counts, undecodable bytes) is refused.

Errors are ``FrameError`` and name the frame.
"""
import os

import cv2
import numpy as np
from PIL import Image

from memdeblur.media.frame_names import natural_sorted
from memdeblur.utils.errors import FrameError
from memdeblur.utils.outputs import write_bytes

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


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


def probe_frame(path):
    """Read only an image file's header: its (height, width). Cheap enough for every frame at start.

    Raises ``FrameError`` for a missing file, an unrecognised or corrupt header, or a mode that
    ``to_float_rgb`` would refuse (float or multi-layer images).
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = image.mode
    except FileNotFoundError as err:
        raise FrameError(f'Frame {path} does not exist.') from err
    except Exception as err:  # PIL raises several types for broken headers
        raise FrameError(f'Frame {path} is unreadable or corrupt: {err}') from err
    if mode in ('F', 'CMYK', 'YCbCr', 'LAB', 'HSV'):
        raise FrameError(f'Frame {path} is in image mode {mode!r}; expected 8- or 16-bit gray or colour.')
    return height, width


def write_png(path, image):
    """Write an (H, W, 3) uint8 BGR image as PNG (the bytes ``cv2.imwrite`` writes), checking that every byte
    reached the disk: ``cv2.imwrite`` reports a full disk only by returning False; here it is an ``OSError``."""
    ok, encoded = cv2.imencode('.png', image)
    if not ok:
        raise FrameError(f'{path}: the frame could not be encoded as PNG ({image.shape}, {image.dtype}).')
    write_bytes(path, encoded.tobytes())

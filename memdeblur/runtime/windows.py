"""Restoring a stream of frames in bounded memory: overlapping windows in time, overlapping tiles in space.

A recurrent network run on a whole sequence keeps state for every frame, so memory grows with the
video's length. ``restore_stream`` feeds the network
windows of ``window`` frames that share ``overlap`` frames with the next; each shared frame is
taken from the window where it has more context (the first half of the overlap from the earlier
window, the rest from the later), so every frame is output exactly once and only ``window``
frames are ever held. ``restore_tiled`` cuts large frames into overlapping tiles and averages
the overlaps, bounding memory in space as well.
"""
import collections

import torch

from memdeblur.runtime.frames import to_float_frames, to_integer_frames
from memdeblur.utils.frame_windows import kept_by_earlier
from memdeblur.utils.padding import reflect_indices


def restore_stream(restore, frames, window=30, overlap=6, full_windows=False):
    """Yield restored frames one by one, in order.

    Args:
        restore (callable): (T, 3, H, W) window -> (T, 3, H, W), the restored window.
        frames (iterable[Tensor]): (3, H, W) frames.
        window (int): Frames per window.
        overlap (int): Frames shared by consecutive windows (0 <= overlap < window).
        full_windows (bool): Every window has ``window`` frames (models exported for a fixed number of frames):
            the frames after the last full window are restored with the ``window`` frames that end the stream,
            more context than the short window restored otherwise. Streams shorter than a window still give one
            short window.
    """
    if not 0 <= overlap < window:
        raise ValueError(f'overlap must be in [0, window), got overlap={overlap}, window={window}.')
    keep_tail = overlap - kept_by_earlier(overlap)  # shared frames taken from the later window
    buffer, skip, pending = [], 0, []
    recent = collections.deque(maxlen=window if full_windows else 0)  # the last ``window`` frames, for the tail
    for frame in frames:
        if pending and len(buffer) == overlap:  # a new frame: the next window will output the pending ones
            pending = []
        buffer.append(frame)
        recent.append(frame)
        if len(buffer) == window:
            restored = restore(torch.stack(buffer))
            yield from restored[skip:window - keep_tail]
            pending = list(restored[window - keep_tail:])
            buffer, skip = buffer[window - overlap:], kept_by_earlier(overlap)
    if pending and len(buffer) == overlap:  # the stream ended right after a window
        yield from pending
    elif buffer and len(recent) == window > len(buffer):
        yield from restore(torch.stack(list(recent)))[window - len(buffer) + skip:]
    elif buffer:
        yield from restore(torch.stack(buffer))[skip:]


def tile_starts(size, tile, overlap):
    """Start offsets of tiles of ``tile`` pixels covering ``size`` with at least ``overlap`` shared."""
    if tile >= size:
        return [0]
    step = tile - overlap
    return list(range(0, size - tile, step)) + [size - tile]


def splits_into_tiles(tile, height, width):
    """Whether tiles of ``tile`` pixels (0: none) split a ``height`` x ``width`` frame."""
    return bool(tile) and (tile < height or tile < width)


def restore_tiled(restore, clip, tile, overlap):
    """Restore (T, 3, H, W) ``clip`` tile by tile; overlapping outputs are averaged.

    Args:
        restore (callable): (T, 3, h, w) -> (T, 3, h, w).
        clip (Tensor): (T, 3, H, W).
        tile (int): Tile side in pixels (0: no tiling).
        overlap (int): Pixels shared by neighbouring tiles.
    """
    height, width = clip.shape[-2:]
    if not splits_into_tiles(tile, height, width):
        return restore(clip)
    if not 0 <= overlap < tile:
        raise ValueError(f'tile overlap must be in [0, tile), got overlap={overlap}, tile={tile}.')
    total = torch.zeros_like(clip)
    count = torch.zeros((1, 1, height, width), dtype=clip.dtype, device=clip.device)
    th, tw = min(tile, height), min(tile, width)
    for top in tile_starts(height, th, overlap):
        for left in tile_starts(width, tw, overlap):
            part = restore(clip[..., top:top + th, left:left + tw])
            total[..., top:top + th, left:left + tw] += part
            count[..., top:top + th, left:left + tw] += 1
    return total / count


def clip_window_restorer(restore_clip, margins, tile, tile_overlap, restore_whole=None):
    """A function restoring a window (T, 3, H, W; uint8, uint16 or float in [0, 1]) to the same type, tile by tile,
    with any clip model's ``restore_clip`` (``memdeblur.runtime.backends``).

    Args:
        restore_clip (callable): (T + margins, 3, h, w) float [0, 1] -> (T, 3, h, w) float [0, 1].
        margins (tuple[int, int]): Past and future frames ``restore_clip`` takes beyond those it restores; they are
            added by reflection so every frame is restored.
        tile (int): Tile side in pixels, 0 for whole frames.
        tile_overlap (int): Pixels shared by neighbouring tiles.
        restore_whole (callable | None): Integer window -> the same restored, for whole frames (used instead of
            ``restore_clip`` when no tile splits the frame).
    """
    before, after = margins

    def restore_part(clip):
        if before or after:
            clip = clip[reflect_indices(clip.shape[0], before, after)]
        return restore_clip(clip)

    def restore(window):
        if window.is_floating_point():
            return restore_tiled(restore_part, window.float(), tile, tile_overlap)
        if restore_whole is not None and not splits_into_tiles(tile, *window.shape[-2:]):
            return restore_whole(window)
        return to_integer_frames(restore_tiled(restore_part, to_float_frames(window), tile, tile_overlap), window.dtype)

    return restore

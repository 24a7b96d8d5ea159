"""Overlapping windows in time: which frames each window restores and which of them it keeps.

Consecutive windows share frames; each shared frame is kept from the window where it has more context: the
earlier window keeps the first half of the shared frames (``kept_by_earlier``), the later one the rest. The test
harness plans its windows over whole sequences (``split_into_windows``), the video tool over a stream of unknown
length (``memdeblur.runtime.windows.restore_stream``); both split the shared frames by this one rule.
"""


def kept_by_earlier(shared):
    """How many of ``shared`` frames common to two consecutive windows the earlier window's output gives."""
    return shared // 2


def split_into_windows(num_frames, window, overlap):
    """Windows covering ``range(num_frames)``, each with the part of it whose outputs are kept.

    Consecutive windows share ``overlap`` frames; the shared frames are split between them so that
    every frame is kept exactly once, from the window where it has the most context. The last
    window ends at the last frame.

    Returns:
        list[tuple[int, int, int, int]]: ``(start, stop, keep_start, keep_stop)``, the keep range
        relative to the window.
    """
    if window <= 0 or window >= num_frames:
        return [(0, num_frames, 0, num_frames)]
    if not 0 <= overlap < window:
        raise ValueError(f'overlap must be in [0, num_frame), got overlap={overlap}, num_frame={window}.')
    starts = list(range(0, num_frames - window, window - overlap)) + [num_frames - window]
    windows = []
    for i, start in enumerate(starts):
        keep_from = 0 if i == 0 else start + kept_by_earlier(starts[i - 1] + window - start)
        if i == len(starts) - 1:
            keep_to = num_frames
        else:
            keep_to = starts[i + 1] + kept_by_earlier(start + window - starts[i + 1])
        windows.append((start, start + window, keep_from - start, keep_to - start))
    return windows

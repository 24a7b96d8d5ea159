"""Ordering frame and sequence names as people number them, and finding holes in the numbering.

Plain string sorting puts ``10.png`` before ``2.png``; a clip built in that order joins frames
that are not consecutive and every metric of it is silently wrong. Every layout orders names
with ``natural_key`` (numbers compared as numbers).
"""
import re
from collections import Counter

_DIGITS = re.compile(r'(\d+)')
_NUMBERED = re.compile(r'(.*?)(\d+)(\D*)')


def natural_key(name):
    """Sort key comparing the digit runs of ``name`` as numbers: ``2 < 10``, ``frame2 < frame10``.

    Names that tie numerically (``01`` and ``1``) fall back to plain string order.
    """
    parts = _DIGITS.split(name)
    return [int(part) if i % 2 else part for i, part in enumerate(parts)], name


def natural_sorted(names):
    """``names`` in natural order (see ``natural_key``)."""
    return sorted(names, key=natural_key)


def numbering_gaps(names):
    """Holes in a numbered sequence of frame names, as (number before, number after) pairs.

    Names must share one prefix and suffix around their last number (``000001``, ``frame_0002``);
    otherwise nothing is reported. The usual step is the most common difference between
    consecutive numbers, so sequences numbered every second frame are not flagged.

    Args:
        names (list[str]): Frame names (without extension) in natural order.
    """
    matches = [_NUMBERED.fullmatch(name) for name in names]
    if len(names) < 3 or not all(matches) or len({(m[1], m[3]) for m in matches}) != 1:
        return []
    numbers = [int(m[2]) for m in matches]
    steps = [b - a for a, b in zip(numbers, numbers[1:])]
    step = Counter(s for s in steps if s > 0).most_common(1)
    if not step:
        return []
    return [(a, b) for a, b in zip(numbers, numbers[1:]) if b - a > step[0][0]]

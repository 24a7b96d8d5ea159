"""Naming what is wrong in a message: lists cut to a readable length, and the entries holding NaN or Inf values."""
import torch


def listed(items, limit=8):
    """``'a, b, c'``, or the first ``limit`` items and ``', ... (N more)'``."""
    items = [str(item) for item in items]
    more = f', ... ({len(items) - limit} more)' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


def non_finite_entries(tensor, names):
    """The names of the entries along the first dimension of ``tensor`` that hold a NaN or Inf value.

    Args:
        tensor (Tensor): (N, ...).
        names (Sequence[str]): N names, e.g. frame names.
    """
    finite = torch.isfinite(tensor.detach()).flatten(1).all(dim=1)
    return [names[i] for i in (~finite).nonzero().flatten().tolist()]

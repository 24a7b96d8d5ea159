"""The key/value memory bank of MemDeblur and its spatio-temporal attention read-out.

A bank holds keys (B, Ck, N) and one or more value tensors (B, Cv, N), where N counts the
spatial positions of every stored entry. Entries of different spatial sizes (the forward
bank is shared by all scales) simply contribute different numbers of positions.
"""
import math

import torch

from memdeblur.utils.precision import at_least_float32

SPARSE_MIN_POSITIONS = 1024  # query positions from which a gathered top-k read-out beats the dense one
SPARSE_CHUNK_ELEMENTS = 2**22  # bound on the intermediates of one chunk of a sparse read-out (16 MB in float32)


def memory_affinity(keys, query):
    """Similarity of every memory position to every query position.

    ``S[n, m] = (2 k_n . q_m - |k_n|^2) / sqrt(Ck)``: the negative squared L2 distance with
    the query's own norm dropped (it is constant over n, so the softmax ignores it).

    Args:
        keys (Tensor): (B, Ck, N).
        query (Tensor): (B, Ck, M).

    Returns:
        Tensor: (B, N, M) logits.
    """
    key_sq = keys.pow(2).sum(1).unsqueeze(2)
    key_dot_query = keys.transpose(1, 2) @ query
    return (2 * key_dot_query - key_sq) / math.sqrt(keys.shape[1])


def softmax_over_memory(logits, top_k=None):
    """Normalise logits over the memory axis (dim 1).

    Args:
        logits (Tensor): (B, N, M).
        top_k (int | None): Keep only the ``top_k`` largest logits per query position and zero
            the rest (the released model's test-time rule); None = softmax over all N.

    Returns:
        Tensor: (B, N, M) weights, summing to 1 over N.
    """
    if top_k is None or top_k >= logits.shape[1]:
        shifted = torch.exp(logits - logits.max(dim=1, keepdim=True)[0])
        return shifted / shifted.sum(dim=1, keepdim=True)
    top_values, top_indices = torch.topk(logits, k=top_k, dim=1)
    top_weights = torch.exp(top_values - top_values[:, :1])
    top_weights = top_weights / top_weights.sum(dim=1, keepdim=True)
    return torch.zeros_like(logits).scatter_(1, top_indices, top_weights)


def sparse_top_k_readout(keys, query, values, top_k, max_elements=SPARSE_CHUNK_ELEMENTS):
    """Top-k read-out by gathering: each query position sums its ``top_k`` values, softmax-weighted.

    A query position's read-out depends on its own column of logits only, so the query positions
    are taken in chunks small enough that no intermediate (logits, gathered values) holds more
    than about ``max_elements`` numbers: at 720x1280 the whole (18000, 3600) logit matrix and its
    temporaries would outweigh all of a frame's other tensors.

    Args:
        keys (Tensor): (B, Ck, N).
        query (Tensor): (B, Ck, M).
        values (list[Tensor]): Each (B, C, N).
        top_k (int): Positions kept per query position.
        max_elements (int): Bound on the elements of one chunk's intermediates.

    Returns:
        list[Tensor]: Each (B, C, M); equal to the dense read-out with ``softmax_over_memory(logits, top_k)``.
    """
    b, m = query.shape[0], query.shape[2]
    widest = max([keys.shape[2]] + [v.shape[1] * top_k for v in values])
    chunk = max(1, max_elements // (b * widest))
    readouts = [v.new_empty(b, v.shape[1], m) for v in values]
    for start in range(0, m, chunk):
        logits = memory_affinity(keys, query[:, :, start:start + chunk])
        top_values, top_indices = torch.topk(logits, k=top_k, dim=1)  # (B, k, m)
        del logits
        weights = torch.exp(top_values - top_values[:, :1])
        weights = (weights / weights.sum(dim=1, keepdim=True)).unsqueeze(1)
        k, width = top_indices.shape[1:]
        for v, readout in zip(values, readouts):
            index = top_indices.reshape(b, 1, k * width).expand(b, v.shape[1], k * width)
            gathered = v.gather(2, index).view(b, v.shape[1], k, width)
            readout[:, :, start:start + width] = (gathered * weights.to(gathered.dtype)).sum(dim=2)
    return readouts


class MemoryBank:
    """Growing key/value store read by attention, with an optional one-entry temporary slot.

    The temporary slot is the "Temp." design of the paper's Table 5 (the released bank class has
    it, the released forward never uses it): an entry added with ``temporary=True`` replaces the
    slot instead of being appended and trims nothing, except that the very first addition to an
    empty bank goes into the bank whatever its mark; every addition of either kind first empties
    the slot; a read attends over the bank's positions followed by the slot's.

    Args:
        max_length (int | None): After each (non-temporary) addition keep only the last
            ``max_length x (positions of the key just added)`` positions. Because entries from
            different scales differ in size, this counts positions of the current entry, not
            entries. None keeps everything.
        top_k (int | None): Read-out with top-k softmax (see ``softmax_over_memory``).
        sparse (bool): With ``top_k``, gather the ``top_k`` selected values per query position
            instead of multiplying all values by a mostly-zero weight matrix: the same sum in
            another order (float rounding apart). Used for query maps of at least
            ``SPARSE_MIN_POSITIONS`` positions, where it pays (large maps; on small ones the dense
            read-out is as fast or faster, ``docs/benchmarks.md``). Default: False (the released
            computation).
        float32_affinity (bool): Compute the logits and their softmax in float32 even under autocast (the
            training banks: mixed-precision training keeps the attention out of bfloat16/float16, whose
            rounding of large squared distances would move the softmax weights). A no-op for float32
            inputs outside autocast. Default: False.
    """

    def __init__(self, max_length=None, top_k=None, sparse=False, float32_affinity=False):
        self.max_length = max_length
        self.top_k = top_k
        self.sparse = sparse
        self.float32_affinity = float32_affinity
        self.keys = None
        self.values = None
        self.temporary = None  # (key, values) of the temporary slot, flattened

    def __len__(self):
        """Number of stored positions (the temporary slot's included)."""
        stored = 0 if self.keys is None else self.keys.shape[2]
        return stored + (0 if self.temporary is None else self.temporary[0].shape[2])

    def add(self, key, values, temporary=False):
        """Append one entry, or put it in the temporary slot.

        Args:
            key (Tensor): (B, Ck, h, w).
            values (list[Tensor]): Each (B, Cv, h, w), same h, w as the key.
            temporary (bool): Replace the temporary slot instead of appending.
        """
        key = key.flatten(2)
        values = [v.flatten(2) for v in values]
        if self.keys is not None and len(values) != len(self.values):
            raise ValueError(f'Bank holds {len(self.values)} value tensors, got {len(values)}.')
        self.temporary = None
        if temporary and self.keys is not None:
            self.temporary = (key, values)
            return
        if self.keys is None:
            self.keys, self.values = key, values
        else:
            self.keys = torch.cat([self.keys, key], dim=2)
            self.values = [torch.cat([old, new], dim=2) for old, new in zip(self.values, values)]
        if self.max_length is not None:
            keep = self.max_length * key.shape[2]
            self.keys = self.keys[:, :, -keep:]
            self.values = [v[:, :, -keep:] for v in self.values]

    def read(self, query):
        """Attend from ``query`` over every stored position (the bank's, then the temporary slot's).

        Args:
            query (Tensor): (B, Ck, h, w) query key.

        Returns:
            list[Tensor]: One (B, Cv, h, w) read-out per stored value tensor.
        """
        if self.keys is None:
            raise RuntimeError('Read from an empty memory bank.')
        keys, values = self.keys, self.values
        if self.temporary is not None:
            keys = torch.cat([keys, self.temporary[0]], dim=2)
            values = [torch.cat([v, t], dim=2) for v, t in zip(values, self.temporary[1])]
        b, _, h, w = query.shape
        query = query.flatten(2)
        if self.sparse and self.top_k is not None and self.top_k < keys.shape[2] and h * w >= SPARSE_MIN_POSITIONS:
            return [v.view(b, v.shape[1], h, w) for v in sparse_top_k_readout(keys, query, values, self.top_k)]
        if self.float32_affinity:
            with torch.autocast(query.device.type, enabled=False):
                logits = memory_affinity(at_least_float32(keys), at_least_float32(query))
        else:
            logits = memory_affinity(keys, query)
        weights = softmax_over_memory(logits, self.top_k)
        return [(v @ weights).view(b, v.shape[1], h, w) for v in values]

"""The memory bank's attention and its eval-time rules (top-k, length window)."""
import math

import pytest
import torch

from memdeblur.archs.memory_bank import MemoryBank, memory_affinity, softmax_over_memory, sparse_top_k_readout


def test_affinity_is_negative_squared_distance_up_to_the_query_norm():
    keys, query = torch.randn(2, 8, 5, dtype=torch.float64), torch.randn(2, 8, 3, dtype=torch.float64)
    distance = ((keys.unsqueeze(3) - query.unsqueeze(2))**2).sum(1)  # (B, N, M)
    query_norm = (query**2).sum(1, keepdim=True)
    expected = (query_norm - distance) / math.sqrt(8)
    assert torch.allclose(memory_affinity(keys, query), expected, atol=1e-12)


def test_top_k_softmax_keeps_the_k_largest_and_renormalises():
    logits = torch.tensor([[[0.], [3.], [1.], [2.]]], dtype=torch.float64)  # (1, N=4, M=1)
    weights = softmax_over_memory(logits, top_k=2)[0, :, 0]
    assert weights[0] == 0 and weights[2] == 0
    expected = torch.softmax(torch.tensor([3., 2.], dtype=torch.float64), 0)
    assert torch.allclose(weights[[1, 3]], expected)


def test_top_k_larger_than_memory_is_the_full_softmax():
    logits = torch.randn(2, 6, 4, dtype=torch.float64)
    assert torch.allclose(softmax_over_memory(logits, top_k=20), torch.softmax(logits, 1), atol=1e-15)
    assert torch.allclose(softmax_over_memory(logits), torch.softmax(logits, 1), atol=1e-15)


def test_window_counts_positions_of_the_entry_just_added():
    bank = MemoryBank(max_length=2)
    for step, size in enumerate([(2, 2), (2, 2), (2, 2), (1, 2)]):
        key = torch.full((1, 3, *size), float(step))
        bank.add(key, [key[:, :1] * 10])
    # after the 1x2 entry only 2 x 2 = 4 positions remain: the last 2 of step 2, then step 3's
    assert len(bank) == 4
    assert bank.keys[0, 0].tolist() == [2., 2., 3., 3.]
    assert bank.values[0][0, 0].tolist() == [20., 20., 30., 30.]


def test_read_returns_one_map_per_value_at_the_query_size():
    bank = MemoryBank()
    bank.add(torch.randn(2, 4, 3, 3), [torch.randn(2, 7, 3, 3), torch.randn(2, 5, 3, 3)])
    outs = bank.read(torch.randn(2, 4, 2, 5))
    assert [tuple(o.shape) for o in outs] == [(2, 7, 2, 5), (2, 5, 2, 5)]


def test_reading_an_identical_key_from_a_sharp_memory_returns_its_value():
    key = torch.zeros(1, 2, 1, 2, dtype=torch.float64)
    key[0, 0, 0, 0], key[0, 1, 0, 1] = 50., 50.  # two far-apart positions
    value = torch.tensor([[[[1., 2.]]]], dtype=torch.float64)
    bank = MemoryBank()
    bank.add(key, [value])
    assert torch.allclose(bank.read(key)[0], value)


def test_empty_bank_and_mismatched_values_are_errors():
    bank = MemoryBank()
    with pytest.raises(RuntimeError, match='empty'):
        bank.read(torch.randn(1, 2, 1, 1))
    bank.add(torch.randn(1, 2, 1, 1), [torch.randn(1, 3, 1, 1)])
    with pytest.raises(ValueError, match='1 value tensors, got 2'):
        bank.add(torch.randn(1, 2, 1, 1), [torch.randn(1, 3, 1, 1)] * 2)


def test_temporary_slot_replaces_itself_is_emptied_by_every_addition_and_is_read_last():
    def entry(value):
        return torch.full((1, 2, 1, 1), float(value)), [torch.full((1, 1, 1, 1), float(value))]

    bank = MemoryBank(max_length=2)
    bank.add(*entry(1), temporary=True)  # the first addition to an empty bank goes into the bank
    assert bank.keys[0, 0].tolist() == [1.] and bank.temporary is None
    bank.add(*entry(2), temporary=True)
    bank.add(*entry(3), temporary=True)  # replaces 2
    assert bank.keys[0, 0].tolist() == [1.] and bank.temporary[0][0, 0].tolist() == [3.] and len(bank) == 2
    weights_seen = bank.read(torch.full((1, 2, 1, 1), 3.))[0]
    assert weights_seen.item() > 2.9  # the slot is attended: its key is the query, its value 3
    bank.add(*entry(4))  # a normal addition empties the slot, and trims as usual
    bank.add(*entry(5))
    bank.add(*entry(6))
    assert bank.keys[0, 0].tolist() == [5., 6.] and bank.temporary is None
    bank.add(*entry(7), temporary=True)
    assert bank.keys[0, 0].tolist() == [5., 6.]  # a temporary addition trims nothing
    assert torch.cat([bank.keys, bank.temporary[0]], 2)[0, 0].tolist() == [5., 6., 7.]


def test_sparse_top_k_readout_equals_the_dense_one():
    torch.manual_seed(0)
    dense, sparse = MemoryBank(max_length=3, top_k=5), MemoryBank(max_length=3, top_k=5, sparse=True)
    for _ in range(4):
        key, values = torch.randn(2, 8, 3, 4, dtype=torch.float64), [torch.randn(2, 6, 3, 4, dtype=torch.float64),
                                                                     torch.randn(2, 7, 3, 4, dtype=torch.float64)]
        dense.add(key, values)
        sparse.add(key, values)
    query = torch.randn(2, 8, 2, 5, dtype=torch.float64)
    for max_elements in (2**22, 30, 1):  # one chunk of query positions, several, one position per chunk
        for a, b in zip(dense.read(query), sparse_top_k_readout(dense.keys, query.flatten(2), dense.values, 5,
                                                                max_elements)):
            assert a.shape == b.view(a.shape).shape and torch.allclose(a, b.view(a.shape), atol=1e-12)
    large = torch.randn(2, 8, 32, 32, dtype=torch.float64)  # 1024 query positions: the sparse path
    for a, b in zip(dense.read(large), sparse.read(large)):
        assert torch.allclose(a, b, atol=1e-12)

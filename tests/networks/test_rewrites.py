"""Rewrites of a network for speed: each changes no value."""
import copy

import torch

from memdeblur.archs.estrnn_arch import ESTRNNNet
from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.networks.rewrites import store_autocast_weights, streamline_residual_blocks
from tests.conftest import TINY_MEMDEBLUR


def test_rewrites_change_no_value():
    """In-place residual blocks (float32 and under autocast) and weights stored in the autocast precision give
    the very values of the network as it is, for MemDeblur and for ESTRNN (whose attention has linear layers)."""
    torch.manual_seed(0)
    memdeblur = MemDeblurNet(**TINY_MEMDEBLUR).eval()
    estrnn = ESTRNNNet(n_features=8, n_blocks=2).eval()
    clip = torch.rand(1, 6, 3, 32, 32)
    streamlined = copy.deepcopy(memdeblur)
    assert streamline_residual_blocks(streamlined) == 2 + 1 + 5 * 2  # forward, backward, 3 encoders + 2 decoders
    with torch.inference_mode():
        assert torch.equal(streamlined(clip), memdeblur(clip))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            for net in (memdeblur, estrnn):
                stored = copy.deepcopy(net)
                store_autocast_weights(stored, torch.bfloat16)
                assert torch.bfloat16 in {p.dtype for p in stored.parameters()}
                assert torch.equal(stored(clip), net(clip))
            assert torch.equal(streamlined(clip), memdeblur(clip))

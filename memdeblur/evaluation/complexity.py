"""Parameter and multiply-accumulate counts, in the paper's convention and exactly.

Two counts, from one forward pass:

* the authors' convention: GMACs per frame at 720x1280 over 100 frames from ``thop``'s module
  hooks: every convolution, normalisation and activation module counts; functional operations
  such as the memory attention's matrix products do not (their released ``cost_profile`` does
  exactly this);
* an exact count from ``torch.utils.flop_counter``, which sees every matrix product and
  convolution at the ATen level, including the attention's ``bmm`` (reported separately) but
  not element-wise work (normalisation, activations, resizing).

Running the network on the ``meta`` device makes both cheap: no memory is allocated and no
arithmetic done, only shapes propagate; the time goes to PyTorch's shape functions, per operation
whatever the frame size, so it grows with the number of frames only.
"""
import contextlib
import copy
from dataclasses import dataclass
from typing import Optional

import torch
from thop import profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from memdeblur.networks.traits import bare_network, network_traits

ATTENTION_OPS = ('bmm', )  # the memory read-out: (keys x query) affinity and (values x weights) products


@dataclass
class Complexity:
    """Counts per frame for one input size and sequence length."""

    parameters: int
    thop_gmacs: float  # authors' convention: module hooks, attention matrix products not counted
    exact_gmacs: Optional[float]  # every convolution and matrix product, attention included (None: not counted)
    attention_gmacs: Optional[float]  # the attention's share of exact_gmacs

    @property
    def attention_share(self):
        return self.attention_gmacs / self.exact_gmacs if self.exact_gmacs else 0.0


class MetaScalars(TorchDispatchMode):
    """Lets networks with data-dependent Python branches run on the meta device.

    Meta tensors hold no values, so ``tensor.item()`` (and ``if tensor > x``) fails there. Under
    this mode every such scalar reads as 0, every such condition as false: EDVR's "offset mean
    above 50" warning stays silent and BasicVSR++'s "is the clip mirror-extended" test says no, so
    the ordinary paths are counted.
    """

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default and args[0].device.type == 'meta':
            return 0
        return func(*args, **(kwargs or {}))


def count_parameters(net):
    """Number of parameters of a network (a DDP/DataParallel wrapper is unwrapped)."""
    return sum(p.numel() for p in bare_network(net).parameters())


def measure_complexity(net, height=720, width=1280, num_frames=100, num_outputs=None, exact=True):
    """Both counts per frame of a video network on a (1, T, 3, H, W) input, on the meta device.

    The per-frame cost of a recurrent network with periodic memorisation depends a little on T
    (MemDeblur: 342.9 GMACs at T=1, 325.0 at T=8, 324.8 at T=100); 100 is about a GOPRO test sequence.

    Args:
        net (nn.Module): The network; it is copied to the meta device, not changed.
        height, width, num_frames (int): Input size.
        num_outputs (int | None): Frames one pass restores, to divide by; None = ``num_frames``
            (whole-clip networks; ESTRNN too, as its authors count). A sliding-window network
            (EDVR) restores 1 frame from ``num_frames`` = its window.
        exact (bool): Also make the exact count; without it (``exact_gmacs`` and ``attention_gmacs``
            None) the pass is quicker: no second layer of dispatch sees every operation.
    """
    meta_net = copy.deepcopy(bare_network(net)).to('meta').eval()
    frames = torch.zeros(1, num_frames, 3, height, width, device='meta')
    counter = FlopCounterMode(display=False) if exact else contextlib.nullcontext()
    with counter, MetaScalars():
        macs, _ = profile(meta_net, inputs=(frames, ), verbose=False)
    per_frame = 1e9 * (num_outputs or num_frames)
    cost = Complexity(parameters=count_parameters(net), thop_gmacs=macs / per_frame, exact_gmacs=None,
                      attention_gmacs=None)
    if exact:
        flops = counter.get_flop_counts()['Global']
        attention = sum(v for op, v in flops.items() if str(op).split('.')[-1] in ATTENTION_OPS)
        cost.exact_gmacs, cost.attention_gmacs = sum(flops.values()) / 2 / per_frame, attention / 2 / per_frame
    return cost


def network_complexity(net, height=720, width=1280, num_frames=100, exact=True):
    """``measure_complexity`` per restored frame, as the network restores: a sliding-window network (EDVR) on one
    window, restoring its centre; a network with frame margins (ESTRNN) on at least one frame more than them.
    ``height`` and ``width`` are those the network runs at (padded: ``SpatialPadding.target``)."""
    traits = network_traits(net)
    if traits.restores_windows:
        return measure_complexity(net, height, width, traits.window, num_outputs=1, exact=exact)
    return measure_complexity(net, height, width, max(num_frames, sum(traits.frame_margins) + 1), exact=exact)

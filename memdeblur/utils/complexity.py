"""Parameter and multiply-accumulate counts, in the convention the MemDeblur paper reports.

The authors count GMACs per frame at 720x1280 with a module-hook counter (``thop``): every
convolution, normalisation and activation module counts; functional operations such as the
memory attention's matrix products do not. Running the network on the ``meta`` device makes
the count free: no memory is allocated and no arithmetic done, only shapes propagate.
"""
import copy

import torch
from thop import profile


def count_parameters(net):
    """Number of parameters of a network (a DDP/DataParallel wrapper is unwrapped)."""
    return sum(p.numel() for p in getattr(net, 'module', net).parameters())


def gmacs_per_frame(net, height=720, width=1280, num_frames=100):
    """GMACs per frame of a video network on a (1, T, 3, H, W) input, thop's module-hook count.

    The per-frame cost of a recurrent network with periodic memorisation depends a little on T
    (343 GMACs at T=1, 325 at T=8, 324.8 at T=100 for MemDeblur); 100 is about a GOPRO test sequence.

    Args:
        net (nn.Module): The network; it is copied to the meta device, not changed.
        height, width, num_frames (int): Input size.
    """
    meta_net = copy.deepcopy(getattr(net, 'module', net)).to('meta').eval()
    macs, _ = profile(meta_net, inputs=(torch.zeros(1, num_frames, 3, height, width, device='meta'), ),
                      verbose=False)
    return macs / 1e9 / num_frames

"""What the rest of the project needs to know about a network, declared by the network.

Models, tools, the checkpoint loader and the video code never ask which network they hold; they ask
``network_traits(net)``:

* ``frame_margins``: frames at the start and end of its input the network gives no output for
  (ESTRNN's past and future frames); sequences are extended by reflection so every frame is restored;
* ``window``: frames per window for a network that restores the centre frame of a window (EDVR);
  None for whole-clip networks, (B, T, 3, H, W) in and out;
* ``size_multiple``, ``min_size``: the frame sizes it can take; other frames are padded (``padding()``);
* ``official_keys``: how the authors' checkpoint keys map to ours (``KeyRules``), None when there is no
  original-format checkpoint;
* ``whole_sequence_passes``: how many per-frame results its ``restore_frames`` writes per frame, 0 when it has
  none: a sequence restored frame by frame with per-frame state kept where the caller says
  (``memdeblur.networks.frame_storage``; the video tool's ``--exact`` and its memory-saving windows);
* ``traced_size_multiple``, ``traced_min_side``: the frame sizes at which a graph traced at one size
  (``torch.onnx.export``, ``memdeblur.export.onnx_export``) computes what the network computes at another:
  a trace keeps every value the network derives from the size in Python (padding amounts, branches taken) as
  the constant it had at the traced size.

A network of this project declares them with a ``traits()`` method beside its code. Networks of other
packages (BasicSR's EDVR and BasicVSR++) are declared at the end of this module with ``declare_traits``;
a network declared nowhere is a whole-clip network of any size.
"""
from dataclasses import dataclass, field
from typing import Optional

from basicsr.archs.basicvsrpp_arch import BasicVSRPlusPlus
from basicsr.archs.edvr_arch import EDVR

from memdeblur.utils.padding import SpatialPadding


@dataclass(frozen=True)
class KeyRules:
    """How an architecture's official checkpoint keys map to ours.

    Attributes:
        renames (list[tuple[str, str]]): ``(pattern, replacement)`` pairs for ``re.sub``, applied
            in order to each key after the prefix is stripped; the first matching rule wins.
        dropped (list[str]): Patterns of official keys that our network does not have because
            the released model never uses them.
    """

    renames: list = field(default_factory=list)
    dropped: list = field(default_factory=list)


@dataclass(frozen=True)
class NetworkTraits:
    """What one network instance needs from the code around it (see the module docstring)."""

    frame_margins: tuple = (0, 0)
    window: Optional[int] = None
    size_multiple: int = 1
    min_size: int = 0
    official_keys: Optional[KeyRules] = None
    whole_sequence_passes: int = 0
    # Sides at which a traced graph of the network holds for every such side: no padding amount, no size-dependent
    # constant baked in (None: ``size_multiple``).
    traced_size_multiple: Optional[int] = None
    # The smallest side from which a graph traced at sides >= it holds at every larger side (a multiple of
    # ``traced_size_multiple``): below it the trace takes branches that larger frames do not.
    traced_min_side: int = 0

    def __post_init__(self):
        if self.traced_size_multiple is None:
            object.__setattr__(self, 'traced_size_multiple', self.size_multiple)

    @property
    def restores_windows(self):
        """Whether the network restores the centre frame of ``window`` frames (else whole clips)."""
        return self.window is not None

    def padding(self):
        """The ``SpatialPadding`` giving frames the sizes the network takes (outputs cropped back)."""
        return SpatialPadding(self.size_multiple, self.min_size)


_DECLARED = {}  # network class of another package -> function(net) -> NetworkTraits


def declare_traits(network_class, describe):
    """Declare the traits of a network class this project does not define: ``describe(net)`` gives them."""
    _DECLARED[network_class] = describe


def bare_network(net):
    """The network inside a DDP / DataParallel wrapper or a ``torch.compile`` wrapper."""
    net = getattr(net, 'module', net)
    return getattr(net, '_orig_mod', net)


def network_traits(net):
    """The ``NetworkTraits`` of a network (wrappers unwrapped): its own ``traits()``, a declaration of its class,
    or the defaults of a whole-clip network."""
    net = bare_network(net)
    if callable(getattr(net, 'traits', None)):
        return net.traits()
    for network_class in type(net).__mro__:
        if network_class in _DECLARED:
            return _DECLARED[network_class](net)
    return NetworkTraits()


def _edvr_traits(net):
    """EDVR restores the centre of ``num_frame`` frames; its pyramid halves the size twice, after a 4x
    reduction with ``hr_in``."""
    fusion = getattr(net.fusion, 'feat_fusion', net.fusion)  # with and without TSA: num_frame * C -> C channels
    return NetworkTraits(window=fusion.in_channels // fusion.out_channels, size_multiple=16 if net.hr_in else 4)


def _basicvsrpp_traits(net):
    """BasicVSR++ on full-resolution frames computes features at 1/4 and its flow at 1/4 of the frame, which
    SpyNet needs at least 64x64."""
    if net.is_low_res_input:
        return NetworkTraits(min_size=64)
    return NetworkTraits(size_multiple=4, min_size=256)


declare_traits(EDVR, _edvr_traits)
declare_traits(BasicVSRPlusPlus, _basicvsrpp_traits)

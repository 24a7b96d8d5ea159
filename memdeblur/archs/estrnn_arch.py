"""ESTRNNNet: the Efficient Spatio-Temporal Recurrent Neural Network for video deblurring (Zhong et al.,
ECCV 2020 / IJCV 2022), the main baseline of the MemDeblur paper (Table 1).

A recurrent cell (residual dense blocks) encodes every frame at 1/4 size with a hidden state
carried forward; a global spatio-temporal attention module fuses the features of ``past``
frames, the centre frame and ``future`` frames, and a reconstructor decodes the fused features
to the centre frame. T frames in, T - past - future frames out. The computation follows the
released model (``../shared/docs/official-estrnn.md``; ``tests/archs/test_estrnn_arch.py`` against
the authors' float64 vectors), so its checkpoints load through ``memdeblur.networks.checkpoint``.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from memdeblur.archs.blocks import RDB, RDBDown, conv
from memdeblur.archs.input_checks import check_input_frames
from memdeblur.networks.traits import KeyRules, NetworkTraits
from memdeblur.utils.padding import SpatialPadding
from memdeblur.utils.option_check import at_least, checked_options, one_of

ACTIVATIONS = {'relu': nn.ReLU, 'leakyrelu': lambda: nn.LeakyReLU(0.1), 'gelu': nn.GELU}
SIZE_MULTIPLE = 4  # the encoder halves the size twice and the reconstructor doubles it twice
PAD = SpatialPadding(SIZE_MULTIPLE)  # frames are padded inside, the outputs cropped back


class DenseTrunk(nn.Module):
    """n residual dense blocks in sequence; their outputs concatenated, fused by a 1x1 and a 3x3 conv.

    Args:
        channels (int): Input and output channels.
        growth (int): Growth of the dense layers.
        num_blocks (int): Number of RDBs.
        activation (callable): Makes the dense layers' activation module.
    """

    def __init__(self, channels, growth, num_blocks, activation):
        super().__init__()
        self.rdbs = nn.ModuleList([RDB(channels, growth, 3, activation()) for _ in range(num_blocks)])
        self.conv1x1 = conv(num_blocks * channels, channels, 1)
        self.conv3x3 = conv(channels, channels, 3)

    def forward(self, x):
        outputs = []
        for rdb in self.rdbs:
            x = rdb(x)
            outputs.append(x)
        return self.conv3x3(self.conv1x1(torch.cat(outputs, dim=1)))


class RecurrentCell(nn.Module):
    """One frame (3, H, W) and the hidden state (C, H/4, W/4) -> features (5C, H/4, W/4) and the new state.

    Args:
        channels (int): C (``n_features``).
        num_blocks (int): RDBs of the trunk (``n_blocks``).
        activation (callable): Makes the activation module.
    """

    def __init__(self, channels, num_blocks, activation):
        super().__init__()
        c = channels
        self.encoder = nn.Sequential(
            conv(3, c, 5), RDBDown(c, c, 2, activation()), RDBDown(2 * c, 3 * c // 2, 2, activation()))
        self.trunk = DenseTrunk(5 * c, 2 * c, num_blocks, activation)
        self.hidden_head = nn.Sequential(conv(5 * c, c, 3), RDB(c, c, 3, activation()), conv(c, c, 3))

    def forward(self, frame, hidden):
        feat = self.trunk(torch.cat([self.encoder(frame), hidden], dim=1))
        return feat, self.hidden_head(feat)


class GlobalSpatioTemporalAttention(nn.Module):
    """Fuses the centre frame's features with each neighbour's (ESTRNN's GSA module).

    For each neighbour j: ``cor = [f_centre, f_j]``, channel weights from its global average
    (two linear layers, activation, sigmoid), a two-layer 1x1 projection, their product condensed
    to 5C channels; the condensed neighbours and the centre features are merged by a 1x1 conv.

    Args:
        channels (int): 5C, the channels of one frame's features.
        num_frames (int): past + 1 + future.
        activation (callable): Makes the activation module.
    """

    def __init__(self, channels, num_frames, activation):
        super().__init__()
        pair = 2 * channels
        self.channel_attention = nn.Sequential(nn.Linear(pair, 2 * pair), activation(), nn.Linear(2 * pair, pair),
                                               nn.Sigmoid())
        self.projection = nn.Sequential(conv(pair, 2 * pair, 1), conv(2 * pair, pair, 1))
        self.condense = conv(pair, channels, 1)
        self.merge = conv(num_frames * channels, num_frames * channels, 1)

    def forward(self, feats, centre):
        """feats: the num_frames features (B, 5C, h, w) in time order; centre: index of the centre one."""
        condensed = []
        for j, feat in enumerate(feats):
            if j == centre:
                continue
            cor = torch.cat([feats[centre], feat], dim=1)
            weights = self.channel_attention(cor.mean(dim=(2, 3)))[:, :, None, None]
            condensed.append(self.condense(weights * self.projection(cor)))
        return self.merge(torch.cat(condensed + [feats[centre]], dim=1))


# The authors' checkpoint keys (after their ``model.`` / ``module.model.`` prefix) -> ours.
OFFICIAL_KEYS = KeyRules(renames=[
    (r'^cell\.F_B([012])\.', r'cell.encoder.\1.'),
    (r'^cell\.F_R\.RDBs\.', 'cell.trunk.rdbs.'),
    (r'^cell\.F_R\.', 'cell.trunk.'),
    (r'^cell\.F_h\.', 'cell.hidden_head.'),
    (r'^fusion\.F_f\.', 'fusion.channel_attention.'),
    (r'^fusion\.F_p\.', 'fusion.projection.'),
    (r'^fusion\.fusion\.', 'fusion.merge.'),
    (r'^recons\.model\.', 'reconstructor.'),
])


@ARCH_REGISTRY.register()
@checked_options(n_features=at_least(1), n_blocks=at_least(1), past_frames=at_least(0), future_frames=at_least(0),
                 activation=one_of(*ACTIVATIONS))
class ESTRNNNet(nn.Module):
    """ESTRNN video deblurring network.

    Input (B, T, 3, H, W) in [0, 1]; output the T - past - future inner frames (B, T', 3, H, W),
    restored frame ``t`` from input frames ``t - past .. t + future``; not clamped. Internally the
    model works on ``frame - 0.5`` and predicts the whole frame (no residual to the input), as the
    released one. Frames whose sides are not multiples of 4 are reflect-padded and cropped back.

    Args:
        n_features (int): C; the features have 5C channels ("C80" in the paper's names is 5C = 80,
            i.e. n_features 16). Default: 16.
        n_blocks (int): RDBs of the recurrent cell's trunk ("B15"). Default: 15.
        past_frames (int): Past frames fused for each output. Default: 2.
        future_frames (int): Future frames fused for each output. Default: 2.
        activation (str): ``gelu`` (released, exact erf form), ``relu`` or ``leakyrelu`` (slope 0.1).
            Default: 'gelu'.
    """

    def __init__(self, n_features=16, n_blocks=15, past_frames=2, future_frames=2, activation='gelu'):
        super().__init__()
        if past_frames < 0 or future_frames < 0:
            raise ValueError(f'past_frames and future_frames must be >= 0, got {past_frames}, {future_frames}.')
        self.n_features = n_features
        self.past_frames = past_frames
        self.future_frames = future_frames
        act = ACTIVATIONS[activation]
        c, window = n_features, past_frames + 1 + future_frames
        self.cell = RecurrentCell(c, n_blocks, act)
        self.fusion = GlobalSpatioTemporalAttention(5 * c, window, act)
        self.reconstructor = nn.Sequential(
            nn.ConvTranspose2d(window * 5 * c, 2 * c, 3, 2, 1, output_padding=1),
            nn.ConvTranspose2d(2 * c, c, 3, 2, 1, output_padding=1), conv(c, 3, 5))

    official_keys = OFFICIAL_KEYS  # the authors' checkpoint keys -> ours

    def traits(self):
        """No output for the first ``past_frames`` and last ``future_frames`` frames; any size (padded inside);
        the authors' checkpoints. A traced graph (ONNX export) holds at every side that needs no padding."""
        return NetworkTraits(frame_margins=(self.past_frames, self.future_frames), official_keys=self.official_keys,
                             traced_size_multiple=PAD.multiple)

    def forward(self, lqs):
        """
        Args:
            lqs (Tensor): Blurry frames (B, T, 3, H, W) in [0, 1], T > past + future.

        Returns:
            Tensor: (B, T - past - future, 3, H, W), restored frames past .. T - future - 1.
        """
        check_input_frames(lqs, type(self).__name__)
        b, t, _, h, w = lqs.shape
        if t <= self.past_frames + self.future_frames:
            raise ValueError(f'ESTRNNNet with {self.past_frames} past and {self.future_frames} future frames needs '
                             f'more than {self.past_frames + self.future_frames} frames, got {t}.')
        frames = [PAD.pad(lqs[:, i] - 0.5) for i in range(t)]
        hidden = frames[0].new_zeros(b, self.n_features, frames[0].shape[2] // 4, frames[0].shape[3] // 4)
        feats = []
        for frame in frames:
            feat, hidden = self.cell(frame, hidden)
            feats.append(feat)
        outputs = [
            self.reconstructor(self.fusion(feats[i - self.past_frames:i + self.future_frames + 1], self.past_frames))
            for i in range(self.past_frames, t - self.future_frames)
        ]
        return torch.stack(outputs, dim=1)[..., :h, :w] + 0.5

"""MemDeblurNet: the multi-scale memory-based video deblurring network (Ji & Yao, CVPR 2022).

The deblurring branch encodes every frame (D), runs a recurrent backward pass at full
resolution, then forward passes coarse to fine, and decodes (U) a residual that is added to
the blurry frame. The memory branch stores blurry-key / sharp-value pairs of restored frames
in banks that every frame reads back by attention. The computation follows the released
model exactly (see ``docs/architecture.md`` and ``tests/archs/test_memdeblur_arch.py``), so the authors'
checkpoints load through ``memdeblur.networks.checkpoint``.
"""
import math

import torch
import torch.nn.functional as F
from basicsr.archs.arch_util import make_layer, ResidualBlockNoBN
from basicsr.archs.basicvsr_arch import ConvResidualBlocks
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from memdeblur.archs.blocks import RDBDown, conv
from memdeblur.archs.input_checks import check_input_frames
from memdeblur.archs.memory_bank import MemoryBank
from memdeblur.archs.memory_branch import MemoryBranch
from memdeblur.networks.frame_storage import FinishedOutputs, InMemoryFrames
from memdeblur.networks.traits import KeyRules, NetworkTraits
from memdeblur.utils.padding import SpatialPadding, round_up
from memdeblur.utils.option_check import BOOL, POSITIVE_INT_LIST, at_least, checked_options, one_of, optional

FEAT_CHANNELS = 48  # channels of the encoder D's output: 3 -> 12 -> 48 through two RDBDown(x4)
SIZE_MULTIPLE = 4  # D halves the size twice
PAD = SpatialPadding(SIZE_MULTIPLE)  # frames are padded inside, the outputs cropped back
KEY_REDUCTION = 16  # memory keys are 1/16 of the frame: D's 4, then the ResNet stem's 4 (sides rounded up)
# What the forward bank memorises under each key (the paper's Table 6): the released model keeps
# "r" (restored) and "h" (hidden) as separate values; the variants keep one of them, or one joint
# value encoded from both.
MEMORY_VALUE_MODES = ('separate', 'hidden', 'restored', 'joint')

_MEMORY_ENCODERS = r'(key_encoder|value_encoder_mem|value_encoder_feat)'
_MEMORY_DECODERS = r'(decoder_mem|decoder_feat)'
# The authors' checkpoint keys (after their ``model.`` / ``module.model.`` prefix) -> ours; docs/architecture.md
# tabulates them. conv_hr and conv_last are built by the released model but never used.
OFFICIAL_KEYS = KeyRules(
    renames=[
        (r'^downsampling\.', 'encoder.'),
        (r'^upsampling\.', 'decoder.'),
        (r'^forward_resblocks\.main\.0\.', 'forward_trunk.'),
        (r'^backward_resblocks\.', 'backward_trunk.'),
        (rf'^memory\.{_MEMORY_ENCODERS}\.forward_resblocks\.', r'memory.\1.trunk.'),
        (rf'^memory\.{_MEMORY_ENCODERS}\.(conv1|bn1|layer1)\.', r'memory.\1.stem.\2.'),
        (r'^memory\.key_proj\.key_proj\.', 'memory.key_proj.'),
        (rf'^memory\.{_MEMORY_DECODERS}\.forward_resblocks\.', r'memory.\1.trunk.'),
        (rf'^memory\.{_MEMORY_DECODERS}\.upsample\.0\.', r'memory.\1.upsample_conv.'),
    ],
    dropped=[r'^conv_hr\.', r'^conv_last\.'])


def resize(x, size):
    """Bilinear resize without antialiasing, as every resize of the released model."""
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


@ARCH_REGISTRY.register()
@checked_options(mid_channels=at_least(4), num_blocks_forward=at_least(0), num_blocks_backward=at_least(0),
                 scales=POSITIVE_INT_LIST, mem_every=POSITIVE_INT_LIST, test_mem_length=optional(at_least(1)),
                 top_k=optional(at_least(1)), norm_eval=BOOL,
                 use_memory=BOOL, bidirectional=BOOL, deblur_branch=BOOL, memory_values=one_of(*MEMORY_VALUE_MODES),
                 temporary_memory=BOOL)
class MemDeblurNet(nn.Module):
    """Multi-scale memory-based video deblurring network.

    Input is in [0, 1] (floating point; integer, non-finite and 0-255 inputs are refused); internally
    the model works on ``frame - 0.5`` as the released one does. The output is ``frame + residual``
    and is **not clamped**: it may leave [0, 1] slightly; the test harness clamps before scoring and
    saving. Frames whose sides are not multiples of 4 are reflect-padded and the
    finest output cropped back.

    Args:
        mid_channels (int): Channels of the recurrent hidden states, at least 4 (the decoder U quarters
            them). Default: 64.
        num_blocks_forward (int): Residual blocks of the forward trunk (shared by all
            scales). Default: 30.
        num_blocks_backward (int): Residual blocks of the backward trunk. Default: 10.
        scales (list[int]): Downscaling factors of the forward passes, coarse to fine; the last
            must be 1. Default: [4, 2, 1].
        mem_every (list[int]): Memorisation period of each forward pass (a frame i is stored
            when ``i % period == 0``); the last one also sets the backward bank's period.
            Default: [1, 2, 5].
        test_mem_length (int | None): In eval mode, after each addition a bank keeps only the
            last ``test_mem_length`` entries' worth of positions of the entry just added.
            None keeps all. Default: 5.
        top_k (int | None): In eval mode, read-outs keep the ``top_k`` most similar memory
            positions per query position; None = full softmax (the paper's Eq. 6).
            Training always uses the full softmax. Default: 20.
        norm_eval (bool): Keep the memory encoders' BatchNorm layers in eval mode while training
            (MMCV's convention), so they act as fixed affine layers. The released model trained
            them on batch statistics, which works at its batch 8 of 256x256 crops; with small crops
            the coarse scale's key maps are 1x1, batch statistics become meaningless and eval-mode
            outputs collapse. Default: False (the released recipe).

    Variants of the paper's ablations (``options/README.md`` lists each table row; the defaults
    are the released model, unchanged):
        use_memory (bool): The memory branch (Table 4). Without it no bank is read or written and
            every read-out input of the recurrent cells disappears. Default: True.
        bidirectional (bool): The backward pass and its bank (Table 4). Without it the forward
            passes lose the backward read-out and the fusion sees ``h`` alone
            (``conv1x1(c, c)``). Default: True.
        deblur_branch (bool): The deblurring branch (Table 5, "w/o Deblur."). Without it the only
            path is the memory: a frame's read-out of the "r" bank, decoded to features, goes
            straight to the upsampling module U (zeros for the first frame, whose bank is empty).
            Needs ``use_memory``, no ``bidirectional``, ``scales: [1]`` and
            ``memory_values: restored``. Default: True.
        memory_values (str): What the forward bank memorises (Table 6): ``separate`` (released:
            "r" and "h" as two values under one key), ``hidden`` ("h" only), ``restored`` ("r"
            only), ``joint`` (one value encoded from ``[x, D(R), h]``). The backward bank always
            holds "h". Default: 'separate'.
        temporary_memory (bool): Table 5's "Temp.": every frame that is not memorised still enters
            the forward bank as its temporary entry (replaced by the next frame), so the previous
            frame is always readable. Default: False.

    Attributes:
        sparse_readout (bool): Eval-mode read-outs gather the ``top_k`` selected values instead of a
            dense product with a mostly-zero weight matrix (``MemoryBank``'s ``sparse``): the same
            result up to float rounding, much less work on large frames. Off by default (the
            released computation); the fast inference path turns it on.
    """

    def __init__(self,
                 mid_channels=64,
                 num_blocks_forward=30,
                 num_blocks_backward=10,
                 scales=(4, 2, 1),
                 mem_every=(1, 2, 5),
                 test_mem_length=5,
                 top_k=20,
                 norm_eval=False,
                 use_memory=True,
                 bidirectional=True,
                 deblur_branch=True,
                 memory_values='separate',
                 temporary_memory=False):
        super().__init__()
        scales, mem_every = list(scales), list(mem_every)
        if not scales or scales[-1] != 1:
            raise ValueError(f'scales must run coarse to fine and end with 1, got {scales}.')
        if len(mem_every) != len(scales):
            raise ValueError(f'mem_every needs one period per scale: scales={scales}, mem_every={mem_every}.')
        if not deblur_branch and (not use_memory or bidirectional or scales != [1] or memory_values != 'restored'):
            raise ValueError('deblur_branch: false (memory only) needs use_memory: true, bidirectional: false, '
                             'scales: [1] and memory_values: restored.')
        self.mid_channels = mid_channels
        self.num_blocks_forward = num_blocks_forward
        self.num_blocks_backward = num_blocks_backward
        self.scales = scales
        self.mem_every = mem_every
        self.test_mem_length = test_mem_length
        self.top_k = top_k
        self.norm_eval = norm_eval
        self.use_memory = use_memory
        self.bidirectional = bidirectional
        self.deblur_branch = deblur_branch
        self.memory_values = memory_values
        self.temporary_memory = temporary_memory
        self.sparse_readout = False

        c, x_ch = mid_channels, FEAT_CHANNELS
        # D: image (3, H, W) -> x (48, H/4, W/4)
        self.encoder = nn.Sequential(conv(3, 3, 5), RDBDown(3, 16, 4), RDBDown(12, 24, 4))
        # U: fused features (c, H/4, W/4) -> residual image (3, H, W)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), nn.LeakyReLU(0.1),
            nn.ConvTranspose2d(c // 2, c // 4, 3, 2, 1, output_padding=1), nn.LeakyReLU(0.1),
            conv(c // 4, 3, 5))
        readout = c if use_memory else 0  # channels of one decoded read-out
        if deblur_branch:
            # backward input: [x_i, x_{i+1}, backward read-out, hb_{i+1}]
            self.backward_in_channels = 2 * x_ch + readout + c
            if bidirectional:
                self.backward_trunk = ConvResidualBlocks(self.backward_in_channels, c, num_blocks_backward)
            # forward input: [x, backward read-out, (D(upsampled coarser output)), x_prev,
            #                 "h" read-out, h_prev, "r" read-out] (released; variants drop parts)
            num_readouts = 2 if memory_values == 'separate' else 1
            self.forward_recurrent_channels = x_ch + c + num_readouts * readout
            backward_readout = readout if bidirectional else 0
            self.forward_input_convs = nn.ModuleList([
                nn.Sequential(
                    conv(x_ch + backward_readout + (x_ch if s > 0 else 0) + self.forward_recurrent_channels, c, 3),
                    nn.LeakyReLU(0.1)) for s in range(len(scales))
            ])
            self.forward_trunk = make_layer(ResidualBlockNoBN, num_blocks_forward, num_feat=c)
            self.fusion = conv((2 if bidirectional else 1) * c, c, 1)
        if use_memory:
            self.memory = MemoryBranch(
                x_ch, c,
                hidden_values=bidirectional or memory_values in ('separate', 'hidden'),
                restored_values=memory_values in ('separate', 'restored'),
                joint_values=memory_values == 'joint')

    def train(self, mode=True):
        """Switch train/eval mode; with ``norm_eval`` the BatchNorm layers stay in eval mode."""
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    official_keys = OFFICIAL_KEYS  # the authors' checkpoint keys -> ours

    def traits(self):
        """Whole clips of any size (padded inside), the authors' checkpoints, whole-sequence passes
        (``restore_frames``).

        A traced graph (ONNX export) holds at sides that are multiples of ``4 * max(scales)``, where no frame
        of any scale is padded (the padding amounts are traced as constants), and, from ``traced_min_side``,
        at every larger such side: a read-out of a bank holding at most ``top_k`` positions takes the full
        softmax instead of the top-k one, and the trace keeps whichever it took."""
        return NetworkTraits(official_keys=self.official_keys, whole_sequence_passes=self._passes_per_frame(),
                             traced_size_multiple=SIZE_MULTIPLE * max(self.scales),
                             traced_min_side=self._traced_min_side())

    def _passes_per_frame(self):
        """Per-frame results ``restore_frames`` writes per frame: the backward state, then each scale's output."""
        return len(self.scales) + int(self.bidirectional) if self.deblur_branch else 1

    def _traced_min_side(self):
        """The smallest side (a multiple of ``4 * max(scales)``) at which every read-out is a top-k one.

        The fewest positions a bank is read with are those of one key at the coarsest scale (the forward bank's
        first read): ``ceil(side / (16 * factor))`` per side (the encoder and the key's ResNet stem each divide
        by 4, rounding up). Square key maps of ``isqrt(top_k) + 1`` per side have more than ``top_k`` positions.
        """
        if not self.use_memory or self.top_k is None:
            return 0
        factor = max(self.scales)
        key_side = math.isqrt(self.top_k) + 1
        return KEY_REDUCTION * factor * (key_side - 1) + SIZE_MULTIPLE * factor

    def compile_targets(self):
        """The modules ``torch.compile`` should compile (``train.compile``): those run once per frame and scale.
        Compiling ``forward`` itself would unroll its loops over frames and scales into one graph per clip
        length."""
        targets = [self.encoder, self.decoder]
        if self.deblur_branch:
            targets += [self.forward_trunk, *self.forward_input_convs]
            targets += [self.backward_trunk] if self.bidirectional else []
        if self.use_memory:
            targets += list(self.memory.children())
        return targets

    def forward(self, lqs, return_scales=False):
        """Deblur a batch of sequences.

        Args:
            lqs (Tensor): Blurry frames (B, T, 3, H, W) in [0, 1], H, W >= 16.
            return_scales (bool): Return every scale's output, coarse to fine, instead of the
                finest only. The coarse outputs have the sizes the network computes them at:
                ``round_up(H' // f, 4)`` for factor f, H' being H padded to a multiple of 4.

        Returns:
            Tensor | list[Tensor]: (B, T, 3, H, W), or the list of scale outputs; in the input's
            range but not clamped to [0, 1].
        """
        check_input_frames(lqs, type(self).__name__)
        t, h, w = lqs.shape[1], lqs.shape[3], lqs.shape[4]
        if h < 16 or w < 16:
            raise ValueError(f'MemDeblurNet needs frames of at least 16x16 pixels, got {h}x{w}.')
        frames = [PAD.pad(lqs[:, i] - 0.5) for i in range(t)]
        outputs = [torch.stack(scale_out, dim=1) + 0.5 for scale_out in self._restore(frames, InMemoryFrames())]
        outputs[-1] = outputs[-1][..., :h, :w]
        return outputs if return_scales else outputs[-1]

    def restore_frames(self, frames, storage):
        """Whole-sequence restoration with every per-frame tensor kept where ``storage`` says
        (``memdeblur.networks.frame_storage``).

        ``forward`` holds the encoder features, keys, backward states and every scale's outputs
        of all T frames in memory at once. This runs the same computation in the same order, but
        asks ``storage`` for each of those per-frame sequences, so they can live in a file or be
        recomputed on access (``memdeblur.runtime.exact``): the result equals ``forward``'s
        while memory stays bounded. Eval mode only (the banks are bounded then). With the frames, features and keys
        recomputed and the written sequences in files, memory is that of a few frames plus the banks (bounded by
        ``test_mem_length``); the files hold, per frame, the backward state and the two coarser outputs in float32:
        4·(c/16 + 3/16 + 3/4) bytes per pixel for c channels.

        Args:
            frames (Sequence[Tensor]): The T blurry frames, each (B, 3, H, W) in [0, 1].
            storage: Keeps 'frames', 'feats' and 'keys' (``mapped``), 'backward_hidden' and
                'outputs_<scale>' (``frames``) and the restored frames (``outputs``).
        """
        if self.training:
            raise RuntimeError('restore_frames runs in eval mode only (training banks are unbounded).')
        height, width = frames[0].shape[-2:]

        def prepare(frame):
            check_input_frames(frame.unsqueeze(1), type(self).__name__)
            return PAD.pad(frame - 0.5)

        finished = FinishedOutputs(storage, lambda out: out[..., :height, :width] + 0.5)
        self._restore(finished.mapped('frames', prepare, frames), finished)

    def _new_bank(self):
        """Empty bank with the train- or eval-time rules of the released model (None without memory)."""
        if not self.use_memory:
            return None
        if self.training:
            return MemoryBank(float32_affinity=True)
        return MemoryBank(max_length=self.test_mem_length, top_k=self.top_k, sparse=self.sparse_readout)

    def _restore(self, frames, storage):
        """Centred frames (sequence of T (B, 3, H, W)) -> per scale, a sequence of T centred outputs.

        ``storage`` makes the per-frame sequences (``InMemoryFrames``: lists; see ``restore_frames``).
        """
        feats = storage.mapped('feats', self.encoder, frames)
        keys = storage.mapped('keys', self.memory.encode_key, feats) if self.use_memory else [None] * len(frames)
        if not self.deblur_branch:
            return [self._memory_only_pass(frames, feats, keys, storage)]
        backward_bank = self._new_bank() if self.bidirectional else None
        backward_hidden = (self._backward_pass(feats, keys, backward_bank, storage)
                           if self.bidirectional else [None] * len(frames))
        forward_bank = self._new_bank()
        outputs, coarser = [], None
        for scale_idx in range(len(self.scales)):
            coarser = self._forward_pass(scale_idx, frames, feats, keys, backward_hidden, backward_bank,
                                         forward_bank, coarser, storage)
            outputs.append(coarser)
        return outputs

    def _backward_memorised_frames(self, num_frames):
        """Frames whose backward state is stored: every p-th frame (p = last ``mem_every``) and
        the last frame; counted from the end in training, from frame p // 2 in eval, as in the
        released model."""
        period = self.mem_every[-1]
        if self.training:
            frames = set(range(num_frames - 1, -1, -period))
        else:
            frames = set(range(period // 2, num_frames, period))
        return frames | {num_frames - 1}

    def _backward_pass(self, feats, keys, bank, storage):
        """Recurrent pass from the last frame to the first at full resolution.

        Returns:
            Sequence[Tensor]: Backward hidden states hb_i (B, c, H/4, W/4).
        """
        t = len(feats)
        memorised = self._backward_memorised_frames(t)
        hidden = storage.frames('backward_hidden', t)
        for i in range(t - 1, -1, -1):
            x = feats[i]
            if i == t - 1:
                recurrent = [x.new_zeros(x.shape[0], self.backward_in_channels - x.shape[1], *x.shape[2:])]
            else:
                recurrent = [feats[i + 1]]
                if bank is not None:
                    recurrent.append(self.memory.decoder_feat(bank.read(keys[i])[0], x.shape[2:]))
                recurrent.append(hidden[i + 1])
            hidden[i] = self.backward_trunk(torch.cat([x] + recurrent, dim=1))
            if bank is not None and i in memorised:
                bank.add(keys[i], [self.memory.encode_hidden_value(x, hidden[i])])
        return hidden

    def _forward_pass(self, scale_idx, frames, feats, keys, backward_hidden, backward_bank, forward_bank,
                      coarser, storage):
        """Recurrent pass from the first frame to the last at one scale.

        Args:
            scale_idx (int): Index into ``self.scales``.
            frames, feats, keys (list[Tensor]): Full-size centred frames, D features, keys (None
                without memory).
            backward_hidden (list[Tensor]): Backward states at full feature size (None when not
                bidirectional).
            backward_bank, forward_bank (MemoryBank | None): The forward bank is shared by all scales.
            coarser (Sequence[Tensor] | None): Outputs of the previous (coarser) scale.
            storage: Makes the sequence of this scale's outputs (see ``restore_frames``).

        Returns:
            Sequence[Tensor]: Centred outputs (B, 3, h, w) of this scale.
        """
        factor = self.scales[scale_idx]
        full_h, full_w = frames[0].shape[2:]
        if factor == 1:
            size = (full_h, full_w)
        else:
            size = (round_up(full_h // factor, SIZE_MULTIPLE), round_up(full_w // factor, SIZE_MULTIPLE))
        feat_size = (size[0] // SIZE_MULTIPLE, size[1] // SIZE_MULTIPLE)
        finest = scale_idx == len(self.scales) - 1
        outputs = storage.outputs(len(frames)) if finest else storage.frames(f'outputs_{scale_idx}', len(frames))
        x_prev = h_prev = None
        for i, frame in enumerate(frames):
            if factor == 1:
                x, key, hb = feats[i], keys[i], backward_hidden[i]
            else:
                frame = resize(frame, size)
                x = self.encoder(frame)
                key = self.memory.encode_key(x) if self.use_memory else None
                hb = resize(backward_hidden[i], feat_size) if self.bidirectional else None
            parts = [x]
            if backward_bank is not None:
                parts.append(self.memory.decoder_feat(backward_bank.read(key)[0], feat_size))
            if coarser is not None:
                parts.append(self.encoder(resize(coarser[i], size)))
            if i == 0:
                parts.append(x.new_zeros(x.shape[0], self.forward_recurrent_channels, *feat_size))
            else:
                parts += self._recurrent_inputs(x_prev, h_prev, forward_bank, key, feat_size)
            hidden = self.forward_trunk(self.forward_input_convs[scale_idx](torch.cat(parts, dim=1)))
            fused = torch.cat([hb, hidden], dim=1) if self.bidirectional else hidden
            out = self.decoder(F.leaky_relu(self.fusion(fused), 0.1)) + frame
            if forward_bank is not None:
                self._memorise(forward_bank, i, self.mem_every[scale_idx], key,
                               lambda: self._forward_values(x, out, hidden))
            outputs[i] = out
            x_prev, h_prev = x, hidden
        return outputs

    def _recurrent_inputs(self, x_prev, h_prev, bank, key, feat_size):
        """The forward cell's recurrent inputs for a frame after the first, in the released order:
        ``[x_prev, "h" read-out, h_prev, "r" read-out]``; variants keep the read-outs they have."""
        if bank is None:
            return [x_prev, h_prev]
        readouts = bank.read(key)
        if self.memory_values == 'separate':
            restored, hidden = readouts
            return [x_prev, self.memory.decoder_feat(hidden, feat_size), h_prev,
                    self.memory.decoder_mem(restored, feat_size)]
        if self.memory_values == 'hidden':
            return [x_prev, self.memory.decoder_feat(readouts[0], feat_size), h_prev]
        decoder = self.memory.decoder_mem if self.memory_values == 'restored' else self.memory.decoder_joint
        return [x_prev, h_prev, decoder(readouts[0], feat_size)]

    def _forward_values(self, x, out, hidden):
        """The values the forward bank memorises for a restored frame (``memory_values``)."""
        if self.memory_values == 'hidden':
            return [self.memory.encode_hidden_value(x, hidden)]
        restored = self.encoder(out)
        if self.memory_values == 'separate':
            return [self.memory.encode_restored_value(x, restored), self.memory.encode_hidden_value(x, hidden)]
        if self.memory_values == 'restored':
            return [self.memory.encode_restored_value(x, restored)]
        return [self.memory.encode_joint_value(x, restored, hidden)]

    def _memorise(self, bank, i, period, key, values):
        """Store frame i when ``i % period == 0``; otherwise, with ``temporary_memory``, as the
        bank's temporary entry. ``values`` is called only when something is stored."""
        if i % period == 0:
            bank.add(key, values())
        elif self.temporary_memory:
            bank.add(key, values(), temporary=True)

    def _memory_only_pass(self, frames, feats, keys, storage):
        """Table 5's "w/o Deblur.": each frame's "r" read-out, decoded, goes straight to U."""
        bank = self._new_bank()
        period = self.mem_every[0]
        outputs = storage.outputs(len(frames))
        for i, (frame, x, key) in enumerate(zip(frames, feats, keys)):
            if len(bank):
                feature = self.memory.decoder_mem(bank.read(key)[0], x.shape[2:])
            else:
                feature = x.new_zeros(x.shape[0], self.mid_channels, *x.shape[2:])
            out = self.decoder(feature) + frame
            self._memorise(bank, i, period, key,
                           lambda: [self.memory.encode_restored_value(x, self.encoder(out))])
            outputs[i] = out
        return outputs

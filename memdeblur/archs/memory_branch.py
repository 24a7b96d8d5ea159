"""The encoders and decoders around MemDeblur's memory banks.

Keys come from blurry features, values from restored features ("r": the encoded restored
frame; "h": the recurrent hidden state). Both are 256-channel maps at 1/4 of the feature
size (1/16 of the frame), produced by a few residual blocks and a ResNet-50 stem; the
decoders bring a read-out back to the feature size.
"""
import torch
import torch.nn.functional as F
from basicsr.archs.basicvsr_arch import ConvResidualBlocks
from torch import nn

from memdeblur.archs.blocks import ResNetStem, conv


class MemoryFeatureEncoder(nn.Module):
    """Residual blocks then a ResNet-50 stem: (in_channels, h, w) -> (256, h/4, w/4).

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Channels of the residual blocks.
        num_blocks (int): Number of residual blocks. Default: 2.
    """

    def __init__(self, in_channels, mid_channels, num_blocks=2):
        super().__init__()
        self.trunk = ConvResidualBlocks(in_channels, mid_channels, num_blocks)
        self.stem = ResNetStem(mid_channels)

    def forward(self, x):
        return self.stem(self.trunk(x))


class MemoryReadoutDecoder(nn.Module):
    """Brings a 256-channel read-out back to feature resolution.

    ``y = blocks(v)``; output ``PixelShuffle(4)(conv(y)) + bilinear_x4(y)``, cropped to the
    requested feature size (the stem rounds sizes up, so the x4 map can be larger).

    Args:
        in_channels (int): Read-out channels (256).
        mid_channels (int): Output channels.
        num_blocks (int): Number of residual blocks. Default: 2.
    """

    def __init__(self, in_channels, mid_channels, num_blocks=2):
        super().__init__()
        self.trunk = ConvResidualBlocks(in_channels, mid_channels, num_blocks)
        self.upsample_conv = conv(mid_channels, mid_channels * 16, 3)
        self.pixel_shuffle = nn.PixelShuffle(4)

    def forward(self, readout, size):
        """readout (B, 256, h', w') -> (B, mid_channels, h, w) with (h, w) = ``size``."""
        y = self.trunk(readout)
        y = self.pixel_shuffle(self.upsample_conv(y)) + F.interpolate(
            y, scale_factor=4, mode='bilinear', align_corners=False)
        return y[..., :size[0], :size[1]]


class MemoryBranch(nn.Module):
    """Key, value and read-out networks of MemDeblur's memory.

    The released model memorises two values under each key ("r" and "h", each with its own
    encoder and decoder). The paper's Table 6 variants build only what they use.

    Args:
        feat_channels (int): Channels of the encoder D's features x (48).
        mid_channels (int): Channels of the recurrent hidden state h (64).
        key_channels (int): Channels of the keys (64).
        hidden_values (bool): Build the "h" value encoder and decoder. Default: True.
        restored_values (bool): Build the "r" value encoder and decoder. Default: True.
        joint_values (bool): Build an encoder of one joint value from ``[x, D(R), h]`` and its
            decoder (Table 6, "[h, r]" concatenated). Default: False.
    """

    value_channels = ResNetStem.out_channels

    def __init__(self, feat_channels=48, mid_channels=64, key_channels=64, hidden_values=True, restored_values=True,
                 joint_values=False):
        super().__init__()
        self.key_encoder = MemoryFeatureEncoder(feat_channels, feat_channels)
        self.key_proj = conv(self.value_channels, key_channels, 3)
        if restored_values:
            self.value_encoder_mem = MemoryFeatureEncoder(2 * feat_channels, 32)
            self.decoder_mem = MemoryReadoutDecoder(self.value_channels, mid_channels)
        if hidden_values:
            self.value_encoder_feat = MemoryFeatureEncoder(feat_channels + mid_channels, 32)
            self.decoder_feat = MemoryReadoutDecoder(self.value_channels, mid_channels)
        if joint_values:
            self.value_encoder_joint = MemoryFeatureEncoder(2 * feat_channels + mid_channels, 32)
            self.decoder_joint = MemoryReadoutDecoder(self.value_channels, mid_channels)

    def encode_key(self, feat):
        """Blurry features x (B, 48, h, w) -> key (B, 64, h/4, w/4)."""
        return self.key_proj(self.key_encoder(feat))

    def encode_restored_value(self, feat, restored_feat):
        """"r" value from x and D(restored frame), each (B, 48, h, w)."""
        return self.value_encoder_mem(torch.cat([feat, restored_feat], dim=1))

    def encode_hidden_value(self, feat, hidden):
        """"h" value from x (B, 48, h, w) and the hidden state (B, 64, h, w)."""
        return self.value_encoder_feat(torch.cat([feat, hidden], dim=1))

    def encode_joint_value(self, feat, restored_feat, hidden):
        """One value from x, D(restored frame) and the hidden state ([h, r] as one value)."""
        return self.value_encoder_joint(torch.cat([feat, restored_feat, hidden], dim=1))

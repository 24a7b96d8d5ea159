"""Building blocks shared by the deblurring architectures (MemDeblur now, ESTRNN next).

Parameter names follow the released checkpoints where they are already descriptive
(``dense_layers``, ``conv1x1``, ``down_sampling``; ResNet's ``conv1``/``bn1``/``layer1``),
so the checkpoint converter only renames the top-level modules. Residual blocks with a
leading conv come from BasicSR (``ConvResidualBlocks``); they are not redefined here.
"""
import torch
from torch import nn


def conv(in_channels, out_channels, kernel_size, stride=1):
    """``Conv2d`` with bias and 'same' padding for odd kernels."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=True)


class DenseLayer(nn.Module):
    """3x3 conv and activation whose output is concatenated after its input: ``[x, act(conv(x))]``.

    Args:
        in_channels (int): Input channels.
        growth (int): Channels added by the layer.
        activation (nn.Module): Activation after the conv. Default: ReLU.
    """

    def __init__(self, in_channels, growth, activation=None):
        super().__init__()
        self.conv = conv(in_channels, growth, 3)
        self.act = activation if activation is not None else nn.ReLU()

    def forward(self, x):
        return torch.cat([x, self.act(self.conv(x))], dim=1)


class RDB(nn.Module):
    """Residual dense block: dense layers, a 1x1 fusion back to ``channels``, plus the input.

    Args:
        channels (int): Input and output channels.
        growth (int): Growth of each dense layer.
        num_layers (int): Number of dense layers. Default: 3.
        activation (nn.Module): Activation of the dense layers. Default: ReLU.
    """

    def __init__(self, channels, growth, num_layers=3, activation=None):
        super().__init__()
        self.dense_layers = nn.Sequential(*[
            DenseLayer(channels + i * growth, growth, activation) for i in range(num_layers)
        ])
        self.conv1x1 = conv(channels + num_layers * growth, channels, 1)

    def forward(self, x):
        return x + self.conv1x1(self.dense_layers(x))


class RDBDown(nn.Module):
    """RDB followed by a stride-2 5x5 conv that multiplies the channels by ``expansion``.

    Args:
        channels (int): Input channels.
        growth (int): Growth of the RDB's dense layers.
        expansion (int): Output channels / input channels (4 in MemDeblur, 2 in ESTRNN).
        activation (nn.Module): Activation of the dense layers. Default: ReLU.
    """

    def __init__(self, channels, growth, expansion, activation=None):
        super().__init__()
        self.rdb = RDB(channels, growth, 3, activation)
        self.down_sampling = conv(channels, expansion * channels, 5, stride=2)

    def forward(self, x):
        return self.down_sampling(self.rdb(x))


class BiasedBottleneck(nn.Module):
    """ResNet-50 bottleneck (1x1, 3x3, 1x1 convs, BatchNorm after each) whose convs carry biases.

    torchvision's ``Bottleneck`` has bias-free convs; the released MemDeblur encoders have
    biased ones, so this small variant is needed to load them.

    Args:
        in_channels (int): Input channels.
        width (int): Channels of the inner 3x3 conv; the output has ``4 * width``.
    """

    expansion = 4

    def __init__(self, in_channels, width):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample = None
        if in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNetStem(nn.Module):
    """ResNet-50 stem and ``layer1``: 256 channels at 1/4 of the input size.

    7x7 stride-2 conv (with bias), BatchNorm, ReLU, 3x3 stride-2 max-pool, three bottlenecks.
    The paper initialises it from ImageNet weights; the released checkpoints carry trained ones.

    Args:
        in_channels (int): Input channels.
    """

    out_channels = 256

    def __init__(self, in_channels):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BiasedBottleneck(64, 64), BiasedBottleneck(256, 64), BiasedBottleneck(256, 64))

    def forward(self, x):
        return self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))

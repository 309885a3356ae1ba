"""ReActNet-A (Liu et al., "ReActNet: Towards Precise Binary Neural Network with Generalized
Activation Functions", ECCV 2020): a binary network on the MobileNetV1 layout.

MobileNetV1's depthwise 3x3 + pointwise 1x1 pairs become *full* binary 3x3 and 1x1
convolutions (:class:`~models.layers.BinaryConv2d`, so hwsim costs them as xnor), each with a
real-valued identity shortcut around it. A stride-2 3x3 keeps the channel count and its
shortcut is a 2x2 average pool; where the channels double, the 1x1 is two binary 1x1
convolutions of the input width whose outputs (each plus the shortcut) are concatenated, so no
layer is real-valued but the 3x3/2 stem and the classifier. Every binary conv is preceded by
RSign's learnable per-channel shift (its sign is the conv's own) and followed by BN, and every
shortcut sum by RPReLU (shift, PReLU, shift). Paper, Table 1: 4.82e9 BOPs, 0.12e8 FLOPs,
0.87e8 OPs (= BOPs / 64 + FLOPs).
"""

from __future__ import annotations

import torch
from torch import nn

from models.layers import BinaryConv2d
from models.networks.blocks import conv_bn

#: Output channels of the stem and the 13 blocks (MobileNetV1, Howard et al. 2017, Table 1).
REACTNET_CHANNELS: tuple[int, ...] = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)


class LearnableBias(nn.Module):
    """``x + b`` with one learned ``b`` per channel: ReActNet's shift before a sign (RSign) and
    around a PReLU (RPReLU)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


def rprelu(channels: int) -> nn.Sequential:
    """RPReLU: shift, PReLU with one slope per channel, shift."""
    return nn.Sequential(LearnableBias(channels), nn.PReLU(channels), LearnableBias(channels))


class BinaryUnit(nn.Module):
    """RSign shift -> binary ``kernel x kernel`` conv -> BN, for one output slice."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.shift = LearnableBias(in_ch)
        self.conv = BinaryConv2d(in_ch, out_ch, kernel, stride, kernel // 2)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.shift(x)))


class ReActBlock(nn.Module):
    """Binary 3x3 (``in_ch`` -> ``in_ch``, stride ``stride``) + shortcut, RPReLU, then binary
    1x1 to ``out_ch`` (``in_ch`` or ``2 * in_ch``, as concatenated halves) + shortcut, RPReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        if out_ch not in (in_ch, 2 * in_ch):
            raise ValueError(f"out_ch must be in_ch or 2 * in_ch, not {out_ch} for {in_ch}")
        self.spatial = BinaryUnit(in_ch, in_ch, 3, stride)
        self.pool = nn.AvgPool2d(2) if stride == 2 else nn.Identity()
        self.act1 = rprelu(in_ch)
        self.pointwise = nn.ModuleList(BinaryUnit(in_ch, in_ch, 1) for _ in range(out_ch // in_ch))
        self.act2 = rprelu(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.act1(self.spatial(x) + self.pool(x))
        return self.act2(torch.cat([unit(mid) + mid for unit in self.pointwise], dim=1))


class ReActNetA(nn.Module):
    """Real 3x3/2 stem conv + BN (32) -> 13 ReAct blocks -> global pool -> real classifier."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = conv_bn(3, REACTNET_CHANNELS[0], 3, 2, act=None)
        blocks = []
        for in_ch, out_ch in zip(REACTNET_CHANNELS, REACTNET_CHANNELS[1:]):
            blocks.append(ReActBlock(in_ch, out_ch, 2 if out_ch != in_ch and in_ch != 32 else 1))
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(REACTNET_CHANNELS[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.blocks(self.stem(x)))))


def reactnet_a(num_classes: int = 1000) -> ReActNetA:
    """ReActNet-A on 3x224x224 (4.82e9 BOPs, 0.12e8 FLOPs)."""
    return ReActNetA(num_classes=num_classes)

"""Bi-Real Net 18 (Liu et al., "Bi-Real Net: Enhancing the Performance of 1-bit CNNs with
Improved Representational Capability and Advanced Training Algorithm", ECCV 2018).

A binary ResNet-18 in which *every* binary 3x3 convolution gets its own real-valued identity
shortcut, so the real activations before each sign function are carried through the network.
Each unit is ``BN(BinaryConv2d(x)) + shortcut(x)``, where the binary convolution binarizes its
input with sign and its weights itself. Where the shape changes the shortcut is a 2x2 average
pool + real 1x1 convolution + BN. The 7x7 stem, those 1x1 convolutions and the classifier stay
full precision. Paper figures: 1.68e9 BOPs, 1.39e8 FLOPs, 1.63e8 OPs (= BOPs / 64 + FLOPs).
"""

from __future__ import annotations

import torch
from torch import nn

from models.layers import BinaryConv2d
from models.networks.resnet import ResNet


class BiRealUnit(nn.Module):
    """One binary 3x3 convolution with BN and its own real-valued shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv = BinaryConv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        if stride == 1 and in_ch == out_ch:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.AvgPool2d(stride),
                nn.Conv2d(in_ch, out_ch, 1, bias=False),
                nn.BatchNorm2d(out_ch),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x)) + self.shortcut(x)


def _birealblock(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """A ResNet-18 basic block's two convolutions, each as a Bi-Real unit."""
    return nn.Sequential(BiRealUnit(in_ch, out_ch, stride), BiRealUnit(out_ch, out_ch, 1))


def birealnet18(num_classes: int = 1000) -> ResNet:
    """Bi-Real Net 18 on 3x224x224: ResNet-18 layout, real 7x7 stem (conv, BN, 3x3/2 max pool)."""
    stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.MaxPool2d(3, 2, 1))
    stages = ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2))
    return ResNet(stem, 64, stages, _birealblock, num_classes)

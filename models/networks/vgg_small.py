"""VGG-Small for CIFAR-10, the baseline of the quantization and binary-network literature
(Zhang et al., "LQ-Nets", ECCV 2018; first used by Hubara et al.'s BNN, NeurIPS 2016):
(2x128C3)-MP2-(2x256C3)-MP2-(2x512C3)-MP2-FC10, each 3x3 convolution followed by BN and ReLU.
"""

from __future__ import annotations

import torch
from torch import nn

from models.networks.blocks import conv_bn

#: Output channels of each 3x3 convolution; "M" is a 2x2 max pool.
VGG_SMALL_LAYOUT: tuple[int | str, ...] = (128, 128, "M", 256, 256, "M", 512, 512, "M")


class VGGSmall(nn.Module):
    """Six 3x3 conv + BN + ReLU layers with three 2x2 max pools, then one linear classifier."""

    def __init__(self, num_classes: int = 10, image_size: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, size = 3, image_size
        for item in VGG_SMALL_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                size //= 2
            else:
                layers.append(conv_bn(in_ch, int(item), 3))
                in_ch = int(item)
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_ch * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.features(x)))


def vgg_small(num_classes: int = 10) -> VGGSmall:
    """VGG-Small on 3x32x32 CIFAR images (4.7M parameters, 0.61G MACs)."""
    return VGGSmall(num_classes=num_classes)

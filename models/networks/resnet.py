"""Residual networks of He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.

* ``resnet18`` (basic blocks, 11.7M parameters, 1.82G MACs at 224x224) and ``resnet50``
  (bottleneck blocks, 25.6M parameters, 4.1G MACs) for ImageNet, with 1x1 convolution + BN
  projection shortcuts where the shape changes. ResNet-50 puts the stride on the 3x3 convolution
  of its bottleneck (the common "v1.5" variant; the paper's stride-on-1x1 original has 3.8G MACs).
* ``resnet20`` for CIFAR-10 (Section 4.2: 3 stages of 3 basic blocks, 16/32/64 channels,
  0.27M parameters, 41M MACs at 32x32) with the parameter-free "option A" shortcut.

:class:`ResNet` is the shared container (stem, stages, pool, classifier); the binary Bi-Real net
of :mod:`models.networks.birealnet` reuses it with its own blocks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from models.networks.blocks import ConvFactory, conv_bn

#: ``block(in_ch, out_ch, stride) -> module`` builds one residual block of a stage.
BlockFactory = Callable[[int, int, int], nn.Module]

#: Stages as ``(out_ch, blocks, first_stride)``: ImageNet ResNet-50 (He et al. 2016, Table 1) and
#: CIFAR ResNet-20 (Section 4.2, n = 3).
RESNET50_STAGES = ((256, 3, 1), (512, 4, 2), (1024, 6, 2), (2048, 3, 2))
RESNET20_STAGES = ((16, 3, 1), (32, 3, 2), (64, 3, 2))


class BasicBlock(nn.Module):
    """3x3 conv + BN + ReLU -> 3x3 conv + BN, added to ``shortcut(x)``, then ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, shortcut: nn.Module, *,
                 conv: ConvFactory = nn.Conv2d) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(in_ch, out_ch, 3, stride, conv=conv),
                                  conv_bn(out_ch, out_ch, 3, act=None, conv=conv))
        self.shortcut = shortcut
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (strided) -> 1x1 expand to ``out_ch`` (= 4x the width), plus shortcut;
    ``conv`` is the layer class of all four convolutions."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, conv: ConvFactory = nn.Conv2d) -> None:
        super().__init__()
        width = out_ch // 4
        self.body = nn.Sequential(
            conv_bn(in_ch, width, 1, conv=conv),
            conv_bn(width, width, 3, stride, conv=conv),
            conv_bn(width, out_ch, 1, act=None, conv=conv),
        )
        self.shortcut = projection_shortcut(in_ch, out_ch, stride, conv=conv)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class PadShortcut(nn.Module):
    """Option A shortcut (He et al. 2016, Sec. 4.2): keep every ``stride``-th pixel and zero-pad
    the new channels equally on both sides; it has no parameters."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad = (out_ch - in_ch) // 2, out_ch - in_ch - (out_ch - in_ch) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, *self.pad))


def projection_shortcut(in_ch: int, out_ch: int, stride: int, *,
                        conv: ConvFactory = nn.Conv2d) -> nn.Module:
    """Identity when the shape is kept, else a strided 1x1 ``conv`` + BN ("option B")."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return conv_bn(in_ch, out_ch, 1, stride, act=None, conv=conv)


class ResNet(nn.Module):
    """``stem`` -> stages of residual blocks -> global average pool -> linear classifier.

    ``stages`` lists ``(out_ch, blocks, first_stride)``; ``block`` builds each residual block.
    """

    def __init__(self, stem: nn.Module, stem_ch: int, stages: tuple[tuple[int, int, int], ...],
                 block: BlockFactory, num_classes: int) -> None:
        super().__init__()
        self.stem = stem
        layers = []
        in_ch = stem_ch
        for out_ch, blocks, first_stride in stages:
            for i in range(blocks):
                layers.append(block(in_ch, out_ch, first_stride if i == 0 else 1))
                in_ch = out_ch
        self.stages = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.stages(self.stem(x)))))


def imagenet_stem() -> nn.Sequential:
    """7x7/2 conv (64) + BN + ReLU, then 3x3/2 max pool: 224x224 -> 56x56."""
    return nn.Sequential(conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))


def _basic_block(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    return BasicBlock(in_ch, out_ch, stride, projection_shortcut(in_ch, out_ch, stride))


def _cifar_block(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    shortcut = nn.Identity() if stride == 1 and in_ch == out_ch else PadShortcut(in_ch, out_ch, stride)
    return BasicBlock(in_ch, out_ch, stride, shortcut)


def resnet18(num_classes: int = 1000) -> ResNet:
    """ImageNet ResNet-18: 4 stages of 2 basic blocks (64, 128, 256, 512 channels)."""
    stages = ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2))
    return ResNet(imagenet_stem(), 64, stages, _basic_block, num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    """ImageNet ResNet-50: 3-4-6-3 bottleneck blocks with 256, 512, 1024, 2048 output channels."""
    return ResNet(imagenet_stem(), 64, RESNET50_STAGES, Bottleneck, num_classes)


def resnet20(num_classes: int = 10) -> ResNet:
    """CIFAR ResNet-20 (n = 3): 3x3 conv (16) stem, 3 stages of 3 basic blocks (16, 32, 64)."""
    return ResNet(conv_bn(3, 16, 3), 16, RESNET20_STAGES, _cifar_block, num_classes)

"""GhostNetV2 1.0x (Tang et al., "GhostNetV2: Enhance Cheap Operation with Long-Range
Attention", NeurIPS 2022): 6.1M parameters, 167M FLOPs (multiply-adds) at 224x224 in its ImageNet
comparison table (and abstract: "75.3% top-1 accuracy on ImageNet with 167M FLOPs").

GhostNet's layout (:mod:`models.networks.ghostnet`) with DFC attention on the expanding Ghost
module of every bottleneck but the first two: a gate computed on the 2x2 average-pooled input
by a 1x1 conv to the output width, a 1x5 and a 5x1 depthwise conv (each with BN) and a sigmoid,
upsampled (nearest) to the Ghost module's output and multiplied into it. The "decoupled fully
connected" attention thus sees whole rows and columns at a quarter of the pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.networks.blocks import conv_bn
from models.networks.ghostnet import GhostModule, GhostNet

#: Bottlenecks before this index keep GhostNet's plain Ghost module (the authors' ``layer_id``).
FIRST_ATTENTION = 2


def _strip_conv(channels: int, kernel: tuple[int, int]) -> nn.Sequential:
    """Depthwise ``1 x k`` or ``k x 1`` convolution ("same" padding, no bias) + BN."""
    padding = (kernel[0] // 2, kernel[1] // 2)
    return nn.Sequential(nn.Conv2d(channels, channels, kernel, 1, padding, groups=channels, bias=False),
                         nn.BatchNorm2d(channels))


class DFCGhostModule(GhostModule):
    """A Ghost module whose output is multiplied by a DFC attention gate of its input."""

    def __init__(self, in_ch: int, out_ch: int, *, relu: bool) -> None:
        super().__init__(in_ch, out_ch, relu=relu)
        self.gate = nn.Sequential(
            nn.AvgPool2d(2),
            conv_bn(in_ch, out_ch, 1, act=None),
            _strip_conv(out_ch, (1, 5)),
            _strip_conv(out_ch, (5, 1)),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out * F.interpolate(self.gate(x), size=out.shape[-2:], mode="nearest")


def _ghostv2_module(index: int, in_ch: int, out_ch: int, relu: bool) -> GhostModule:
    if relu and index >= FIRST_ATTENTION:
        return DFCGhostModule(in_ch, out_ch, relu=relu)
    return GhostModule(in_ch, out_ch, relu=relu)


def ghostnetv2(num_classes: int = 1000, width: float = 1.0) -> GhostNet:
    """GhostNetV2 ``width``x (1.0x: 6.1M parameters, 167M MACs on 3x224x224)."""
    return GhostNet(num_classes=num_classes, width=width, ghost=_ghostv2_module)

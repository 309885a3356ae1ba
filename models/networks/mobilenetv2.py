"""MobileNetV2 1.0 for ImageNet (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018): 3.4-3.5M parameters, 300M MACs at 224x224.

Each inverted residual expands with a 1x1 convolution (factor t), filters with a 3x3 depthwise
convolution, and projects back with a linear 1x1 convolution; the residual is added when input
and output shapes match.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from models.networks.blocks import conv_bn, make_divisible

#: The paper's Table 2: (expansion t, out channels c, repeats n, first stride s).
MOBILENETV2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class InvertedResidual(nn.Module):
    """[1x1 expand + ReLU6] -> 3x3 depthwise + ReLU6 -> 1x1 linear projection (+ input).

    EfficientNet's MBConv is the same block with another ``kernel`` and ``act`` and a
    squeeze-excite ``se(mid_ch)`` after the depthwise conv.
    """

    def __init__(self, in_ch: int, out_ch: int, *, stride: int, expansion: int, kernel: int = 3,
                 act: type[nn.Module] = nn.ReLU6,
                 se: Callable[[int], nn.Module] | None = None) -> None:
        super().__init__()
        mid_ch = in_ch * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn(in_ch, mid_ch, 1, act=act))
        layers.append(conv_bn(mid_ch, mid_ch, kernel, stride, groups=mid_ch, act=act))
        if se is not None:
            layers.append(se(mid_ch))
        layers.append(conv_bn(mid_ch, out_ch, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    """Stem 3x3/2 conv (32) -> 17 inverted residuals -> 1x1 conv (1280) -> pool -> classifier."""

    def __init__(self, num_classes: int = 1000, width: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        in_ch = make_divisible(32 * width, 8)
        self.stem = conv_bn(3, in_ch, 3, 2, act=nn.ReLU6)
        blocks = []
        for expansion, out, repeats, first_stride in MOBILENETV2_STAGES:
            out_ch = make_divisible(out * width, 8)
            for i in range(repeats):
                blocks.append(InvertedResidual(in_ch, out_ch, stride=first_stride if i == 0 else 1,
                                               expansion=expansion))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        last_ch = make_divisible(1280 * max(1.0, width), 8)
        self.last = conv_bn(in_ch, last_ch, 1, act=nn.ReLU6)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(last_ch, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.last(self.blocks(self.stem(x))))


def mobilenetv2(num_classes: int = 1000, width: float = 1.0) -> MobileNetV2:
    """MobileNetV2 ``width`` (1.0: 3.5M parameters, 300M MACs on 3x224x224)."""
    return MobileNetV2(num_classes=num_classes, width=width)

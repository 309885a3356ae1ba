"""EfficientNet-B0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019: 5.3M parameters, 0.39G FLOPs at 224x224, Table 2) and the TinyNets scaled
down from it (Han et al., "Model Rubik's Cube: Twisting Resolution, Depth and Width for
TinyNets", NeurIPS 2020).

EfficientNet-B0 stacks MBConv blocks: MobileNetV2's inverted residual with SiLU (swish), 3x3 or
5x5 depthwise convolutions and a squeeze-excite gate (SiLU, sigmoid) reducing to a quarter of
the block's *input* channels. A TinyNet twists B0's three dimensions by the paper's rule:
resolution ``r``, width ``w`` (channels ``w x c`` rounded to multiples of 8 with
:func:`~models.networks.blocks.make_divisible`; the 32-channel stem and the 1280-channel head
are kept) and depth ``d`` (each stage repeats ``max(1, round(d x n))`` blocks).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from models.networks.blocks import SqueezeExcite, conv_bn, make_divisible
from models.networks.mobilenetv2 import InvertedResidual

#: EfficientNet-B0's stages (Tan & Le 2019, Table 1): (expansion, kernel, first stride, out
#: channels, repeats).
EFFICIENTNET_B0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)

#: TinyNet-A..E as ``(resolution, width w, depth d)``: the paper's twisted (r, w, d), with the
#: resolution int(224 r) as the authors' code computes it.
TINYNETS: dict[str, tuple[int, float, float]] = {
    "a": (192, 1.0, 1.2),
    "b": (188, 0.75, 1.1),
    "c": (184, 0.54, 0.85),
    "d": (152, 0.54, 0.695),
    "e": (106, 0.51, 0.6),
}


class EfficientNet(nn.Module):
    """3x3/2 stem conv (32) -> MBConv stages -> 1x1 conv (1280) -> pool -> dropout -> linear,
    with B0's channels scaled by ``width`` and its repeats by ``depth``."""

    def __init__(self, num_classes: int = 1000, width: float = 1.0, depth: float = 1.0,
                 dropout: float = 0.2) -> None:
        super().__init__()
        in_ch = 32
        self.stem = conv_bn(3, in_ch, 3, 2, act=nn.SiLU)
        blocks = []
        for expansion, kernel, first_stride, out, repeats in EFFICIENTNET_B0_STAGES:
            out_ch = make_divisible(out * width, 8)
            for i in range(max(1, round(repeats * depth))):
                se = partial(_se, reduced=make_divisible(in_ch * 0.25, 1))
                blocks.append(InvertedResidual(in_ch, out_ch, stride=first_stride if i == 0 else 1,
                                               expansion=expansion, kernel=kernel, act=nn.SiLU, se=se))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        last_ch = max(1280, make_divisible(1280 * width, 8))
        self.last = conv_bn(in_ch, last_ch, 1, act=nn.SiLU)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(last_ch, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.last(self.blocks(self.stem(x))))


def _se(channels: int, reduced: int) -> SqueezeExcite:
    return SqueezeExcite(channels, reduced, act=nn.SiLU, gate=nn.Sigmoid)


def efficientnet_b0(num_classes: int = 1000) -> EfficientNet:
    """EfficientNet-B0 on 3x224x224 (5.3M parameters, 0.39G MACs)."""
    return EfficientNet(num_classes=num_classes)


def tinynet(variant: str, num_classes: int = 1000) -> EfficientNet:
    """TinyNet-``variant`` (``a`` .. ``e``); its input is 3 x r x r with r = ``TINYNETS[variant][0]``."""
    if variant not in TINYNETS:
        raise ValueError(f"TinyNet variant must be one of {', '.join(TINYNETS)}, not {variant!r}")
    _, width, depth = TINYNETS[variant]
    return EfficientNet(num_classes=num_classes, width=width, depth=depth)

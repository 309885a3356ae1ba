"""GhostNet 1.0x for ImageNet (Han et al., "GhostNet: More Features from Cheap Operations",
CVPR 2020): 5.2M parameters, 141M MACs at 224x224.

A Ghost module makes half of its output channels with an ordinary 1x1 convolution and the other
half from those with a cheap 3x3 depthwise convolution (ratio s = 2). Ghost bottlenecks stack two
Ghost modules (expand, then project), with a depthwise stride-2 convolution between them when
they downsample and optional squeeze-and-excite (SE). Channel counts are width-scaled and rounded
to multiples of 4.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from models.networks.blocks import SqueezeExcite, conv_bn, make_divisible

#: The paper's Table 1, one row per Ghost bottleneck: (kernel, expansion, out, SE, stride).
#: The depthwise kernel sizes (3 or 5) follow the MobileNetV3 stage layout the paper adopts.
GHOST_STAGES: tuple[tuple[int, int, int, bool, int], ...] = (
    (3, 16, 16, False, 1),
    (3, 48, 24, False, 2),
    (3, 72, 24, False, 1),
    (5, 72, 40, True, 2),
    (5, 120, 40, True, 1),
    (3, 240, 80, False, 2),
    (3, 200, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 480, 112, True, 1),
    (3, 672, 112, True, 1),
    (5, 672, 160, True, 2),
    (5, 960, 160, False, 1),
    (5, 960, 160, True, 1),
    (5, 960, 160, False, 1),
    (5, 960, 160, True, 1),
)

#: ``ghost(index, in_ch, out_ch, relu) -> module``: the Ghost module of the ``index``-th
#: bottleneck (0-based), expanding (``relu=True``) or projecting. GhostNetV2 and RepGhostNet
#: differ from GhostNet only here, in the stage table and in the last conv's width.
GhostFactory = Callable[[int, int, int, bool], nn.Module]


class GhostModule(nn.Module):
    """``out_ch`` feature maps: ``ceil(out_ch / ratio)`` intrinsic ones from a 1x1 convolution,
    the rest ("ghosts") from a 3x3 depthwise convolution of the intrinsic ones."""

    def __init__(self, in_ch: int, out_ch: int, *, relu: bool, ratio: int = 2) -> None:
        super().__init__()
        self.out_ch = out_ch
        intrinsic = math.ceil(out_ch / ratio)
        act = nn.ReLU if relu else None
        self.primary = conv_bn(in_ch, intrinsic, 1, act=act)
        self.cheap = conv_bn(intrinsic, intrinsic * (ratio - 1), 3, groups=intrinsic, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        intrinsic = self.primary(x)
        return torch.cat([intrinsic, self.cheap(intrinsic)], dim=1)[:, : self.out_ch]


def ghost_module(index: int, in_ch: int, out_ch: int, relu: bool) -> GhostModule:
    """GhostNet's own :data:`GhostFactory`: the same :class:`GhostModule` everywhere."""
    return GhostModule(in_ch, out_ch, relu=relu)


class GhostBottleneck(nn.Module):
    """Ghost module (expand, ReLU) -> [depthwise stride-2 conv] -> [SE] -> Ghost module (project,
    linear), plus a shortcut: identity, or depthwise conv + 1x1 conv when shape changes.
    ``ghost`` builds the two Ghost modules of the ``index``-th bottleneck."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, *, kernel: int, stride: int,
                 se: bool, index: int = 0, ghost: GhostFactory = ghost_module) -> None:
        super().__init__()
        layers: list[nn.Module] = [ghost(index, in_ch, mid_ch, True)]
        if stride > 1:
            layers.append(conv_bn(mid_ch, mid_ch, kernel, stride, groups=mid_ch, act=None))
        if se:
            layers.append(SqueezeExcite(mid_ch, make_divisible(mid_ch * 0.25, 4)))
        layers.append(ghost(index, mid_ch, out_ch, False))
        self.body = nn.Sequential(*layers)
        if stride == 1 and in_ch == out_ch:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                conv_bn(in_ch, in_ch, kernel, stride, groups=in_ch, act=None),
                conv_bn(in_ch, out_ch, 1, act=None),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class GhostNet(nn.Module):
    """Stem 3x3/2 conv (16) -> 16 Ghost bottlenecks -> 1x1 conv (960) -> global pool ->
    1x1 conv (1280, bias) + ReLU -> dropout -> linear classifier.

    ``stages`` (rows as :data:`GHOST_STAGES`), ``last`` (the last 1x1 conv's width before
    scaling) and ``ghost`` let the GhostNet family (V2, RepGhostNet) reuse this skeleton.
    """

    def __init__(self, num_classes: int = 1000, width: float = 1.0, dropout: float = 0.2, *,
                 stages: tuple[tuple[int, int, int, bool, int], ...] = GHOST_STAGES, last: int = 960,
                 ghost: GhostFactory = ghost_module) -> None:
        super().__init__()
        in_ch = make_divisible(16 * width, 4)
        self.stem = conv_bn(3, in_ch, 3, 2)
        blocks = []
        for index, (kernel, expansion, out, se, stride) in enumerate(stages):
            out_ch = make_divisible(out * width, 4)
            mid_ch = make_divisible(expansion * width, 4)
            blocks.append(GhostBottleneck(in_ch, mid_ch, out_ch, kernel=kernel, stride=stride, se=se,
                                          index=index, ghost=ghost))
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        last_ch = make_divisible(last * width, 4)
        self.last = conv_bn(in_ch, last_ch, 1)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(last_ch, 1280, 1, bias=True),
            nn.ReLU(),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(1280, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.last(self.blocks(self.stem(x))))


def ghostnet(num_classes: int = 1000, width: float = 1.0) -> GhostNet:
    """GhostNet ``width``x (1.0x: 5.2M parameters, 141M MACs on 3x224x224)."""
    return GhostNet(num_classes=num_classes, width=width)

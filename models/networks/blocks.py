"""Building blocks shared by several networks of :mod:`models.networks`.

Every block is built from ``nn.Module`` layers (not functional calls) so that a hook-based
extractor sees each convolution, normalization and activation as its own layer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: ``conv(in_ch, out_ch, kernel, stride, padding, groups=..., bias=...)``: ``nn.Conv2d`` or a
#: layer of :mod:`models.layers` with its signature (``Adder2d``, ``BinaryConv2d`` ...).
ConvFactory = Callable[..., nn.Conv2d]


def make_divisible(value: float, divisor: int) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never below ``divisor``
    and never more than 10% below ``value``.

    This is the rounding rule of MobileNetV2 (Sandler et al., CVPR 2018, divisor 8) that
    GhostNet (Han et al., CVPR 2020) reuses with divisor 4; it keeps width-scaled channel counts
    hardware-friendly.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, *, groups: int = 1,
            act: type[nn.Module] | None = nn.ReLU, conv: ConvFactory = nn.Conv2d) -> nn.Sequential:
    """``kernel x kernel`` convolution ("same" padding, no bias), batch norm, then ``act``.

    ``act=None`` leaves the activation out (linear bottleneck outputs, projection shortcuts);
    ``conv`` picks the layer class (an AdderNet network passes ``Adder2d``).
    """
    layers: list[nn.Module] = [
        conv(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel gate (Hu et al., CVPR 2018): global pool, 1x1 conv to ``reduced`` channels,
    ``act``, 1x1 conv back, ``gate``; the input is multiplied by the gate.

    GhostNet and its family use ReLU and a hard sigmoid, EfficientNet SiLU and a sigmoid; each
    network rounds ``reduced`` its own way.
    """

    def __init__(self, channels: int, reduced: int, *, act: type[nn.Module] = nn.ReLU,
                 gate: type[nn.Module] = nn.Hardsigmoid) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, reduced, 1, bias=True),
            act(),
            nn.Conv2d(reduced, channels, 1, bias=True),
            gate(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)

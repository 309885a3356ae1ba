"""EDSR-baseline super-resolution (Lim et al., "Enhanced Deep Residual Networks for Single
Image Super-Resolution", CVPRW 2017): 16 residual blocks of 64 channels, 1.5M parameters.

The RGB mean is subtracted, a 3x3 conv lifts the image to 64 channels, 16 blocks of
conv-ReLU-conv plus identity (no batch norm, residual scaling 1 in the baseline) and one more
3x3 conv form the body with a global skip around it, and the upsampler repeats a 3x3 conv to
4x the channels + pixel shuffle by 2 (one conv to 9x + shuffle by 3 for x3); a last 3x3 conv
returns RGB and the mean is added back. Every conv has a bias. Written with plain convs, so
:func:`models.convert.convert` makes the AdderSR variant (Song et al., "AdderSR", CVPR 2021)
with the first and the last conv kept full precision.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: The DIV2K RGB mean that EDSR subtracts from its input (in [0, 1] units).
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def _conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=True)


class ResBlock(nn.Module):
    """3x3 conv -> ReLU -> 3x3 conv, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv3x3(channels, channels), nn.ReLU(), _conv3x3(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


def upsampler(channels: int, scale: int) -> nn.Sequential:
    """Sub-pixel upsampling by ``scale`` (a power of two, or 3): conv to ``r^2`` x the channels +
    pixel shuffle by ``r``, once per factor ``r``."""
    if scale == 3:
        factors = [3]
    elif scale >= 2 and scale & (scale - 1) == 0:
        factors = [2] * int(math.log2(scale))
    else:
        raise ValueError(f"scale must be 3 or a power of two, not {scale}")
    layers: list[nn.Module] = []
    for r in factors:
        layers += [_conv3x3(channels, r * r * channels), nn.PixelShuffle(r)]
    return nn.Sequential(*layers)


class EDSR(nn.Module):
    """Mean shift -> head conv -> ``blocks`` residual blocks + conv (global skip) -> upsampler
    -> tail conv -> mean shift back."""

    def __init__(self, scale: int = 4, blocks: int = 16, channels: int = 64) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(DIV2K_MEAN).reshape(1, 3, 1, 1))
        self.head = _conv3x3(3, channels)
        self.body = nn.Sequential(*(ResBlock(channels) for _ in range(blocks)), _conv3x3(channels, channels))
        self.upsample = upsampler(channels, scale)
        self.tail = _conv3x3(channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x - self.mean)
        return self.tail(self.upsample(self.body(features) + features)) + self.mean


def edsr_baseline(scale: int = 4) -> EDSR:
    """EDSR-baseline x``scale`` (x4: 1.52M parameters; 8.12G MACs on a 3x64x64 input)."""
    return EDSR(scale=scale)

"""RepGhostNet 1.0x as deployed (Chen et al., "RepGhost: A Hardware-Efficient Ghost Module via
Re-parameterization", 2022, arXiv:2211.06088): 4.1M parameters, 142M MACs at 224x224 in its
ImageNet results (the authors' README gives the same, counted after re-parameterization, on
conv and linear layers only).

A RepGhost module does not concatenate: its cheap depthwise 3x3 conv maps the ``out_ch``
intrinsic features to the ``out_ch`` outputs, and the identity (+ BN) branch that training
adds to it is folded into that conv's weights and bias at inference, so the deployed module is a
1x1 conv + BN (+ ReLU), then a depthwise 3x3 conv with bias (+ ReLU). The bottlenecks follow
GhostNet's with the expansion widths halved (the module no longer doubles them) and the last
1x1 conv twice the last expansion, 960.
"""

from __future__ import annotations

import torch
from torch import nn

from models.networks.blocks import conv_bn
from models.networks.ghostnet import GhostNet

#: The authors' stage table (as in their released code), rows as GhostNet's: (kernel, expansion, out,
#: SE, stride).
REPGHOST_STAGES: tuple[tuple[int, int, int, bool, int], ...] = (
    (3, 8, 16, False, 1),
    (3, 24, 24, False, 2),
    (3, 36, 24, False, 1),
    (5, 36, 40, True, 2),
    (5, 60, 40, True, 1),
    (3, 120, 80, False, 2),
    (3, 100, 80, False, 1),
    (3, 120, 80, False, 1),
    (3, 120, 80, False, 1),
    (3, 240, 112, True, 1),
    (3, 336, 112, True, 1),
    (5, 336, 160, True, 2),
    (5, 480, 160, False, 1),
    (5, 480, 160, True, 1),
    (5, 480, 160, False, 1),
    (5, 480, 160, True, 1),
)


class RepGhostModule(nn.Module):
    """Deployed RepGhost module: 1x1 conv + BN (+ ReLU) -> depthwise 3x3 conv with the folded
    identity/BN as its bias (+ ReLU)."""

    def __init__(self, in_ch: int, out_ch: int, *, relu: bool) -> None:
        super().__init__()
        act = nn.ReLU if relu else None
        self.primary = conv_bn(in_ch, out_ch, 1, act=act)
        self.cheap = nn.Conv2d(out_ch, out_ch, 3, 1, 1, groups=out_ch, bias=True)
        self.act = nn.ReLU() if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.cheap(self.primary(x)))


def _repghost_module(index: int, in_ch: int, out_ch: int, relu: bool) -> RepGhostModule:
    return RepGhostModule(in_ch, out_ch, relu=relu)


def repghostnet(num_classes: int = 1000, width: float = 1.0) -> GhostNet:
    """Deployed RepGhostNet ``width``x (1.0x: 4.1M parameters, 142M MACs on 3x224x224)."""
    return GhostNet(num_classes=num_classes, width=width, stages=REPGHOST_STAGES,
                    last=2 * REPGHOST_STAGES[-1][1], ghost=_repghost_module)

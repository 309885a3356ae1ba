"""AdderNet ResNets (Chen et al., "AdderNet: Do We Really Need Multiplications in Deep
Learning?", CVPR 2020): every convolution of the residual stages, projection shortcuts included,
is an :class:`~models.layers.Adder2d` (``y = -sum |x - w|``); the first convolution and the
classifier stay full precision, as in the paper and its authors' released models.

* ``addernet_resnet20``: CIFAR ResNet-20 with adder 1x1 + BN projection shortcuts where the
  shape changes (the authors' "option B", not the parameter-free option A of
  :func:`~models.networks.resnet.resnet20`): 40.37M adder MACs + 0.44M MACs. The paper's
  Table 1 counts 41.17M for the whole network (82.34M additions: a subtraction and an
  accumulation per adder MAC).
* ``addernet_resnet50``: ImageNet ResNet-50 with the stride on the 3x3 adder convolution, as the
  authors' released code has it (3.97G adder MACs + 0.12G MACs); the paper's Table 2 gives 3.9G
  (7.7G additions), the count of the stride-on-1x1 original.
"""

from __future__ import annotations

from torch import nn

from models.layers import Adder2d
from models.networks.blocks import conv_bn
from models.networks.resnet import (RESNET20_STAGES, RESNET50_STAGES, BasicBlock, Bottleneck, ResNet,
                                    imagenet_stem, projection_shortcut)


def _adder_basic_block(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    shortcut = projection_shortcut(in_ch, out_ch, stride, conv=Adder2d)
    return BasicBlock(in_ch, out_ch, stride, shortcut, conv=Adder2d)


def _adder_bottleneck(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    return Bottleneck(in_ch, out_ch, stride, conv=Adder2d)


def addernet_resnet20(num_classes: int = 10) -> ResNet:
    """AdderNet ResNet-20 on 3x32x32: real 3x3 stem (16), 18 adder 3x3 convs, 2 adder 1x1
    shortcuts, real classifier."""
    return ResNet(conv_bn(3, 16, 3), 16, RESNET20_STAGES, _adder_basic_block, num_classes)


def addernet_resnet50(num_classes: int = 1000) -> ResNet:
    """AdderNet ResNet-50 on 3x224x224: real 7x7 stem, 52 adder convs (48 in the bottlenecks,
    4 projection shortcuts), real classifier."""
    return ResNet(imagenet_stem(), 64, RESNET50_STAGES, _adder_bottleneck, num_classes)

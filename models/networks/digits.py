"""A small CNN for scikit-learn's 8x8 handwritten digits (1x8x8 input, 10 classes).

Small enough to train in seconds on a CPU and to simulate layer by layer in RTL (every
convolution has at most 64 channels), deep enough to pass 97% test accuracy with plain
convolutions: 3x3 conv 16 -> 3x3/2 conv 32 -> 3x3 conv 64, each with BN and ReLU, then global
average pool and a linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from models.networks.blocks import conv_bn


class DigitsCNN(nn.Module):
    """conv 1->16 (8x8) -> conv 16->32 stride 2 (4x4) -> conv 32->64 (4x4) -> pool -> linear."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(conv_bn(1, 16, 3), conv_bn(16, 32, 3, 2), conv_bn(32, 64, 3))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.features(x))))


def digits_cnn(num_classes: int = 10) -> DigitsCNN:
    """The digits CNN on 1x8x8 inputs."""
    return DigitsCNN(num_classes=num_classes)

"""LeNet-style encoder and heads for MultiMNIST (Sener & Koltun, NeurIPS 2018, Appendix).

Shared: conv(1->10, 5x5) - maxpool 2 - ReLU - conv(10->20, 5x5) - maxpool 2 - ReLU -
flatten - linear(320->50) - ReLU. Head per task: linear(50->50) - ReLU - linear(50->10).
On the 28x28 MultiMNIST images this gives the 320-d flatten of Sener & Koltun's model;
their first convolution is 9x9 on a larger canvas, here it is 5x5 so that 28x28 inputs
reach the same 320-d layer (documented deviation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


class LeNetEncoder(nn.Module):
    def __init__(self, width: int = 50) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 10, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(10, 20, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(320, width),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def lenet(
    tasks: Sequence[Any], *, width: int = 50, num_classes: int = 10
) -> tuple[nn.Module, dict[str, nn.Module]]:
    """Backbone factory: the shared LeNet encoder and one two-layer head per task."""
    heads: dict[str, nn.Module] = {
        t.name: nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, num_classes))
        for t in tasks
    }
    return LeNetEncoder(width), heads

"""A small CNN encoder with linear heads, for the offline tier's digit envs (28x28 or 16x16 inputs).

Shared: conv(1->c1, 3x3, pad 1) - ReLU - maxpool 2 - conv(c1->c2, 3x3, pad 1) - ReLU -
maxpool 2 - flatten - linear(c2 * (s/4)^2 -> hidden) - ReLU, for ``s x s`` inputs (``s``
divisible by 4). Head per task: linear(hidden -> num_classes). Sized for CPUs, not for
accuracy: the env pages (docs/envs/digit-*.md) give its budget and what it reaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


class SmallCNNEncoder(nn.Module):
    def __init__(self, image_size: int = 28, channels: Sequence[int] = (16, 32), hidden: int = 64) -> None:
        super().__init__()
        if image_size % 4 or image_size < 4:
            raise ValueError(f"small_cnn needs an image size divisible by 4, got {image_size}")
        if len(channels) != 2:
            raise ValueError(f"small_cnn takes two channel widths, got {list(channels)}")
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * (image_size // 4) ** 2, hidden),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def small_cnn(
    tasks: Sequence[Any],
    *,
    image_size: int = 28,
    channels: Sequence[int] = (16, 32),
    hidden: int = 64,
    num_classes: int = 2,
) -> tuple[nn.Module, dict[str, nn.Module]]:
    """Backbone factory: the shared small CNN and one linear head per task."""
    heads: dict[str, nn.Module] = {t.name: nn.Linear(hidden, num_classes) for t in tasks}
    return SmallCNNEncoder(image_size, channels, hidden), heads

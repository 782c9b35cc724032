"""An MLP encoder with linear heads, for fixed-length feature vectors (``qm9-small-hps``).

Shared: ``depth`` blocks of linear(-> hidden) - ReLU on a ``(B, in_features)`` input. Head
per task: linear(hidden -> out_dim) (1 for a regression target).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn


def mlp(
    tasks: Sequence[Any],
    *,
    in_features: int,
    hidden: int = 128,
    depth: int = 2,
    out_dim: int = 1,
) -> tuple[nn.Module, dict[str, nn.Module]]:
    """Backbone factory: the shared MLP and one linear head per task."""
    if depth < 1 or hidden < 1 or in_features < 1:
        raise ValueError(
            f"mlp needs depth, hidden and in_features >= 1, got {depth}, {hidden}, {in_features}"
        )
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers), {t.name: nn.Linear(hidden, out_dim) for t in tasks}

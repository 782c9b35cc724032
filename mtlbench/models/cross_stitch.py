"""Cross-stitch networks (Misra, Shrivastava, Gupta & Hebert, "Cross-stitch Networks for
Multi-task Learning", CVPR 2016), as used in Lin et al. (TMLR 2022), Section 5.6.

One copy of the backbone's encoder per task; after every stage of the encoder a
cross-stitch unit replaces each task's feature map by a learned linear combination of all
tasks' maps, ``x'_t = sum_s alpha[t, s] x_s`` (one scalar per task pair and stage, the
paper's Eq. 1). Units start near the identity (the paper's ``alpha_S = 0.9`` on the
diagonal; the remaining 0.1 is shared equally by the other tasks, so every row sums to 1).
The encoder must be a :class:`~mtlbench.models.resnet_dilated.StagedEncoder`; the stem is
not mixed. LibMTL's ``Cross_stitch`` differs: it mixes the inputs of stages 2-4 only, and
starts every unit at all ones.

Parameter split. Through the units, every encoder copy receives the gradients of every
task, so all encoder copies and all units are *shared parameters* (what a gradient-level
policy weights); the heads are task parameters. Each task has its own features, so
``encode`` returns ``{task: feature}`` and ``shared_representation`` is False.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from mtlbench.models.base import MTLModel, Representation
from mtlbench.models.resnet_dilated import StagedEncoder, encode_linked, staged_copies

__all__ = ["CrossStitch", "CrossStitchUnit", "cross_stitch"]


class CrossStitchUnit(nn.Module):
    """``x'_t = sum_s weight[t, s] x_s``; starts at ``self_weight`` on the diagonal."""

    def __init__(self, num_tasks: int, self_weight: float = 0.9) -> None:
        super().__init__()
        if not 0.0 <= self_weight <= 1.0:
            raise ValueError(f"self_weight must be in [0, 1], got {self_weight}")
        other = (1.0 - self_weight) / (num_tasks - 1) if num_tasks > 1 else 0.0
        weight = torch.full((num_tasks, num_tasks), other)
        weight.fill_diagonal_(self_weight if num_tasks > 1 else 1.0)
        self.weight = nn.Parameter(weight)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        mixed = torch.einsum("ts,s...->t...", self.weight, torch.stack(list(features)))
        return list(mixed.unbind(0))


class CrossStitch(MTLModel):
    """Per-task encoder copies joined by a cross-stitch unit after every stage."""

    shared_representation = False

    def __init__(
        self,
        encoders: Sequence[StagedEncoder],
        heads: Mapping[str, nn.Module],
        *,
        self_weight: float = 0.9,
    ) -> None:
        super().__init__(list(heads))
        if len(encoders) != len(self.task_names):
            raise ValueError(f"{len(encoders)} encoders for {len(self.task_names)} tasks")
        self.encoders = nn.ModuleList(encoders)
        num_stages = len(encoders[0].stages)
        self.units = nn.ModuleList(
            CrossStitchUnit(len(self.task_names), self_weight) for _ in range(num_stages)
        )
        self.heads = nn.ModuleDict(dict(heads))

    def encode(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> Representation:
        encoders = cast("Sequence[StagedEncoder]", self.encoders)  # built from StagedEncoders
        feats = encode_linked(encoders, list(self.units), x, "cross_stitch")
        return dict(zip(self.task_names, feats, strict=True))

    def shared_parameters(self) -> list[nn.Parameter]:
        params = [*self.encoders.parameters(), *self.units.parameters()]
        return [p for p in params if p.requires_grad]


def cross_stitch(
    factory: Callable[..., Any],
    tasks: Sequence[Any],
    *,
    cross_stitch_init: float = 0.9,
    **kwargs: Any,
) -> MTLModel:
    """Build a cross-stitch network: ``factory`` is called once per task for the encoder copies.

    With pretrained weights every copy starts from them; from random init each copy is
    initialised independently. The heads come from the first call. ``cross_stitch_init`` is the diagonal of every unit at initialisation.
    """
    encoders, heads = staged_copies(factory, tasks, "cross_stitch", **kwargs)
    return CrossStitch(encoders, heads, self_weight=cross_stitch_init)

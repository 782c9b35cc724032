"""NDDR-CNN (Gao, Ma, Zhao, Liu & Yuille, "NDDR-CNN: Layerwise Feature Fusing in Multi-Task
CNNs by Neural Discriminative Dimensionality Reduction", CVPR 2019), as used in Lin et al.
(TMLR 2022), Section 5.6.

One copy of the backbone's encoder per task; after every stage an NDDR layer fuses them:
for each task, the concatenation of all tasks' feature maps (``T * C`` channels) goes
through a 1x1 convolution back to ``C`` channels, batch normalisation and ReLU. The 1x1
convolutions start as a weighted identity (the paper's initialisation: ``alpha = 0.9`` on
the task's own channels; the remaining 0.1 is shared equally by the other tasks), the
batch norms use momentum 0.05 as in the NDDR-CNN code. The encoder must be a
:class:`~mtlbench.models.resnet_dilated.StagedEncoder`; the stem is not fused.

Parameter split. Through the NDDR layers every encoder copy receives the gradients of
every task, so all encoder copies and all NDDR layers but the last are *shared
parameters*. The last NDDR layer's per-task convolution and batch norm produce only that
task's feature, so, like the heads, they are task parameters. ``encode`` returns ``{task: feature}`` and ``shared_representation`` is
False.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from mtlbench.models.base import MTLModel, Representation
from mtlbench.models.resnet_dilated import StagedEncoder, encode_linked, staged_copies

__all__ = ["NDDR", "NDDRLayer", "nddr"]


class NDDRLayer(nn.Module):
    """Per task: ReLU(BN(conv1x1(concat of all tasks' features))), initialised near identity."""

    def __init__(
        self, num_tasks: int, channels: int, self_weight: float = 0.9, bn_momentum: float = 0.05
    ) -> None:
        super().__init__()
        if not 0.0 <= self_weight <= 1.0:
            raise ValueError(f"self_weight must be in [0, 1], got {self_weight}")
        convs = [
            nn.Conv2d(num_tasks * channels, channels, kernel_size=1, bias=False) for _ in range(num_tasks)
        ]
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels, momentum=bn_momentum) for _ in range(num_tasks))
        self.relu = nn.ReLU()
        other = (1.0 - self_weight) / (num_tasks - 1) if num_tasks > 1 else 0.0
        eye = torch.eye(channels)
        with torch.no_grad():
            for t, conv in enumerate(convs):
                blocks = [
                    (self_weight if s == t or num_tasks == 1 else other) * eye for s in range(num_tasks)
                ]
                conv.weight.copy_(torch.cat(blocks, dim=1)[:, :, None, None])

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        stacked = torch.cat(list(features), dim=1)
        return [self.relu(norm(conv(stacked))) for conv, norm in zip(self.convs, self.norms, strict=True)]


class NDDR(MTLModel):
    """Per-task encoder copies fused by an NDDR layer after every stage."""

    shared_representation = False

    def __init__(
        self,
        encoders: Sequence[StagedEncoder],
        heads: Mapping[str, nn.Module],
        *,
        self_weight: float = 0.9,
        bn_momentum: float = 0.05,
    ) -> None:
        super().__init__(list(heads))
        if len(encoders) != len(self.task_names):
            raise ValueError(f"{len(encoders)} encoders for {len(self.task_names)} tasks")
        self.encoders = nn.ModuleList(encoders)
        self.fusions = nn.ModuleList(
            NDDRLayer(len(self.task_names), c, self_weight, bn_momentum) for c in encoders[0].stage_channels
        )
        self.heads = nn.ModuleDict(dict(heads))

    def encode(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> Representation:
        encoders = cast("Sequence[StagedEncoder]", self.encoders)  # built from StagedEncoders
        feats = encode_linked(encoders, list(self.fusions), x, "nddr")
        return dict(zip(self.task_names, feats, strict=True))

    def shared_parameters(self) -> list[nn.Parameter]:
        # the last fusion's per-task conv/BN feed only their own task: task parameters
        params = [*self.encoders.parameters(), *self.fusions[:-1].parameters()]
        return [p for p in params if p.requires_grad]


def nddr(
    factory: Callable[..., Any],
    tasks: Sequence[Any],
    *,
    nddr_init: float = 0.9,
    nddr_bn_momentum: float = 0.05,
    **kwargs: Any,
) -> MTLModel:
    """Build an NDDR-CNN: ``factory`` is called once per task for the encoder copies.

    ``nddr_init`` is the weight of a task's own channels in its NDDR convolution at
    initialisation. The heads come from the first call.
    """
    encoders, heads = staged_copies(factory, tasks, "nddr", **kwargs)
    return NDDR(encoders, heads, self_weight=nddr_init, bn_momentum=nddr_bn_momentum)

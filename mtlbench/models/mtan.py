"""Multi-Task Attention Network (Liu, Johns & Davison, "End-to-End Multi-Task Learning with
Attention", CVPR 2019), as used in Lin et al. (TMLR 2022), Section 5.6.

A shared encoder (the trunk) and, per task, soft attention modules that select features
from it stage by stage (the paper's Section 3 and its ResNet version in the official code,
https://github.com/lorenmt/mtan). For stage ``i`` with blocks ``b_1 .. b_k``, let ``u`` be
the output of ``b_1 .. b_{k-1}`` and ``p`` that of ``b_k``. Task ``t``'s attention mask is

* stage 0: ``a = g_t^0(u)``,
* stage i > 0: ``a = g_t^i([u, f_t^{i-1}])`` (channel concatenation),

with ``g`` = conv1x1 - BN - ReLU - conv1x1 - BN - sigmoid; the attended feature is
``a * p``. Before the next stage it passes through a *shared attention encoder* ``f^i``
(a residual block of the encoder's kind, from stage i's to stage i+1's channels) and is
max-pooled to the next stage's resolution when that is smaller. The attended feature of
the last stage is the task's representation.

The encoder must be a :class:`~mtlbench.models.resnet_dilated.StagedEncoder` whose stages
have at least two blocks. Each task has its own attention modules, as in the paper, the
official code and LibMTL's ``MTAN`` (``LibMTL/architecture/MTAN.py`` builds one per task
with a list comprehension since Dec 2021; its first release shared one module among the
tasks by list multiplication).

Parameter split. The shared trunk (stem and stages) and the shared attention encoders
``f^i`` receive every task's gradient: they are the *shared parameters*. (LibMTL counts
only the trunk; the ``f^i`` are shared by construction, so a gradient-level policy weights
them here.) The per-task attention modules and the heads are task parameters.
``encode`` returns ``{task: attended feature}``; ``shared_representation`` is False.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from mtlbench.models.base import MTLModel, Representation
from mtlbench.models.resnet_dilated import StagedEncoder, require_staged

__all__ = ["MTAN", "attention_module", "mtan"]


def attention_module(in_channels: int, out_channels: int) -> nn.Sequential:
    """MTAN's attention ``g``: conv1x1 - BN - ReLU - conv1x1 - BN - sigmoid (bottleneck C/4)."""
    mid = max(out_channels // 4, 1)
    return nn.Sequential(
        nn.Conv2d(in_channels, mid, kernel_size=1),
        nn.BatchNorm2d(mid),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid, out_channels, kernel_size=1),
        nn.BatchNorm2d(out_channels),
        nn.Sigmoid(),
    )


def _match(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Max-pool ``x`` to the spatial size of ``like`` (MTAN's down-sampling between stages)."""
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.adaptive_max_pool2d(x, like.shape[-2:])


class MTAN(MTLModel):
    """Shared trunk with per-task attention over the last block of every stage."""

    shared_representation = False

    def __init__(self, encoder: StagedEncoder, heads: Mapping[str, nn.Module]) -> None:
        super().__init__(list(heads))
        for i, stage in enumerate(encoder.stages):
            if not isinstance(stage, nn.Sequential) or len(stage) < 2:
                raise ValueError(
                    f"MTAN attends over the last block of each stage and needs stages of >= 2 blocks "
                    f"(nn.Sequential); stage {i} is {type(stage).__name__} of length "
                    f"{len(stage) if isinstance(stage, nn.Sequential) else 1}"
                )
        self.encoder = encoder
        ch = encoder.stage_channels
        num_tasks = len(self.task_names)
        self.attention = nn.ModuleList(
            nn.ModuleList(attention_module(c if i == 0 else 2 * c, c) for _ in range(num_tasks))
            for i, c in enumerate(ch)
        )
        self.shared_attention_encoders = nn.ModuleList(
            encoder.make_block(ch[i], ch[i + 1]) for i in range(len(ch) - 1)
        )
        self.heads = nn.ModuleDict(dict(heads))

    def encode(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> Representation:
        if isinstance(x, Mapping):
            raise TypeError("MTAN takes one input shared by all tasks")
        h = self.encoder.stem(x)
        attended: list[torch.Tensor] = []
        last = len(self.encoder.stages) - 1
        for i, module in enumerate(self.encoder.stages):
            stage = cast(nn.Sequential, module)  # checked in __init__
            u = stage[:-1](h)
            h = stage[-1](u)
            new = []
            for t in range(len(self.task_names)):
                g = cast(nn.ModuleList, self.attention[i])[t]
                mask = g(u) if i == 0 else g(torch.cat([u, _match(attended[t], u)], dim=1))
                a = mask * h
                if i < last:
                    a = self.shared_attention_encoders[i](a)
                new.append(a)
            attended = new
        return dict(zip(self.task_names, attended, strict=True))

    def shared_parameters(self) -> list[nn.Parameter]:
        params = [*self.encoder.parameters(), *self.shared_attention_encoders.parameters()]
        return [p for p in params if p.requires_grad]


def mtan(factory: Callable[..., Any], tasks: Sequence[Any], **kwargs: Any) -> MTLModel:
    """Build an MTAN around the backbone's (staged) encoder and heads."""
    encoder, heads = factory(tasks, **kwargs)
    return MTAN(require_staged(encoder, "mtan"), heads)

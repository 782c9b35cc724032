"""The model contract every architecture satisfies, so the env can split shared and task parts.

An :class:`MTLModel` maps inputs to one output per task in two stages::

    rep = model.encode(x)            # shared part (encoder, cross-task units)
    out = model.decode(rep)          # task-specific part: {task: output}

``rep`` is a tensor (hard parameter sharing: the shared representation, what MGDA-UB and
RGW differentiate against), or a ``{task: tensor}`` mapping when each task has its own
inputs (Office-31 style "multi-input" envs) or its own features (Cross-stitch, MTAN,
NDDR-CNN). Architectures with task-specific features and no representation produced by
shared parameters alone set ``shared_representation = False``; the env refuses
representation-level policies on them with a clear error.

``shared_parameters()`` are the parameters every task's gradient flows into (the ones a
gradient-level policy weights); ``task_parameters()`` are all others (heads, and for
MTAN/Cross-stitch the task-specific branches).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

Representation = torch.Tensor | Mapping[str, torch.Tensor]


class MTLModel(nn.Module):
    """Base class: subclasses implement :meth:`encode`, :meth:`decode` and the parameter split."""

    #: whether ``encode`` returns one tensor that every task head reads
    shared_representation: bool = True

    def __init__(self, task_names: Sequence[str]) -> None:
        super().__init__()
        self.task_names = tuple(task_names)

    def encode(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> Representation:
        raise NotImplementedError

    def decode(self, rep: Representation, adapters: nn.ModuleList | None = None) -> dict[str, torch.Tensor]:
        """``{task: heads[task](adapters[t](z_t))}`` for the per-task ``heads`` (an ``nn.ModuleDict``).

        ``z_t`` is the task's entry of a ``{task: tensor}`` representation, or the shared
        tensor itself; a model without a shared representation accepts only the mapping.
        ``adapters`` (RotoGrad's per-task rotations) sit between representation and head.
        """
        heads = getattr(self, "heads", None)
        if not isinstance(heads, nn.ModuleDict):
            raise NotImplementedError(f"{type(self).__name__} has no .heads ModuleDict: override decode()")
        if not isinstance(rep, Mapping) and not self.shared_representation:
            raise TypeError(
                f"{type(self).__name__}.decode expects the {{task: feature}} mapping encode() returns"
            )
        out = {}
        for i, task in enumerate(self.task_names):
            z = rep[task] if isinstance(rep, Mapping) else rep
            if adapters is not None:
                z = adapters[i](z)
            out[task] = heads[task](z)
        return out

    def forward(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def task_parameters(self) -> list[nn.Parameter]:
        shared = {id(p) for p in self.shared_parameters()}
        return [p for p in self.parameters() if id(p) not in shared]


class HPS(MTLModel):
    """Hard parameter sharing (Caruana 1993; Ruder 2017): one encoder, one head per task.

    ``encoder`` maps a batch to the shared representation; ``heads[task]`` maps it to the
    task output. With ``multi_input=True`` the input is ``{task: x_t}`` and the encoder is
    applied to each task's own batch (Office-31 / Office-Home, XTREME languages).
    ``adapters`` (RotoGrad's per-task rotations) are applied between encoder and head.
    """

    def __init__(
        self,
        encoder: nn.Module,
        heads: Mapping[str, nn.Module],
        *,
        multi_input: bool = False,
    ) -> None:
        super().__init__(list(heads))
        self.encoder = encoder
        self.heads = nn.ModuleDict(dict(heads))
        # With multi_input the representation is {task: encoder(x_t)}: still produced by
        # the shared encoder, but each task's loss depends only on its own block, so the
        # representation-level Gramian is diagonal (as in LibMTL's multi-input mode).
        self.multi_input = multi_input

    def encode(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> Representation:
        if self.multi_input:
            if not isinstance(x, Mapping):
                raise TypeError("a multi-input HPS model expects {task: inputs}")
            return {t: self.encoder(x[t]) for t in self.task_names}
        return self.encoder(x)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.encoder.parameters() if p.requires_grad]

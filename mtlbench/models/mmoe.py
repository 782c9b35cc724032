"""Multi-gate Mixture-of-Experts (Ma, Zhao, Yi, Chen, Hong & Chi, "Modeling Task
Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018).

``num_experts`` copies of the backbone's encoder are the experts; each task has a gate, a
linear map of the (flattened) input followed by a softmax over the experts, and its
representation is the gate-weighted sum of the expert outputs (the paper's Eq. 5-6):
``f_t(x) = sum_e softmax(W_t x)_e * expert_e(x)``. Works with any backbone factory whose
encoder maps one input tensor to one tensor (the experts' outputs must have equal shapes).

The gate reads the input flattened, as in LibMTL's ``MMoE``, so the builder needs the
input's shape (``input_shape``, without the batch axis). For large images,
``gate_pool=k`` first average-pools a (C, H, W) input to (C, k, k), which keeps the gate
small; ``None`` (the default) uses the full input as in LibMTL.

Parameter split. The experts receive every task's gradient (through every gate): they
are the *shared parameters*. Each gate receives only its own task's gradient, so gates
and heads are task parameters. Each task has its own mixture, so ``encode`` returns
``{task: representation}`` and ``shared_representation`` is False.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mtlbench.models.base import MTLModel, Representation

__all__ = ["MMoE", "mmoe"]


class MMoE(MTLModel):
    """Shared experts mixed per task by a softmax gate on the input."""

    shared_representation = False

    def __init__(
        self,
        experts: Sequence[nn.Module],
        heads: Mapping[str, nn.Module],
        *,
        input_shape: Sequence[int],
        gate_pool: int | None = None,
    ) -> None:
        super().__init__(list(heads))
        if len(experts) < 1:
            raise ValueError("MMoE needs at least one expert")
        self.experts = nn.ModuleList(experts)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.gate_pool = gate_pool
        if gate_pool is not None:
            if len(self.input_shape) != 3:
                raise ValueError(f"gate_pool needs a (C, H, W) input_shape, got {self.input_shape}")
            gate_in = self.input_shape[0] * gate_pool * gate_pool
        else:
            gate_in = math.prod(self.input_shape)
        self.gates = nn.ModuleDict({t: nn.Linear(gate_in, len(experts)) for t in self.task_names})
        self.heads = nn.ModuleDict(dict(heads))

    def gate_weights(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{task: (B, num_experts)}`` softmax weights of the experts for each sample."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"MMoE was built for inputs of shape {self.input_shape}, got {tuple(x.shape[1:])}"
            )
        z = x if self.gate_pool is None else F.adaptive_avg_pool2d(x, self.gate_pool)
        z = z.flatten(1)
        return {t: torch.softmax(self.gates[t](z), dim=-1) for t in self.task_names}

    def encode(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> Representation:
        if isinstance(x, Mapping):
            raise TypeError("MMoE takes one input shared by all tasks")
        outputs = torch.stack([expert(x) for expert in self.experts])  # (E, B, ...)
        return {t: torch.einsum("eb...,be->b...", outputs, w) for t, w in self.gate_weights(x).items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.experts.parameters() if p.requires_grad]


def mmoe(
    factory: Callable[..., Any],
    tasks: Sequence[Any],
    *,
    input_shape: Sequence[int] | None = None,
    num_experts: int = 3,
    gate_pool: int | None = None,
    **kwargs: Any,
) -> MTLModel:
    """Build an MMoE: ``factory`` is called ``num_experts`` times for the experts (heads from the first).

    ``input_shape`` (required) is the shape of one input without the batch axis, e.g.
    ``(3, 288, 384)``.
    """
    if input_shape is None:
        raise TypeError(
            "mmoe needs input_shape=(C, H, W) (one input without the batch axis) to size its gates; "
            "set it in the env's model.kwargs"
        )
    if num_experts < 1:
        raise ValueError(f"num_experts must be >= 1, got {num_experts}")
    experts, heads = [], None
    for _ in range(num_experts):
        encoder, task_heads = factory(tasks, **kwargs)
        experts.append(encoder)
        heads = task_heads if heads is None else heads
    assert heads is not None
    return MMoE(experts, heads, input_shape=input_shape, gate_pool=gate_pool)

"""Shared machinery of the loss-level methods with one learnable scale per task (UW, IMTL-L).

Both train a vector ``s`` (one entry per task, zero at the start, so the first weights are
EW's) with the policy's own Adam optimiser on an objective whose gradient w.r.t. ``s`` has
a closed form in the observed (detached) losses; the loss weights are a function of ``s``.
A subclass gives the two pure functions; this class owns ``s``, its optimiser, the step
and the state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlbench.policies.base import (
    Observation,
    Policy,
    PolicyError,
    check_positive,
    learned_state,
    load_learned_state,
)

__all__ = ["DEFAULT_LR", "LearnedLossScales", "resolve_lr"]

#: Learning rate of a policy's own optimiser when neither ``lr`` nor the env gives one.
DEFAULT_LR = 1e-4


def resolve_lr(lr: float | None, context: Mapping[str, Any]) -> float:
    """The policy's own learning rate: its ``lr``, else the env's (reset context), else 1e-4."""
    return lr if lr is not None else float(context.get("lr", DEFAULT_LR))


class LearnedLossScales(Policy):
    """A loss-level policy with learnable per-task scales ``s`` and weights ``weights(s)``.

    Parameters
    ----------
    lr
        Learning rate of the Adam optimiser of ``s``; ``None`` (default) uses the env's
        learning rate from the reset context (``lr``), or ``1e-4`` when it has none.
    """

    level = "loss"
    needs = frozenset({"losses"})

    def __init__(self, lr: float | None = None) -> None:
        super().__init__()
        self.lr = None if lr is None else check_positive("lr", lr)
        self.scales: torch.nn.Parameter | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    # the method: two pure functions of the scales (and the losses)
    @staticmethod
    def weights_of(scales: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def scale_grad(scales: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reset(
        self, task_names: Sequence[str], seed: int, *, device: torch.device | str = "cpu", **context: Any
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        self.scales = torch.nn.Parameter(torch.zeros(self.num_tasks, device=self.device))
        self.optimizer = torch.optim.Adam([self.scales], lr=resolve_lr(self.lr, context))

    def parameters(self) -> list[torch.nn.Parameter]:
        return [] if self.scales is None else [self.scales]

    def act(self, observation: Observation) -> torch.Tensor:
        """Weights from the current scales, then one Adam step of the scales on this batch."""
        if self.scales is None or self.optimizer is None:
            raise PolicyError(f"{self.name}: call reset() before act()")
        losses = observation["losses"].detach().to(self.scales.device)
        with torch.no_grad():
            weights = self.weights_of(self.scales).clone()
            self.scales.grad = self.scale_grad(self.scales, losses)
        self.optimizer.step()
        return weights.to(observation["losses"].device)

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | learned_state("scales", self.scales, self.optimizer)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        load_learned_state(self.name, "scales", self.scales, self.optimizer, state)

"""IMTL-L, the loss-balancing half of Impartial Multi-Task Learning (Liu et al., ICLR 2021).

Each task gets a learnable scale parameter ``s_t`` and the objective is (Liu et al. 2021,
the "loss balance" part, IMTL-L)

    L(theta, s) = sum_t exp(s_t) L_t(theta) - s_t,

so the loss weight of task ``t`` is ``w_t = exp(s_t)`` and ``dL/ds_t = exp(s_t) L_t - 1``.
At the fixed point ``exp(s_t) L_t = 1``: every scaled loss is 1, which is what makes the
method "impartial" to loss scales. ``s = 0`` initially (weights 1, EW's scale), as in LibMTL.

As for UW (:mod:`mtlbench.policies.uw`), ``s`` is owned by the policy and stepped by its own
Adam optimiser with the env's learning rate (reset context ``lr``, ``1e-4`` when absent)
unless ``lr`` is given; LibMTL trains ``s`` with the model's optimiser (which for NYUv2 also
applies weight decay 1e-5 to it; we do not). The weights returned are those before the update.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlbench.policies.base import Observation, Policy, PolicyError, check_positive
from mtlbench.policies.uw import DEFAULT_LR

__all__ = ["IMTLL", "imtl_l_scale_grad", "imtl_l_weights"]


def imtl_l_weights(scales: torch.Tensor) -> torch.Tensor:
    """Loss weights ``exp(s_t)``."""
    return torch.exp(scales)


def imtl_l_scale_grad(scales: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    """``d/ds_t [exp(s_t) L_t - s_t] = exp(s_t) L_t - 1``."""
    return torch.exp(scales) * losses - 1.0


class IMTLL(Policy):
    """IMTL-L: learnable loss scales ``exp(s_t)`` trained on ``exp(s_t) L_t - s_t``.

    Parameters
    ----------
    lr
        Learning rate of the Adam optimiser of ``s``; ``None`` (default) uses the env's
        learning rate from the reset context (``lr``), or ``1e-4`` when it has none.
    """

    name = "imtl-l"
    level = "loss"
    needs = frozenset({"losses"})

    def __init__(self, lr: float | None = None) -> None:
        super().__init__()
        self.lr = None if lr is None else check_positive("lr", lr)
        self.scales: torch.nn.Parameter | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def hparams(self) -> dict[str, Any]:
        return {"lr": self.lr}

    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        lr = self.lr if self.lr is not None else float(context.get("lr", DEFAULT_LR))
        self.scales = torch.nn.Parameter(torch.zeros(self.num_tasks, device=self.device))
        self.optimizer = torch.optim.Adam([self.scales], lr=lr)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [] if self.scales is None else [self.scales]

    def act(self, observation: Observation) -> torch.Tensor:
        if self.scales is None or self.optimizer is None:
            raise PolicyError("imtl-l: call reset() before act()")
        losses = observation["losses"].detach().to(self.scales.device)
        with torch.no_grad():
            weights = imtl_l_weights(self.scales).clone()
            self.scales.grad = imtl_l_scale_grad(self.scales, losses)
        self.optimizer.step()
        return weights.to(observation["losses"].device)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.scales is not None and self.optimizer is not None:
            state["scales"] = self.scales.detach().clone()
            state["optimizer"] = copy.deepcopy(self.optimizer.state_dict())
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if self.scales is None or self.optimizer is None:
            raise PolicyError("imtl-l: call reset() before load_state_dict()")
        with torch.no_grad():
            self.scales.copy_(state["scales"])
        self.optimizer.load_state_dict(state["optimizer"])

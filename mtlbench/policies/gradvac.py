"""Gradient vaccine (GradVac), Wang, Tsvetkov, Firat and Cao, ICLR 2021, Algorithm 1.

GradVac keeps, for every ordered task pair ``(i, j)``, an exponential moving average
``phihat_ij`` of the cosine similarity of their gradients (initially 0) and uses it as a
*target*: for each task ``i`` and each ``j != i`` in random order, with
``phi_ij = cos(g_i^PC, g_j)``,

    if phi_ij < phihat_ij:
        g_i^PC <- g_i^PC + ||g_i^PC|| (phihat_ij sqrt(1 - phi_ij^2) - phi_ij sqrt(1 - phihat_ij^2))
                            / (||g_j|| sqrt(1 - phihat_ij^2)) * g_j,
    phihat_ij <- (1 - beta) phihat_ij + beta phi_ij,

and the update is ``sum_i g_i^PC`` (``beta = 0.5`` by default, LibMTL's value). The EMA is
updated at every visit, as in the paper's Algorithm 1 (LibMTL updates it only inside the
``if``). Granularity: one group, the whole
shared parameter vector (LibMTL's ``group_type=0``); the per-layer variants are not
implemented.

As for PCGrad (:mod:`mtlbench.policies.pcgrad`), ``g_i^PC = sum_k C_ik g_k`` and every
quantity comes from the Gramian: ``g_i^PC . g_j = (C G)_ij``, ``||g_i^PC||^2 =
(C G C^T)_ii``, ``||g_j||^2 = G_jj``. The action is :class:`GradientWeights` ``1^T C``.
``eps = 1e-8`` guards the divisions (LibMTL's constant). The EMA targets are reset in
:meth:`GradVac.reset`; the random orders come from ``self.generator``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlbench.policies.base import (
    GradientWeights,
    Observation,
    Policy,
    PolicyError,
    check_in_range,
    check_positive,
    require_observed,
)
from mtlbench.policies.pcgrad import random_task_orders

__all__ = ["GradVac", "gradvac_coefficients"]


def gradvac_coefficients(
    gramian: torch.Tensor,
    orders: torch.Tensor,
    targets: torch.Tensor,
    beta: float = 0.5,
    eps: float = 1e-8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(C, new_targets)``: ``g_i^PC = sum_k C_ik g_k`` and the updated EMA targets."""
    num_tasks = gramian.shape[0]
    rows = torch.arange(num_tasks, device=gramian.device)
    coef = torch.eye(num_tasks, dtype=gramian.dtype, device=gramian.device)
    targets = targets.to(device=gramian.device, dtype=gramian.dtype).clone()
    norms = torch.diagonal(gramian).clamp_min(0).sqrt()
    for k in range(orders.shape[1]):
        j = orders[:, k].to(gramian.device)
        cg = coef @ gramian
        norm_pc = (cg * coef).sum(dim=1).clamp_min(0).sqrt()
        inner = cg[rows, j]
        norm_j = norms[j]
        phi = inner / (norm_pc * norm_j + eps)
        target = targets[rows, j]
        sin_target = (1 - target.square()).clamp_min(0).sqrt()
        sin_phi = (1 - phi.square()).clamp_min(0).sqrt()
        w = norm_pc * (target * sin_phi - phi * sin_target) / (norm_j * sin_target + eps)
        coef = coef.index_put((rows, j), torch.where(phi < target, w, 0.0), accumulate=True)
        targets = targets.index_put((rows, j), (1 - beta) * target + beta * phi)
    return coef, targets


class GradVac(Policy):
    """GradVac as gradient weights from the Gramian, with EMA similarity targets.

    Parameters
    ----------
    beta
        EMA rate of the similarity targets, in ``(0, 1]`` (default 0.5, LibMTL's).
    eps
        Guard added to denominators (1e-8).
    """

    name = "gradvac"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "parameters"

    def __init__(self, beta: float = 0.5, eps: float = 1e-8) -> None:
        super().__init__()
        self.beta = check_in_range("beta", beta, 0.0, 1.0)
        if self.beta == 0.0:
            raise ValueError("hyperparameter 'beta' must be in (0, 1], got 0.0")
        self.eps = check_positive("eps", eps, allow_zero=True)
        self.targets: torch.Tensor | None = None

    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        self.targets = torch.zeros(self.num_tasks, self.num_tasks, device=self.device)

    def act(self, observation: Observation) -> GradientWeights:
        if self.generator is None or self.targets is None:
            raise PolicyError("gradvac: call reset() before act()")
        require_observed(observation, "gramian", "gradvac")
        gramian = observation["gramian"].detach()
        orders = random_task_orders(self.num_tasks, self.generator).to(gramian.device)
        coef, self.targets = gradvac_coefficients(gramian, orders, self.targets, self.beta, self.eps)
        return GradientWeights(coef.sum(dim=0))

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["targets"] = None if self.targets is None else self.targets.clone()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.targets = None if state["targets"] is None else state["targets"].clone()

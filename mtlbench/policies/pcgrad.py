"""Projecting conflicting gradients (PCGrad), Yu et al., NeurIPS 2020, Algorithm 1.

For every task ``i``, starting from ``g_i^PC = g_i``, visit the other tasks ``j != i`` in a
random order and, whenever ``g_i^PC . g_j < 0``, project ``g_i^PC`` onto the normal plane
of ``g_j``: ``g_i^PC <- g_i^PC - (g_i^PC . g_j / ||g_j||^2) g_j``. The update is
``sum_i g_i^PC``.

Every projection subtracts a multiple of an original task gradient, so
``g_i^PC = sum_k C_ik g_k`` with ``C`` starting at the identity, and all quantities the
algorithm tests are inner products available from the Gramian ``G = J J^T``:

    g_i^PC . g_j = (C G)_ij,        ||g_j||^2 = G_jj,
    projection:  C_ij <- C_ij - min((C G)_ij, 0) / G_jj,

so the update is ``sum_i g_i^PC = sum_k a_k g_k`` with ``a = 1^T C`` (column sums), a
:class:`GradientWeights` action computed from the ``T x T`` Gramian alone. The ``T`` rows
are processed in parallel, one visiting position at a time (``T - 1`` small steps; no
host synchronisation). A zero-norm ``g_j`` is never projected on. The random orders come
from ``self.generator``. Following the paper, ``j = i`` is skipped (LibMTL and some ports
also "visit" ``i`` itself, which projects only when ``g_i^PC . g_i < 0``).

``wrt = "parameters"``, as in the paper and LibMTL.
"""

from __future__ import annotations

import torch

from mtlbench.policies.base import GradientWeights, Observation, Policy, PolicyError, require_observed

__all__ = ["PCGrad", "pcgrad_coefficients", "random_task_orders"]


def random_task_orders(
    num_tasks: int, generator: torch.Generator, device: torch.device | str | None = None
) -> torch.Tensor:
    """Row ``i``: a uniformly random permutation of the tasks ``j != i``, shape ``(T, T-1)``."""
    dev = torch.device(device) if device is not None else generator.device
    keys = torch.rand(num_tasks, num_tasks, generator=generator, device=dev)
    keys.fill_diagonal_(2.0)  # task i sorts last and is dropped
    return torch.argsort(keys, dim=1)[:, : num_tasks - 1]


def pcgrad_coefficients(gramian: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """``C`` with ``g_i^PC = sum_k C_ik g_k`` after PCGrad's projections in ``orders``."""
    num_tasks = gramian.shape[0]
    rows = torch.arange(num_tasks, device=gramian.device)
    coef = torch.eye(num_tasks, dtype=gramian.dtype, device=gramian.device)
    sq_norms = torch.diagonal(gramian)
    for k in range(orders.shape[1]):
        j = orders[:, k].to(gramian.device)
        inner = (coef * gramian[:, j].T).sum(dim=1)  # (C G)[i, j_i]
        norm_j = sq_norms[j]
        step = torch.where(
            norm_j > 0, inner.clamp(max=0) / norm_j.clamp_min(torch.finfo(gramian.dtype).tiny), 0.0
        )
        coef = coef.index_put((rows, j), -step, accumulate=True)
    return coef


class PCGrad(Policy):
    """PCGrad as gradient weights ``a = 1^T C`` computed from the Gramian."""

    name = "pcgrad"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "parameters"

    def act(self, observation: Observation) -> GradientWeights:
        if self.generator is None:
            raise PolicyError("pcgrad: call reset() before act()")
        require_observed(observation, "gramian", "pcgrad")
        gramian = observation["gramian"].detach()
        orders = random_task_orders(self.num_tasks, self.generator).to(gramian.device)
        return GradientWeights(pcgrad_coefficients(gramian, orders).sum(dim=0))

"""IMTL-G: gradient balance with equal projections on every task gradient.

Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang, "Towards Impartial Multi-task Learning",
ICLR 2021: the gradient balance "IMTL-G" and its closed form (Algorithm 1). The shared
update ``d = sum_t alpha_t g_t`` (``sum_t alpha_t = 1``) is chosen so that its projections
on the unit task gradients ``u_t = g_t / ||g_t||`` are all equal, ``d . u_1 = d . u_t``. With
``D = [g_1 - g_2, ..., g_1 - g_T]`` and ``U = [u_1 - u_2, ..., u_1 - u_T]`` (rows) the
closed form is

    alpha_{2:T} = g_1 U^T (D U^T)^{-1},    alpha_1 = 1 - sum_{t>=2} alpha_t.

Every inner product in it is an entry of the Gramian scaled by the gradient norms
(``g_i . u_j = G_ij / sqrt(G_jj)``), so the method needs only ``G = J J^T``.

Deviations: the paper computes the gradients with respect to the shared feature ``z``
(and applies ``alpha`` to the losses); this policy uses the shared parameters by default,
as LibMTL does without ``rep_grad``. The paper's hybrid IMTL also scales the losses with
IMTL-L; that is a separate loss-level policy (``"imtl-l"``). The weights may be negative
(the closed form has no sign constraint).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mtlbench.policies.base import GradientWeights, Observation, Policy, as_gramian, raise_unless

__all__ = ["IMTLG", "imtl_g_weights"]


def imtl_g_weights(gramian: Tensor) -> Tensor:
    """IMTL-G scaling factors ``alpha`` (sum 1) from the Gramian, by the closed form above.

    The ``(T-1) x (T-1)`` system is solved on ``gramian``'s device in float64 with
    ``torch.linalg.solve_ex`` (no host sync); one sync follows for the failure check.
    Raises :class:`PolicyError` when a task gradient is zero (``u_t`` undefined), the
    Gramian is not finite, or ``D U^T`` is singular (e.g. two task gradients collinear).
    """
    method = "IMTL-G"
    G = as_gramian(gramian, method)
    num_tasks = G.shape[0]
    norms = G.diagonal().clamp(min=0).sqrt()
    if num_tasks == 1:
        ok = torch.isfinite(G).all() & (norms > 0).all()
        raise_unless(ok, method, "the task gradient is zero or not finite")
        return torch.ones(1, dtype=gramian.dtype, device=gramian.device)
    # g_dot_u[i, j] = g_i . u_j
    g_dot_u = G / torch.where(norms > 0, norms, 1.0)[None, :]
    # (g_1 U^T)_j = g_1 . (u_1 - u_j), j = 2..T
    g1_u = g_dot_u[0, 0] - g_dot_u[0, 1:]
    # (D U^T)_{ij} = (g_1 - g_i) . (u_1 - u_j) = g1.u1 - g1.uj - gi.u1 + gi.uj
    d_u = g1_u[None, :] - g_dot_u[1:, 0:1] + g_dot_u[1:, 1:]
    # alpha_{2:T} is the row vector g_1 U^T (D U^T)^{-1}, i.e. (D U^T)^T x = (g_1 U^T)^T.
    tail, info = torch.linalg.solve_ex(d_u.mT, g1_u)
    weights = torch.cat([(1.0 - tail.sum()).reshape(1), tail])
    ok = torch.isfinite(G).all() & (norms > 0).all() & (info == 0) & torch.isfinite(weights).all()
    raise_unless(
        ok,
        method,
        "the closed form failed: a task gradient is zero, the Gramian is not finite, "
        "or D U^T is singular (collinear task gradients)",
    )
    return weights.to(gramian.dtype)


class IMTLG(Policy):
    """IMTL-G (Liu et al., ICLR 2021): impartial gradient weights, no hyperparameters."""

    name = "imtl-g"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "parameters"

    def hparams(self) -> dict[str, Any]:
        return {}

    def act(self, observation: Observation) -> GradientWeights:
        return GradientWeights(imtl_g_weights(observation["gramian"]))

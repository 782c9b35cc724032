"""DualProj: the mean gradient projected onto the dual cone of the task gradients.

Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024 (arXiv
2406.16232), the aggregator ``A_DualProj`` (introduced there as a baseline beside UPGrad;
the projection is Eq. 11 of Lopez-Paz & Ranzato's GEM, NeurIPS 2017). The mean of the task
gradients, ``J^T u`` with ``u = 1/T``, is projected onto the dual cone of the rows of ``J``,
``{x : J x >= 0}`` (their Eq. 3). By their Proposition 1 the projection is ``J^T v`` with

    v = argmin_{v >= u} v^T G v,      G = J J^T,

so the update conflicts with no task (``J d = G v >= 0`` by the KKT conditions), and it is
the mean itself when the mean already lies in the cone. Unlike UPGrad, which projects each
``g_i`` and averages, DualProj makes one projection. Writing ``v = u + m`` gives one
non-negative QP ``min_{m >= 0} 1/2 m^T G m + (G u)^T m``, solved by the same
interior-point routine as UPGrad (:func:`mtlbench.policies.upgrad._nonnegative_qps`).

As in the authors' implementation (TorchJD's ``DualProjWeighting``), ``G`` is divided by
its trace and ``reg_eps * I`` is added (``reg_eps = 1e-4`` by default), so the QP is
strictly convex despite rounding in ``G``; then ``J d >= -reg_eps * trace(G) * v`` instead
of ``>= 0`` (``reg_eps=0`` is the exact projection for a positive definite ``G``). TorchJD
solves the QP with ``quadprog`` on the host; a zero Gramian gives the mean here, as there.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtlbench.policies.base import (
    GradientWeights,
    Observation,
    Policy,
    check_positive,
)
from mtlbench.policies.upgrad import _nonnegative_qps, normalised_gramian, raise_unless_solved

__all__ = ["DualProj", "dualproj_weights"]


def dualproj_weights(gramian: Tensor, *, reg_eps: float = 1e-4) -> Tensor:
    """DualProj weights ``v`` with ``d = J^T v`` (Quinton & Rey 2024, ``A_DualProj``).

    ``v = 1/T + m``, ``m`` the solution of the non-negative QP above for
    ``G' = G / trace(G) + reg_eps I``. Float64 on ``gramian``'s device (the solver of
    :mod:`mtlbench.policies.upgrad`: early exit on the host, no host sync on an
    accelerator), then one sync for the failure check. Returns weights of ``gramian``'s
    dtype; they are ``>= 1/T`` and need not sum to 1. Raises :class:`PolicyError` when the
    Gramian is not finite or the KKT residual exceeds the tolerance.
    """
    method = "DualProj"
    G, trace, G_n = normalised_gramian(gramian, reg_eps, method)
    mean = torch.full((G.shape[0],), 1.0 / G.shape[0], dtype=G.dtype, device=G.device)
    m, residual = _nonnegative_qps(G_n, (G_n @ mean)[None, :])
    weights = torch.where(trace > 0, mean + m[0], mean)
    raise_unless_solved(G, weights, residual, trace, method, "the projection onto the dual cone was")
    return weights.to(gramian.dtype)


class DualProj(Policy):
    """DualProj (Quinton & Rey 2024).

    Parameters
    ----------
    reg_eps
        Ridge added to the trace-normalised Gramian, >= 0 (default 1e-4, as in TorchJD).
    """

    name = "dualproj"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "parameters"

    def __init__(self, reg_eps: float = 1e-4) -> None:
        super().__init__()
        self.reg_eps = check_positive("reg_eps", reg_eps, allow_zero=True)

    def act(self, observation: Observation) -> GradientWeights:
        return GradientWeights(dualproj_weights(observation["gramian"], reg_eps=self.reg_eps))

"""UPGrad: unconflicting projection of gradients.

Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024 (arXiv
2406.16232), the aggregator ``A_UPGrad``. Each task gradient ``g_i`` is projected onto the
dual cone of the rows of ``J``, ``{x : J x >= 0}`` (their Eq. 3), and the projections are
averaged. By their Proposition 1 the projection of ``J^T u`` is ``J^T v`` with

    v = argmin_{v >= u} v^T G v,      G = J J^T,

so the weights are ``a = 1/T sum_i v_i`` with ``v_i`` the solution for ``u = e_i``. Every
``v_i`` satisfies ``G v_i >= 0`` (KKT), hence ``J d = G a >= 0``: the update conflicts
with no task. Writing ``v = e_i + m`` gives ``T`` non-negative quadratic programs
``min_{m >= 0} 1/2 m^T G m + (G e_i)^T m``, solved together here on the device.

As in the authors' implementation (TorchJD, also used by LibMTL), ``G`` is first divided
by its trace (the weights are invariant to that scale) and ``reg_eps * I`` is added
(``reg_eps = 1e-4`` by default) so that the problems are strictly convex despite rounding
errors in ``G``; then ``J d >= -reg_eps * trace(G) * a`` instead of ``>= 0``
(``reg_eps=0`` gives the exact projection when ``G`` is positive definite). TorchJD uses
the ``quadprog`` active-set solver on the host; we use a primal-dual interior-point method
(Mehrotra predictor-corrector; Nocedal & Wright, *Numerical Optimization*, Sec. 16.6)
with a fixed number of iterations on the device, and check the KKT residual once at the
end: a residual above tolerance raises :class:`PolicyError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from mtlbench.policies.base import (
    GradientWeights,
    Observation,
    Policy,
    as_gramian,
    check_positive,
    raise_unless,
)

__all__ = ["UPGrad", "upgrad_weights"]

_IPM_ITERATIONS = 40
_TOL = 1e-8  # accepted KKT residual, relative to the trace-normalised Gramian


@contextmanager
def _single_threaded_on_host(device: torch.device) -> Iterator[None]:
    """Run tiny CPU linear algebra on one thread, then restore the thread count.

    Batched LAPACK calls and small matrix products on CPU fan out to OpenMP/MKL threads,
    which for ``T x T`` problems costs far more than it saves (orders of magnitude more
    on a busy machine). Accelerators are unaffected.
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _step_to_boundary(x: Tensor, dx: Tensor) -> Tensor:
    """Per row, the largest ``a <= 1`` with ``x + a dx >= 0`` (rows of ``x`` are > 0)."""
    ratios = torch.where(dx < 0, -x / dx.clamp(max=-torch.finfo(x.dtype).tiny), torch.inf)
    return ratios.amin(-1, keepdim=True).clamp(max=1.0)


def _newton_step(
    system: Tensor, dual_residual: Tensor, m: Tensor, s: Tensor, complementarity: Tensor
) -> tuple[Tensor, Tensor]:
    """Solve ``G dm - ds = -r_d``, ``s dm + m ds = complementarity`` (batched) for ``(dm, ds)``.

    Eliminating ``ds`` leaves ``(G + diag(s/m)) dm = -r_d + complementarity / m``, whose
    matrix ``system`` is shared by the predictor and the corrector.
    """
    rhs = -dual_residual + complementarity / m
    dm = torch.linalg.solve_ex(system, rhs.unsqueeze(-1))[0].squeeze(-1)
    return dm, (complementarity - s * dm) / m


def _nonnegative_qps(G: Tensor, linear: Tensor) -> tuple[Tensor, Tensor]:
    """Solve ``min_{m >= 0} 1/2 m^T G m + c^T m`` for every row ``c`` of ``linear``.

    Mehrotra's predictor-corrector primal-dual interior-point method on the KKT system
    ``G m + c - s = 0``, ``m_j s_j = 0``, ``m, s >= 0``, batched over the rows. Each
    iteration solves the batched ``(G + diag(s/m)) dm = r`` twice. Returns the solutions
    and the largest KKT residual.
    """
    num_problems, size = linear.shape
    m = torch.ones_like(linear)
    s = torch.ones_like(linear)
    G_batch = G.expand(num_problems, size, size)

    def residual_of(m: Tensor, s: Tensor) -> Tensor:
        stationarity = (m @ G + linear - s).abs().max()
        return torch.maximum(stationarity, (m * s).max())

    residual = residual_of(m, s)
    on_host = G.device.type == "cpu"
    for _ in range(_IPM_ITERATIONS):
        dual_residual = m @ G + linear - s
        mu = (m * s).mean(-1, keepdim=True)
        system = G_batch + torch.diag_embed(s / m)

        dm_aff, ds_aff = _newton_step(system, dual_residual, m, s, -m * s)
        a_primal, a_dual = _step_to_boundary(m, dm_aff), _step_to_boundary(s, ds_aff)
        mu_aff = ((m + a_primal * dm_aff) * (s + a_dual * ds_aff)).mean(-1, keepdim=True)
        sigma = (mu_aff / mu.clamp(min=torch.finfo(m.dtype).tiny)).clamp(max=1.0) ** 3
        dm, ds = _newton_step(system, dual_residual, m, s, -m * s - dm_aff * ds_aff + sigma * mu)
        step = torch.minimum(_step_to_boundary(m, dm), _step_to_boundary(s, ds))
        step = (0.99 * step).clamp(max=1.0)
        m, s = m + step * dm, s + step * ds
        residual = residual_of(m, s)
        # On the host a sync is free: stop once converged (or once a NaN appears).
        if on_host and not bool(residual > _TOL * 1e-3):
            break
    return m, residual


def upgrad_weights(gramian: Tensor, *, reg_eps: float = 1e-4) -> Tensor:
    """UPGrad weights ``a`` with ``d = J^T a`` (Quinton & Rey 2024, ``A_UPGrad``).

    ``a = 1/T sum_i (e_i + m_i)``, ``m_i`` the solution of the non-negative QP above for
    ``G' = G / trace(G) + reg_eps I``. Float64 on ``gramian``'s device, a fixed number of
    interior-point iterations (no host sync; early exit on the host), then one sync for
    the failure check. A zero Gramian gives ``1/T``. Raises :class:`PolicyError` when the
    Gramian is not finite or the KKT residual exceeds the tolerance.
    """
    method = "UPGrad"
    reg_eps = check_positive("reg_eps", reg_eps, allow_zero=True)
    G = as_gramian(gramian, method)
    num_tasks = G.shape[0]
    trace = G.diagonal().sum()
    eye = torch.eye(num_tasks, dtype=G.dtype, device=G.device)
    G_n = G / torch.where(trace > 0, trace, 1.0) + reg_eps * eye
    with _single_threaded_on_host(G.device):
        m, residual = _nonnegative_qps(G_n, G_n)  # row i of G_n is the linear term G_n e_i
    weights = (eye + m).mean(0)
    mean = torch.full_like(weights, 1.0 / num_tasks)
    weights = torch.where(trace > 0, weights, mean)
    residual = torch.where(trace > 0, residual, 0.0)
    ok = torch.isfinite(G).all() & torch.isfinite(weights).all() & (residual <= _TOL)
    raise_unless(
        ok,
        method,
        "the projections onto the dual cone were not solved to tolerance (non-finite or "
        "badly indefinite Gramian; try reg_eps > 0)",
    )
    return weights.to(gramian.dtype)


class UPGrad(Policy):
    """UPGrad (Quinton & Rey 2024). ``reg_eps`` >= 0 (default 1e-4, as in TorchJD)."""

    name = "upgrad"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "parameters"

    def __init__(self, reg_eps: float = 1e-4) -> None:
        super().__init__()
        self.reg_eps = check_positive("reg_eps", reg_eps, allow_zero=True)

    def hparams(self) -> dict[str, Any]:
        return {"reg_eps": self.reg_eps}

    def act(self, observation: Observation) -> GradientWeights:
        return GradientWeights(upgrad_weights(observation["gramian"], reg_eps=self.reg_eps))

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

import numpy as np
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
    and the largest KKT residual. On the CPU the same iterations run in NumPy
    (:func:`_nonnegative_qps_host`; a torch op on a ``T x T`` batch costs ~10x more dispatch
    than the work) and stop once converged; on an accelerator a fixed number of them run in
    torch with no host sync.
    """
    if G.device.type == "cpu":
        # a non-finite Gramian yields NaN iterates, which the caller's check turns into an error
        with np.errstate(all="ignore"):
            m_host, residual_host = _nonnegative_qps_host(G.numpy(), linear.numpy())
        return torch.from_numpy(m_host), torch.tensor(residual_host, dtype=G.dtype)
    return _nonnegative_qps_device(G, linear)


def _nonnegative_qps_device(G: Tensor, linear: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`_nonnegative_qps` in torch, a fixed number of iterations, no host sync."""
    num_problems, size = linear.shape
    m = torch.ones_like(linear)
    s = torch.ones_like(linear)
    G_batch = G.expand(num_problems, size, size)

    def residual_of(m: Tensor, s: Tensor) -> Tensor:
        stationarity = (m @ G + linear - s).abs().max()
        return torch.maximum(stationarity, (m * s).max())

    residual = residual_of(m, s)
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
    return m, residual


def _step_to_boundary_host(x: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """:func:`_step_to_boundary` in NumPy."""
    safe = np.minimum(dx, -np.finfo(x.dtype).tiny)
    ratios = np.where(dx < 0, -x / safe, np.inf)
    return np.minimum(ratios.min(-1, keepdims=True), 1.0)


def _newton_step_host(
    system: np.ndarray, dual_residual: np.ndarray, m: np.ndarray, s: np.ndarray, complementarity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_newton_step` in NumPy (a singular system gives NaN, left to the caller's check)."""
    rhs = -dual_residual + complementarity / m
    try:
        dm = np.linalg.solve(system, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        dm = np.full_like(rhs, np.nan)
    return dm, (complementarity - s * dm) / m


def _nonnegative_qps_host(G: np.ndarray, linear: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`_nonnegative_qps_device`'s iterations in NumPy, leaving the loop once converged."""
    m = np.ones_like(linear)
    s = np.ones_like(linear)
    tiny = np.finfo(m.dtype).tiny
    diagonal = np.arange(linear.shape[1])

    def residual_of(m: np.ndarray, s: np.ndarray) -> float:
        # np.max propagates a NaN (Python's max would drop it, depending on the order)
        return float(np.max([np.abs(m @ G + linear - s).max(), (m * s).max()]))

    residual = residual_of(m, s)
    for _ in range(_IPM_ITERATIONS):
        dual_residual = m @ G + linear - s
        mu = (m * s).mean(-1, keepdims=True)
        system = np.repeat(G[None], linear.shape[0], axis=0)
        system[:, diagonal, diagonal] += s / m

        dm_aff, ds_aff = _newton_step_host(system, dual_residual, m, s, -m * s)
        a_primal, a_dual = _step_to_boundary_host(m, dm_aff), _step_to_boundary_host(s, ds_aff)
        mu_aff = ((m + a_primal * dm_aff) * (s + a_dual * ds_aff)).mean(-1, keepdims=True)
        sigma = np.minimum(mu_aff / np.maximum(mu, tiny), 1.0) ** 3
        dm, ds = _newton_step_host(system, dual_residual, m, s, -m * s - dm_aff * ds_aff + sigma * mu)
        step = np.minimum(_step_to_boundary_host(m, dm), _step_to_boundary_host(s, ds))
        step = np.minimum(0.99 * step, 1.0)
        m, s = m + step * dm, s + step * ds
        residual = residual_of(m, s)
        if not residual > _TOL * 1e-3:  # converged (or NaN: the caller's check raises)
            break
    return m, residual


def normalised_gramian(gramian: Tensor, reg_eps: float, method: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(G, trace(G), G / trace(G) + reg_eps I)`` in float64 (a zero trace divides by 1).

    The trace normalisation makes UPGrad and DualProj invariant to the scale of the
    gradients; ``reg_eps`` (TorchJD's default 1e-4) keeps the QPs strictly convex.
    """
    reg_eps = check_positive("reg_eps", reg_eps, allow_zero=True)
    G = as_gramian(gramian, method)
    trace = G.diagonal().sum()
    eye = torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
    return G, trace, G / torch.where(trace > 0, trace, 1.0) + reg_eps * eye


def raise_unless_solved(
    G: Tensor, weights: Tensor, residual: Tensor, trace: Tensor, method: str, what: str
) -> None:
    """One host sync: :class:`PolicyError` unless ``G`` and ``weights`` are finite and the KKT
    residual (ignored for a zero Gramian) is within the tolerance; ``what`` names the QPs."""
    residual = torch.where(trace > 0, residual, 0.0)
    ok = torch.isfinite(G).all() & torch.isfinite(weights).all() & (residual <= _TOL)
    raise_unless(
        ok,
        method,
        f"{what} not solved to tolerance (non-finite or badly indefinite Gramian; try reg_eps > 0)",
    )


def upgrad_weights(gramian: Tensor, *, reg_eps: float = 1e-4) -> Tensor:
    """UPGrad weights ``a`` with ``d = J^T a`` (Quinton & Rey 2024, ``A_UPGrad``).

    ``a = 1/T sum_i (e_i + m_i)``, ``m_i`` the solution of the non-negative QP above for
    ``G' = G / trace(G) + reg_eps I``. Float64 on ``gramian``'s device, a fixed number of
    interior-point iterations (no host sync; early exit on the host), then one sync for
    the failure check. A zero Gramian gives ``1/T``. Raises :class:`PolicyError` when the
    Gramian is not finite or the KKT residual exceeds the tolerance.
    """
    method = "UPGrad"
    G, trace, G_n = normalised_gramian(gramian, reg_eps, method)
    eye = torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
    m, residual = _nonnegative_qps(G_n, G_n)  # row i of G_n is the linear term G_n e_i
    weights = (eye + m).mean(0)
    mean = torch.full_like(weights, 1.0 / G.shape[0])
    weights = torch.where(trace > 0, weights, mean)
    raise_unless_solved(G, weights, residual, trace, method, "the projections onto the dual cone were")
    return weights.to(gramian.dtype)


class UPGrad(Policy):
    """UPGrad (Quinton & Rey 2024).

    Parameters
    ----------
    reg_eps
        Ridge added to the trace-normalised Gramian, >= 0 (default 1e-4, as in TorchJD).
    """

    name = "upgrad"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "parameters"

    def __init__(self, reg_eps: float = 1e-4) -> None:
        super().__init__()
        self.reg_eps = check_positive("reg_eps", reg_eps, allow_zero=True)

    def act(self, observation: Observation) -> GradientWeights:
        return GradientWeights(upgrad_weights(observation["gramian"], reg_eps=self.reg_eps))

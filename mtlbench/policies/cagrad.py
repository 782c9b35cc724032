"""CAGrad: conflict-averse gradient descent.

Liu, Liu, Jin, Stone, Liu, "Conflict-Averse Gradient Descent for Multi-task Learning",
NeurIPS 2021, Sec. 3 and Algorithm 1. The update maximises the worst local improvement
``min_t g_t . d`` within a ball around the average gradient ``g_0``,
``||d - g_0|| <= c ||g_0||``. Its dual is a problem over the simplex,

    w* = argmin_{w in simplex}  g_w . g_0 + c ||g_0|| ||g_w||,    g_w = sum_t w_t g_t,

and the update is ``d = g_0 + (c ||g_0|| / ||g_w*||) g_w*``. With ``g_0 = J^T 1/T``
everything is a quadratic form in the Gramian: ``g_w . g_0 = w^T G 1/T`` and
``||g_w||^2 = w^T G w``. ``c = 0`` gives the average gradient.

The official code (github.com/Cranial-XIX/CAGrad, ``nyuv2/utils.py``) solves the dual with
``scipy.optimize.minimize`` (SLSQP) on the host and divides the update by ``1 + c^2``
(``rescale=1``, the paper's default; ``rescale=2`` divides by ``1 + c``, ``rescale=0``
not at all). Here the dual is solved on the device by a primal-dual interior-point method
(see :func:`cagrad_weights`). Other deviations: the official code adds ``1e-8`` to
``||g_0||``, ``||g_w||`` and inside the square root, which we omit; its NYUv2 trainer
multiplies the update by ``T`` "to match the sum loss" (LibMTL does not); our weights are
on the scale of the mean, like LibMTL's.
"""

from __future__ import annotations

import math

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

__all__ = ["RESCALES", "CAGrad", "cagrad_weights"]

#: The official code's ``rescale`` options: 0 none, 1 divide by ``1 + c^2``, 2 by ``1 + c``.
RESCALES: tuple[int, ...] = (0, 1, 2)

_IPM_ITERATIONS = 30
_SIGMA = 0.1  # centring parameter of the interior-point iterations
_TOL = 1e-7  # accepted duality measure, relative to the normalised objective (O(1))


def _step_to_boundary(x: Tensor, dx: Tensor) -> Tensor:
    """Largest ``a <= 1`` keeping ``x + a dx > 0`` (times 0.99), for ``x > 0``."""
    ratios = torch.where(dx < 0, -x / dx.clamp(max=-torch.finfo(x.dtype).tiny), torch.inf)
    return (0.99 * ratios.min()).clamp(max=1.0)


def _solve_dual(G: Tensor, rho: Tensor) -> tuple[Tensor, Tensor]:
    """Minimise ``h(w) = w^T G b + rho sqrt(w^T G w)`` over the simplex, ``b = 1/T``.

    A primal-dual interior-point method (Nocedal & Wright, *Numerical Optimization*,
    Ch. 19) with a fixed centring parameter: it keeps ``w > 0`` and multipliers ``s > 0``
    for ``w >= 0`` and ``nu`` for ``1^T w = 1``, and takes damped Newton steps on the
    perturbed KKT system ``grad h(w) - s + nu 1 = 0``, ``w_t s_t = sigma mu``. ``h`` is
    convex and smooth wherever ``g_w != 0``. Fixed iteration count on the device (the
    iterates converge quadratically once close; a converged iterate is a fixed point); on
    the CPU the same iterations run in NumPy (:func:`_solve_dual_host`: a torch op on a
    ``(T,)`` tensor costs ~10x more dispatch than the work) and stop as soon as the KKT
    residual is below tolerance. Returns ``(w, kkt_residual)``.
    """
    if G.device.type == "cpu":
        # a non-finite Gramian yields NaN iterates, which the caller's check turns into an error
        with np.errstate(all="ignore"):
            w_host, residual_host = _solve_dual_host(G.numpy(), float(rho))
        return torch.from_numpy(w_host), torch.tensor(residual_host, dtype=G.dtype)
    return _solve_dual_device(G, rho)


def _solve_dual_device(G: Tensor, rho: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`_solve_dual` in torch on ``G``'s device, a fixed number of iterations, no sync."""
    num_tasks = G.shape[0]
    dtype, device = G.dtype, G.device
    ones = torch.ones(num_tasks, dtype=dtype, device=device)
    g_b = G @ (ones / num_tasks)
    tiny = torch.finfo(dtype).tiny
    bordered = torch.zeros(num_tasks + 1, num_tasks + 1, dtype=dtype, device=device)
    bordered[:num_tasks, num_tasks] = 1.0
    bordered[num_tasks, :num_tasks] = 1.0

    def gradient(w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        g_w = G @ w
        norm = (w @ g_w).clamp(min=tiny).sqrt()
        return g_b + rho * g_w / norm, g_w, norm

    w = ones / num_tasks
    s = ones.clone()
    grad_h, _, _ = gradient(w)
    nu = (s - grad_h).mean()
    residual = torch.full((), torch.inf, dtype=dtype, device=device)
    for _ in range(_IPM_ITERATIONS):
        grad_h, g_w, norm = gradient(w)
        hessian = rho * (G / norm - torch.outer(g_w, g_w) / norm**3)
        mu = (w @ s) / num_tasks
        kkt = bordered.clone()
        kkt[:num_tasks, :num_tasks] = hessian + torch.diag(s / w)
        rhs = torch.cat([-grad_h + _SIGMA * mu / w, (1.0 - w.sum()).reshape(1)])
        solution, _ = torch.linalg.solve_ex(kkt, rhs)
        dw, nu_new = solution[:num_tasks], solution[num_tasks]
        ds = (_SIGMA * mu - w * s - s * dw) / w
        step = torch.minimum(_step_to_boundary(w, dw), _step_to_boundary(s, ds))
        w, s, nu = w + step * dw, s + step * ds, nu + step * (nu_new - nu)
        grad_h, _, _ = gradient(w)
        residual = torch.maximum((grad_h - s + nu).abs().max(), (w * s).max())
        residual = torch.maximum(residual, (w.sum() - 1.0).abs())
    return w, residual


def _step_to_boundary_host(x: np.ndarray, dx: np.ndarray) -> float:
    """:func:`_step_to_boundary` in NumPy."""
    negative = dx < 0
    if not negative.any():
        return 1.0
    ratios = -x[negative] / np.minimum(dx[negative], -np.finfo(x.dtype).tiny)
    return min(0.99 * float(ratios.min()), 1.0)


def _solve_dual_host(G: np.ndarray, rho: float) -> tuple[np.ndarray, float]:
    """:func:`_solve_dual_device`'s iterations in NumPy, leaving the loop once converged."""
    num_tasks = G.shape[0]
    ones = np.ones(num_tasks, dtype=G.dtype)
    g_b = G @ (ones / num_tasks)
    tiny = np.finfo(G.dtype).tiny

    def gradient(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        g_w = G @ w
        norm = math.sqrt(max(float(w @ g_w), tiny))
        return g_b + rho * g_w / norm, g_w, norm

    w = ones / num_tasks
    s = ones.copy()
    grad_h, _, _ = gradient(w)
    nu = float((s - grad_h).mean())
    residual = math.inf
    kkt = np.zeros((num_tasks + 1, num_tasks + 1), dtype=G.dtype)
    kkt[:num_tasks, num_tasks] = 1.0
    kkt[num_tasks, :num_tasks] = 1.0
    for _ in range(_IPM_ITERATIONS):
        grad_h, g_w, norm = gradient(w)
        mu = float(w @ s) / num_tasks
        kkt[:num_tasks, :num_tasks] = rho * (G / norm - np.outer(g_w, g_w) / norm**3) + np.diag(s / w)
        rhs = np.concatenate([-grad_h + _SIGMA * mu / w, [1.0 - w.sum()]])
        try:
            solution = np.linalg.solve(kkt, rhs)
        except np.linalg.LinAlgError:  # singular: NaN, as torch's solve_ex leaves it to the check
            solution = np.full(num_tasks + 1, np.nan)
        dw, nu_new = solution[:num_tasks], float(solution[num_tasks])
        ds = (_SIGMA * mu - w * s - s * dw) / w
        step = min(_step_to_boundary_host(w, dw), _step_to_boundary_host(s, ds))
        w, s, nu = w + step * dw, s + step * ds, nu + step * (nu_new - nu)
        grad_h, _, _ = gradient(w)
        # np.max propagates a NaN (Python's max would drop it, depending on the order)
        residual = float(np.max([np.abs(grad_h - s + nu).max(), (w * s).max(), abs(w.sum() - 1.0)]))
        if not residual > _TOL * 1e-3:  # converged (or NaN: the caller's check raises)
            break
    return w, residual


def cagrad_weights(gramian: Tensor, *, c: float = 0.4, rescale: int = 1) -> Tensor:
    """CAGrad weights ``a`` with ``d = J^T a`` (Liu et al. 2021, Algorithm 1).

    ``a = (1/T + lambda w*) / r`` with ``w*`` the dual solution, ``lambda = c ||g_0|| /
    ||g_w*||`` and ``r`` = 1, ``1 + c^2`` or ``1 + c`` for ``rescale`` 0, 1, 2. ``c = 0``
    returns ``1/T`` exactly (the mean gradient) without a solve.

    The dual is solved in float64 on ``gramian``'s device after dividing ``G`` by its mean
    diagonal (the weights are invariant to that scale), by the interior-point iterations
    of :func:`_solve_dual`; then one host sync checks the KKT residual. Raises
    :class:`PolicyError` when the Gramian is not finite or the solve does not reach the
    tolerance (which can happen when ``0`` lies in the convex hull of the gradients, where
    ``||g_w||`` vanishes and the dual objective is not differentiable).
    """
    method = "CAGrad"
    G = as_gramian(gramian, method)
    c = check_positive("c", c, allow_zero=True)
    if rescale not in RESCALES:
        raise ValueError(f"rescale must be one of {RESCALES}, got {rescale!r}")
    num_tasks = G.shape[0]
    mean = torch.full((num_tasks,), 1.0 / num_tasks, dtype=G.dtype, device=G.device)
    if c == 0.0:
        raise_unless(torch.isfinite(G).all(), method, "the Gramian is not finite")
        return mean.to(gramian.dtype)
    scale = G.diagonal().mean()
    G_n = G / torch.where(scale > 0, scale, 1.0)
    g0_norm = (mean @ G_n @ mean).clamp(min=0).sqrt()
    w, residual = _solve_dual(G_n, c * g0_norm)
    gw_norm = (w @ G_n @ w).clamp(min=0).sqrt()
    lam = c * g0_norm / gw_norm
    weights = mean + lam * w
    # All gradients zero: any weights give d = 0; keep the mean.
    weights = torch.where(scale > 0, weights, mean)
    residual = torch.where(scale > 0, residual, 0.0)
    divisor = {0: 1.0, 1: 1.0 + c**2, 2: 1.0 + c}[rescale]
    weights = weights / divisor
    ok = torch.isfinite(G).all() & torch.isfinite(weights).all() & (residual <= _TOL)
    raise_unless(
        ok,
        method,
        "the dual problem was not solved to tolerance (non-finite Gramian, or 0 in the "
        "convex hull of the task gradients)",
    )
    return weights.to(gramian.dtype)


class CAGrad(Policy):
    """CAGrad (Liu et al., NeurIPS 2021).

    Parameters
    ----------
    c
        Radius of the conflict-averse ball, >= 0 (default 0.4, the paper's NYUv2 and
        CityScapes value; LibMTL's default ``calpha`` is 0.5).
    rescale
        In ``(0, 1, 2)``; default 1, as in the official code.
    """

    name = "cagrad"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "parameters"

    def __init__(self, c: float = 0.4, rescale: int = 1) -> None:
        super().__init__()
        self.c = check_positive("c", c, allow_zero=True)
        if isinstance(rescale, bool) or rescale not in RESCALES:
            raise ValueError(f"hyperparameter 'rescale' must be one of {RESCALES}, got {rescale!r}")
        self.rescale = int(rescale)

    def act(self, observation: Observation) -> GradientWeights:
        return GradientWeights(cagrad_weights(observation["gramian"], c=self.c, rescale=self.rescale))

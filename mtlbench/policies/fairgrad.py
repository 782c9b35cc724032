"""FairGrad: alpha-fair resource allocation between the tasks.

Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024, Algorithm 1.
The update ``d = J^T w`` maximises the alpha-fair utility of the tasks' improvements
``g_t . d`` within a ball; its optimality condition is

    G w = w^{-1/alpha}     (elementwise, ``w > 0``; ``G = J J^T``),

which the official code (github.com/OptMN-Lab/fairgrad) and LibMTL solve with
``scipy.optimize.least_squares`` on the host from ``w = 1/T``. ``alpha = 1`` is
proportional fairness, the Nash-MTL condition ``G w = 1/w``; ``alpha -> infinity``
approaches max-min fairness (MGDA-like).

Solver (a deviation in method, not in the solution): the condition is the stationarity
condition of the strictly convex problem

    min_{w > 0}  1/2 w^T G w - sum_t psi(w_t),   psi'(w) = w^{-1/alpha}

(``psi = log`` for ``alpha = 1``, else ``psi(w) = w^p / p`` with ``p = 1 - 1/alpha``;
``-psi`` is convex for every ``alpha > 0``), which we solve on the device with Newton's
method and an Armijo backtracking line search, to a relative residual
``max_t |(G w)_t w_t^{1/alpha} - 1| <= tol``. Like the official code, the weights multiply
the raw task gradients (no rescaling).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtlbench.policies.base import (
    GradientWeights,
    Observation,
    Policy,
    as_gramian,
    check_integer,
    check_positive,
    raise_unless,
)

__all__ = ["FairGrad", "fairgrad_weights"]

_ARMIJO = 1e-4
_BACKTRACK = 30  # candidate steps t_max * 2^-k, k < 30


def _utility(w: Tensor, alpha: float) -> Tensor:
    """``sum_t psi(w_t)`` over the last dimension, ``psi' = w^{-1/alpha}``."""
    w = w.clamp(min=torch.finfo(w.dtype).tiny)
    if alpha == 1.0:
        return torch.log(w).sum(-1)
    power = 1.0 - 1.0 / alpha
    return (w**power / power).sum(-1)


def fairgrad_weights(gramian: Tensor, *, alpha: float = 1.0, max_iter: int = 50, tol: float = 1e-6) -> Tensor:
    """The weights ``w > 0`` with ``G w = w^{-1/alpha}`` (Ban & Ji 2024, Algorithm 1).

    ``G`` is divided by its mean diagonal ``m``; if ``v`` solves ``(G/m) v = v^{-1/alpha}``
    then ``w = m^{-alpha/(1+alpha)} v``. Newton starts from ``v_t = (G/m)_tt^{-alpha/(1+alpha)}``
    (the solution for orthogonal gradients); each step solves
    ``(G + diag(w^{-1/alpha-1}/alpha)) dw = w^{-1/alpha} - G w`` and takes the largest
    step ``t_max 2^-k`` satisfying Armijo, ``t_max`` keeping ``w > 0``. Fixed
    ``max_iter`` iterations on an accelerator (no host sync), early exit on the host; one
    sync then checks the residual. Raises :class:`PolicyError` on a non-finite Gramian, a
    zero task gradient, or when no solution is reached.
    """
    method = "FairGrad"
    alpha = check_positive("alpha", alpha)
    G = as_gramian(gramian, method)
    dtype, device = G.dtype, G.device
    scale = G.diagonal().mean()
    safe_scale = torch.where(scale > 0, scale, 1.0)
    G_n = G / safe_scale
    diagonal = G_n.diagonal()
    v = torch.where(diagonal > 0, diagonal, 1.0) ** (-alpha / (1.0 + alpha))
    # Built on the device: no host-to-device copy in the loop's setup.
    steps = 0.5 ** torch.arange(_BACKTRACK, dtype=dtype, device=device)
    on_host = device.type == "cpu"

    def residual_of(v: Tensor) -> Tensor:
        return ((G_n @ v) * v ** (1.0 / alpha) - 1.0).abs().max()

    for _ in range(max_iter):
        grad = G_n @ v - v ** (-1.0 / alpha)
        hessian = G_n + torch.diag(v ** (-1.0 / alpha - 1.0) / alpha)
        direction, _ = torch.linalg.solve_ex(hessian, -grad)
        to_boundary = torch.where(
            direction < 0, -v / direction.clamp(max=-torch.finfo(dtype).tiny), torch.inf
        )
        candidates = (0.99 * to_boundary.min()).clamp(max=1.0) * steps
        # f(v + t dv) - f(v) along the line, from two matrix-vector products only (tiny
        # matrix-matrix products can fan out to BLAS threads, which costs more than it saves).
        g_v, g_d = G_n @ v, G_n @ direction
        points = v[None, :] + candidates[:, None] * direction[None, :]
        quadratic = candidates * (direction @ g_v) + 0.5 * candidates**2 * (direction @ g_d)
        change = quadratic - (_utility(points, alpha) - _utility(v, alpha))
        armijo = change <= _ARMIJO * candidates * (grad @ direction)
        t = torch.where(
            armijo.any(), candidates.gather(0, torch.argmax(armijo.to(torch.int8)).reshape(1))[0], 0.0
        )
        v = v + t * direction
        # On the host a sync is free: stop once converged (or once a NaN appears).
        if on_host and not bool(residual_of(v) > 0.01 * tol):
            break
    residual = residual_of(v)
    weights = v * safe_scale ** (-alpha / (1.0 + alpha))
    ok = (
        torch.isfinite(G).all()
        & (diagonal > 0).all()
        & (v > 0).all()
        & torch.isfinite(weights).all()
        & (residual <= tol)
    )
    raise_unless(
        ok,
        method,
        f"no solution of G w = w^(-1/alpha) (alpha={alpha:g}) to relative residual {tol:g} "
        f"after {max_iter} Newton iterations (non-finite Gramian, a zero task gradient, or "
        "0 in the convex hull of the task gradients)",
    )
    return weights.to(gramian.dtype)


class FairGrad(Policy):
    """FairGrad (Ban & Ji, ICML 2024).

    Parameters
    ----------
    alpha
        The alpha-fairness exponent, > 0 (default 1.0).
    max_iter, tol
        Iteration limit (int >= 1, default 50) and tolerance (default 1e-6) of the Newton solver.
    """

    name = "fairgrad"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "parameters"

    def __init__(self, alpha: float = 1.0, max_iter: int = 50, tol: float = 1e-6) -> None:
        super().__init__()
        self.alpha = check_positive("alpha", alpha)
        self.max_iter = check_integer("max_iter", max_iter, 1)
        self.tol = check_positive("tol", tol)

    def act(self, observation: Observation) -> GradientWeights:
        weights = fairgrad_weights(
            observation["gramian"], alpha=self.alpha, max_iter=self.max_iter, tol=self.tol
        )
        return GradientWeights(weights)

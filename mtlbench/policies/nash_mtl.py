"""Nash-MTL: the Nash bargaining solution between the task gradients.

Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik, Fetaya, "Multi-Task Learning as a
Bargaining Game", ICML 2022, Sec. 3 and Algorithm 1. The update ``d = J^T a`` with
``a > 0`` solving

    G a = 1 / a        (elementwise; ``G = J J^T``)

is the Nash bargaining solution of the tasks (the paper's characterisation in Sec. 3; its
``G^T G`` is our ``G``). It is the stationarity condition of the strictly convex problem

    min_{a > 0}  f(a) = 1/2 a^T G a - sum_t log a_t,

a quadratic plus a logarithmic barrier, hence self-concordant. It has a unique solution
when no non-negative combination of the task gradients vanishes (e.g. linearly independent
gradients, the paper's assumption). At the solution ``||d||^2 = a^T G a = T``.

Solver (a deviation): the paper approximates the solution by a sequence of convex
problems solved with cvxpy/ECOS (Sec. 3.2, ``optim_niter=20`` in the official code). We
solve the convex problem above directly with Newton's method and a backtracking line search
(Boyd & Vandenberghe, *Convex Optimization*, Sec. 9.5-9.6), on the device, to a relative
residual ``max_t |a_t (G a)_t - 1| <= tol``; a residual above ``tol`` raises
:class:`PolicyError` (the official code keeps the previous weights when ECOS fails).

Official-code behaviour kept: ``update_weights_every`` (re-use the weights between
updates) and ``max_norm`` (default 1.0: the update is scaled down so that
``||d|| <= max_norm``, the official ``clip_grad_norm_`` on the shared parameters; since
``||d|| = sqrt(T)`` at the solution this is a constant factor ``max_norm / sqrt(T)`` when
``T > max_norm^2``; 0 disables it). Not kept: the official code also weights the task
heads' losses by ``a``; at the gradient level heads get their own unweighted gradients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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

__all__ = ["NashMTL", "nash_mtl_weights"]

_ARMIJO = 1e-4
_BACKTRACK = 30  # candidate steps t_max * 2^-k, k < 30


def nash_mtl_weights(gramian: Tensor, *, max_iter: int = 50, tol: float = 1e-6) -> Tensor:
    """The weights ``a > 0`` with ``G a = 1/a`` (Navon et al. 2022, Algorithm 1).

    ``G`` is first divided by its mean diagonal ``m`` (solve ``(G/m) b = 1/b``, then
    ``a = b / sqrt(m)``), and Newton's method starts from ``b_t = (G/m)_tt^{-1/2}``, the
    solution when the gradients are orthogonal. Each step solves ``(G + diag(1/a^2)) da =
    1/a - G a`` and takes the largest step of the form ``t_max 2^-k`` that satisfies the
    Armijo condition, where ``t_max`` (fraction to the boundary) keeps ``a > 0``. The loop
    runs ``max_iter`` times on an accelerator (no host sync; a converged iterate is a fixed
    point) and stops at convergence on the host; one sync then checks the residual.
    Raises :class:`PolicyError` when the Gramian is not finite, a task gradient is zero,
    or no solution is reached (e.g. some convex combination of the gradients is zero).
    """
    method = "Nash-MTL"
    G = as_gramian(gramian, method)
    dtype, device = G.dtype, G.device
    scale = G.diagonal().mean()
    G_n = G / torch.where(scale > 0, scale, 1.0)
    diagonal = G_n.diagonal()
    b = torch.where(diagonal > 0, diagonal, 1.0).rsqrt()
    # Built on the device: no host-to-device copy in the loop's setup.
    steps = 0.5 ** torch.arange(_BACKTRACK, dtype=dtype, device=device)
    on_host = device.type == "cpu"
    for _ in range(max_iter):
        grad = G_n @ b - 1.0 / b
        hessian = G_n + torch.diag(1.0 / b**2)
        direction, _ = torch.linalg.solve_ex(hessian, -grad)
        to_boundary = torch.where(
            direction < 0, -b / direction.clamp(max=-torch.finfo(dtype).tiny), torch.inf
        )
        t_max = (0.99 * to_boundary.min()).clamp(max=1.0)
        candidates = t_max * steps
        # f(b + t da) - f(b) along the line, from two matrix-vector products only (tiny
        # matrix-matrix products can fan out to BLAS threads, which costs more than it saves).
        g_b, g_d = G_n @ b, G_n @ direction
        points = b[None, :] + candidates[:, None] * direction[None, :]
        log_ratio = torch.log(points.clamp(min=torch.finfo(dtype).tiny) / b).sum(-1)
        change = candidates * (direction @ g_b) + 0.5 * candidates**2 * (direction @ g_d) - log_ratio
        armijo = change <= _ARMIJO * candidates * (grad @ direction)
        # The largest step satisfying Armijo (the first True); none: stay put.
        t = torch.where(
            armijo.any(), candidates.gather(0, torch.argmax(armijo.to(torch.int8)).reshape(1))[0], 0.0
        )
        b = b + t * direction
        # On the host a sync is free: stop once converged (or once a NaN appears).
        if on_host and not bool(((b * (G_n @ b)) - 1.0).abs().max() > 0.01 * tol):
            break
    residual = ((b * (G_n @ b)) - 1.0).abs().max()
    weights = b / torch.where(scale > 0, scale, 1.0).sqrt()
    ok = (
        torch.isfinite(G).all()
        & (diagonal > 0).all()
        & torch.isfinite(weights).all()
        & (b > 0).all()
        & (residual <= tol)
    )
    raise_unless(
        ok,
        method,
        f"no solution of G a = 1/a to relative residual {tol:g} after {max_iter} Newton "
        "iterations (non-finite Gramian, a zero task gradient, or 0 in the convex hull of "
        "the task gradients)",
    )
    return weights.to(gramian.dtype)


class NashMTL(Policy):
    """Nash-MTL (Navon et al., ICML 2022).

    Stateful: the last weights are re-used between updates.

    Parameters
    ----------
    update_weights_every
        Solve for new weights every this many steps (int >= 1, default 1).
    max_norm
        Clip the norm of the update to this, >= 0 (default 1.0, as in the official code; 0
        disables the clipping).
    max_iter, tol
        Iteration limit (default 50) and tolerance (default 1e-6) of the Newton solver.
    """

    name = "nash-mtl"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "parameters"

    def __init__(
        self,
        update_weights_every: int = 1,
        max_norm: float = 1.0,
        max_iter: int = 50,
        tol: float = 1e-6,
    ) -> None:
        super().__init__()
        self.update_weights_every = check_integer("update_weights_every", update_weights_every, 1)
        self.max_iter = check_integer("max_iter", max_iter, 1)
        self.max_norm = check_positive("max_norm", max_norm, allow_zero=True)
        self.tol = check_positive("tol", tol)
        self._step = 0
        self._weights: Tensor | None = None

    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        self._step = 0
        self._weights = None

    def act(self, observation: Observation) -> GradientWeights:
        gramian = observation["gramian"]
        if self._weights is None or self._step % self.update_weights_every == 0:
            self._weights = nash_mtl_weights(gramian, max_iter=self.max_iter, tol=self.tol)
        self._step += 1
        weights = self._weights.to(device=gramian.device, dtype=gramian.dtype)
        if self.max_norm > 0:
            # clip_grad_norm_ of the official code, from the Gramian: ||d||^2 = a^T G a.
            norm = (weights @ gramian.detach() @ weights).clamp(min=0).sqrt()
            weights = weights * (self.max_norm / (norm + 1e-6)).clamp(max=1.0)
        return GradientWeights(weights)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["step"] = self._step
        state["weights"] = None if self._weights is None else self._weights.detach().cpu()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._step = int(state.get("step", 0))
        weights = state.get("weights")
        self._weights = None if weights is None else torch.as_tensor(weights).to(self.device)

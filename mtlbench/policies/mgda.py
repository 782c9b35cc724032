"""MGDA and MGDA-UB: the min-norm point of the convex hull of the task gradients.

Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018.
The common descent direction of the multiple-gradient descent algorithm is the element of
minimum norm in the convex hull of the task gradients,

    w* = argmin_{w in simplex} || sum_t w_t g_t ||^2 = argmin_{w in simplex} w^T G w,

which the paper solves with the Frank-Wolfe method of Algorithm 2, using the exact
two-point line search of Algorithm 1. Everything here needs only the Gramian
``G = J J^T``. MGDA-UB (Sec. 3.3, Theorem 1) is the same solver applied to the gradients
with respect to the shared representation instead of the shared parameters, an upper
bound that costs one backward pass through the encoder.

Solver. Algorithm 2 (Frank-Wolfe) converges sublinearly and its stopping rule (the step
``gamma`` falls below a threshold) says nothing about the distance to the min-norm point:
on ``J = [[-2, -1, 0], [5, 3, 0], [1, -1, -1]]`` it still has cosine 0.87 to the exact
direction after 250 iterations. We therefore solve the same problem exactly, with
Wolfe's active-set algorithm for the minimum-norm point of a polytope (P. Wolfe, "Finding
the nearest point in a polytope", Math. Programming 11, 1976), written on the Gramian:
a point ``J^T w`` of the hull is represented by its weights, ``||J^T w||^2 = w^T G w`` and
``g_t . J^T w = (G w)_t``. It stops when the Frank-Wolfe duality gap
``||d||^2 - min_t g_t . d`` is at most ``tol * ||d||^2`` plus the rounding error of
``G w``, i.e. at the min-norm point to working precision, after finitely many steps.

Deviations from the official code (github.com/isl-org/MultiObjectiveOptimization): its
training script calls ``find_min_norm_element`` (projected gradient descent started from
the best pair of tasks, 250 iterations, stop at a step below 1e-5), and its two-point line
search clips ``gamma`` to ``[0.001, 0.999]``; both stop short of the exact min-norm point,
which this module returns.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from mtlbench.policies.base import (
    GradientWeights,
    Observation,
    Policy,
    PolicyError,
    Wrt,
    as_gramian,
    check_integer,
    check_positive,
    raise_unless,
)

__all__ = ["MGDA", "MGDAUB", "NORMALIZATIONS", "gradient_normalizers", "mgda_weights"]

#: Gradient normalisations of the official code (``gradient_normalizers``).
NORMALIZATIONS: tuple[str, ...] = ("none", "l2", "loss", "loss+")


def gradient_normalizers(gramian: Tensor, losses: Tensor | None, normalization: str) -> Tensor:
    """Per-task scale ``n_t`` by which the official code divides ``g_t`` before the solve.

    ``"none"``: 1; ``"l2"``: ``||g_t||``; ``"loss"``: ``L_t``; ``"loss+"``: ``L_t ||g_t||``.
    The paper does not use any (the official code calls them "optional and not included
    in the paper"); its sample CelebA configuration uses ``"loss+"``.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    num_tasks = gramian.shape[0]
    if normalization == "none":
        return torch.ones(num_tasks, dtype=gramian.dtype, device=gramian.device)
    norms = gramian.diagonal().clamp(min=0).sqrt()
    if normalization == "l2":
        return norms
    if losses is None or losses.shape != (num_tasks,):
        raise ValueError(f"normalization {normalization!r} needs losses of shape ({num_tasks},)")
    losses = losses.detach().to(device=gramian.device, dtype=gramian.dtype)
    return losses if normalization == "loss" else losses * norms


def _affine_minimiser(G_active: np.ndarray) -> np.ndarray:
    """``argmin v^T G v`` over the affine hull ``sum v = 1`` of the active gradients.

    Solves the KKT system ``[[G, 1], [1^T, 0]] [v; -lam] = [0; 1]``, which is regular when
    the active gradients are affinely independent (Wolfe's algorithm keeps them so); a
    least-squares solve covers rounding-level dependence.
    """
    size = G_active.shape[0]
    kkt = np.zeros((size + 1, size + 1))
    kkt[:size, :size] = G_active
    kkt[:size, size] = kkt[size, :size] = 1.0
    rhs = np.zeros(size + 1)
    rhs[size] = 1.0
    try:
        solution = np.linalg.solve(kkt, rhs)
    except np.linalg.LinAlgError:
        solution = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
    return solution[:size]


def _min_norm_host(gramian: np.ndarray, max_iter: int, tol: float) -> tuple[np.ndarray, bool]:
    """Wolfe's (1976) min-norm-point algorithm on the Gramian; returns ``(w, converged)``.

    Major cycle: add the task ``t`` minimising ``g_t . d`` while the duality gap
    ``||d||^2 - g_t . d`` exceeds ``tol * ||d||^2`` plus the rounding error of ``G w``.
    Minor cycle: move to the affine minimiser of the active set, or as far towards it as
    the simplex allows, dropping the tasks whose weight reaches 0.
    """
    num_tasks = gramian.shape[0]
    eps = np.finfo(np.float64).eps
    first = int(np.argmin(np.diagonal(gramian)))
    weights = np.zeros(num_tasks)
    weights[first] = 1.0
    active = [first]
    previous = np.inf
    for _ in range(max_iter):
        g_w = gramian @ weights
        norm2 = float(weights @ g_w)
        t = int(np.argmin(g_w))
        rounding = 8 * num_tasks * eps * float((np.abs(gramian) @ weights).max())
        # In exact arithmetic ||d||^2 falls strictly in every major cycle and an active task
        # has g_t . d = ||d||^2; either failing means the gap is at rounding level.
        if not norm2 - g_w[t] > tol * norm2 + rounding or t in active or not norm2 < previous:
            # converged (a NaN also ends here; the caller's finiteness check catches it)
            return weights, True
        previous = norm2
        active.append(t)
        while True:  # minor cycle; each pass either ends it or drops a task
            index = np.array(active)
            target = _affine_minimiser(gramian[np.ix_(index, index)])
            if not np.all(np.isfinite(target)):
                return np.full(num_tasks, np.nan), False
            if np.all(target > 0):
                weights = np.zeros(num_tasks)
                weights[index] = target
                break
            current = weights[index]
            blocking = target <= 0
            step = current[blocking] - target[blocking]  # > 0 unless both are 0
            ratios = np.where(step > 0, current[blocking] / np.where(step > 0, step, 1.0), 0.0)
            theta = float(ratios.min())
            current = current + theta * (target - current)
            current[np.flatnonzero(blocking)[int(np.argmin(ratios))]] = 0.0
            keep = current > 0
            weights = np.zeros(num_tasks)
            weights[index[keep]] = current[keep] / current[keep].sum()
            active = [int(i) for i in index[keep]]
    return weights, False


def _min_norm(gramian: Tensor, max_iter: int, tol: float) -> tuple[Tensor, bool]:
    """:func:`_min_norm_host` for a Gramian on any device, weights back on that device.

    The active-set loop branches on the data, so it runs on the host for every device;
    on an accelerator the copy of the ``T x T`` Gramian is the one synchronisation per call
    (the failure check needs one anyway), so CPU and accelerator runs take the same steps
    and give the same weights.
    """
    with np.errstate(all="ignore"):
        weights, converged = _min_norm_host(gramian.detach().cpu().numpy(), max_iter, tol)
    return torch.from_numpy(weights).to(gramian.device), converged


def mgda_weights(
    gramian: Tensor,
    *,
    losses: Tensor | None = None,
    normalization: str = "none",
    max_iter: int = 1000,
    tol: float = 1e-10,
) -> Tensor:
    """MGDA weights: the min-norm element of the convex hull of the (normalised) gradients.

    The minimiser of Sener & Koltun 2018, Eq. 3 (which their Algorithm 2 approximates by
    Frank-Wolfe), found exactly by Wolfe's active-set algorithm (module docstring). The solve uses the Gramian of the normalised gradients ``g_t / n_t`` (see
    :func:`gradient_normalizers`; ``G'_ij = G_ij / (n_i n_j)``); the returned weights,
    which lie on the simplex, multiply the *raw* task gradients, as in the official code
    (``scale[t] = sol[t]`` multiplies the raw loss ``L_t``). LibMTL's parameter-level
    MGDA instead applies them to the normalised gradients, i.e. weights ``sol_t / n_t``;
    with the default ``normalization="none"`` the two agree.

    Stops when the duality gap ``||d||^2 - min_t g_t . d`` is at most ``tol * ||d||^2``
    (plus rounding); ``max_iter`` bounds the major cycles (each adds one task to the active
    set; a few times ``T`` suffice). Computed in float64 on the host; one host sync per
    call on an accelerator. Returns a ``(T,)`` tensor of ``gramian``'s dtype and device.
    Raises :class:`PolicyError` when the Gramian (or a normaliser) is not finite, a
    normaliser is not positive, or the solver did not converge within ``max_iter``.
    """
    method = "MGDA"
    G = as_gramian(gramian, method)
    scale = gradient_normalizers(G, losses, normalization)
    finite_scale = torch.isfinite(scale).all() & (scale > 0).all()
    safe_scale = torch.where(scale > 0, scale, 1.0)
    G_normalised = G / (safe_scale[:, None] * safe_scale[None, :])
    weights, converged = _min_norm(G_normalised, max_iter, tol)
    ok = torch.isfinite(G).all() & finite_scale & torch.isfinite(weights).all()
    raise_unless(
        ok,
        method,
        f"the min-norm solve failed (non-finite Gramian, or a non-positive / non-finite "
        f"{normalization!r} gradient normaliser)",
    )
    if not converged:
        raise PolicyError(f"{method}: the min-norm solve did not converge in max_iter={max_iter} steps")
    return weights.to(gramian.dtype)


class MGDA(Policy):
    """MGDA (Sener & Koltun 2018) on the Gramian of the shared-parameter gradients.

    Parameters
    ----------
    normalization
        In ``("none", "l2", "loss", "loss+")`` (default ``"none"``, as in the paper and
        LibMTL's default ``mgda_gn``; the official sample CelebA configuration uses ``"loss+"``).
    max_iter, tol
        Of the exact min-norm solver (defaults 1000 and 1e-10): it stops when the duality gap
        is at most ``tol * ||d||^2`` (see :func:`mgda_weights`).
    """

    name = "mgda"
    #: 2: the exact min-norm solver (version 1 stopped Frank-Wolfe early, issue 14 item 17)
    version = "2"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    # Annotated so that the "-UB" subclass may override it with "representation".
    wrt: ClassVar[Wrt] = "parameters"

    def __init__(self, normalization: str = "none", max_iter: int = 1000, tol: float = 1e-10) -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"hyperparameter 'normalization' must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        self.normalization = normalization
        self.max_iter = check_integer("max_iter", max_iter, 1)
        self.tol = check_positive("tol", tol, allow_zero=True)

    def act(self, observation: Observation) -> GradientWeights:
        weights = mgda_weights(
            observation["gramian"],
            losses=observation.get("losses"),
            normalization=self.normalization,
            max_iter=self.max_iter,
            tol=self.tol,
        )
        return GradientWeights(weights)


class MGDAUB(MGDA):
    """MGDA-UB (Sener & Koltun 2018, Sec. 3.3): MGDA on representation-level gradients.

    Theorem 1 of the paper: the min-norm point of the gradients with respect to the shared
    representation ``Z`` gives an upper bound of the MGDA objective; the weights combine the
    per-task losses exactly as MGDA's do.
    """

    name = "mgda-ub"
    wrt = "representation"

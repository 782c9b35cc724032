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

Deviations from the official code (github.com/isl-org/MultiObjectiveOptimization), all
documented on :func:`mgda_weights`:

* the official training script calls ``find_min_norm_element`` (a projected-gradient
  solver started from the best pair of tasks), not the Frank-Wolfe solver of Algorithm 2;
  we implement Algorithm 2 as the paper states it (uniform start, stop once the step
  ``gamma`` falls below ``tol`` or after ``max_iter`` iterations);
* its two-point line search clips ``gamma`` to ``[0.001, 0.999]``; we use the exact
  minimiser in ``[0, 1]`` of Algorithm 1.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from mtlbench.policies.base import (
    GradientWeights,
    Observation,
    Policy,
    Wrt,
    as_gramian,
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


def _frank_wolfe(gramian: Tensor, max_iter: int, tol: float) -> Tensor:
    """Algorithm 2: Frank-Wolfe on ``min_{w in simplex} w^T G w`` from ``w = 1/T``.

    On the CPU the loop runs on a NumPy copy of the ``T x T`` Gramian (the same arithmetic;
    a torch op on a ``(T,)`` tensor costs ~20x more dispatch than the work), on an
    accelerator in torch with no host sync.
    """
    if gramian.device.type == "cpu":
        return torch.from_numpy(_frank_wolfe_host(gramian.detach().numpy(), max_iter, tol))
    return _frank_wolfe_device(gramian, max_iter, tol)


def _frank_wolfe_device(gramian: Tensor, max_iter: int, tol: float) -> Tensor:
    """:func:`_frank_wolfe` in torch on ``gramian``'s device, with no host sync."""
    num_tasks = gramian.shape[0]
    dtype, device = gramian.dtype, gramian.device
    weights = torch.full((num_tasks,), 1.0 / num_tasks, dtype=dtype, device=device)
    index = torch.arange(num_tasks, device=device)
    diagonal = gramian.diagonal()
    running = torch.ones((), dtype=torch.bool, device=device)
    for _ in range(max_iter):
        g_w = gramian @ weights
        vertex = (index == torch.argmin(g_w)).to(dtype)  # e_t, without a host sync
        # Algorithm 1 with theta = g_t and theta_bar = d = J^T w: the exact minimiser of
        # ||gamma g_t + (1 - gamma) d||^2 over gamma in [0, 1].
        dd = weights @ g_w
        td = g_w @ vertex
        tt = diagonal @ vertex
        denom = dd + tt - 2 * td
        gamma = torch.where(denom > 0, (dd - td) / denom.clamp(min=torch.finfo(dtype).tiny), 0.0)
        gamma = torch.where(running, gamma.clamp(0.0, 1.0), 0.0)
        weights = weights + gamma * (vertex - weights)
        # "until gamma ~ 0": later iterations are frozen, so the result equals the paper's
        # early stop (the host version leaves the loop instead).
        running = running & (gamma >= tol)
    return weights


def _frank_wolfe_host(gramian: np.ndarray, max_iter: int, tol: float) -> np.ndarray:
    """:func:`_frank_wolfe` on the host: the same iterations, leaving at ``gamma < tol``."""
    num_tasks = gramian.shape[0]
    weights = np.full(num_tasks, 1.0 / num_tasks, dtype=gramian.dtype)
    diagonal = np.diagonal(gramian)
    for _ in range(max_iter):
        g_w = gramian @ weights
        t = int(np.argmin(g_w))
        dd = float(weights @ g_w)
        td = float(g_w[t])
        denom = dd + float(diagonal[t]) - 2.0 * td
        # NaN stays NaN (min/max would hide it); the caller's finiteness check catches it.
        gamma = (dd - td) / denom if denom > 0 else (0.0 if denom <= 0 else math.nan)
        gamma = gamma if math.isnan(gamma) else min(max(gamma, 0.0), 1.0)
        weights = weights * (1.0 - gamma)
        weights[t] += gamma
        if not gamma >= tol:
            break
    return weights


def mgda_weights(
    gramian: Tensor,
    *,
    losses: Tensor | None = None,
    normalization: str = "none",
    max_iter: int = 250,
    tol: float = 1e-5,
) -> Tensor:
    """MGDA weights: the min-norm element of the convex hull of the (normalised) gradients.

    Sener & Koltun 2018, Algorithm 2 (Frank-Wolfe) with the line search of Algorithm 1.
    The solve uses the Gramian of the normalised gradients ``g_t / n_t`` (see
    :func:`gradient_normalizers`; ``G'_ij = G_ij / (n_i n_j)``); the returned weights,
    which lie on the simplex, multiply the *raw* task gradients, as in the official code
    (``scale[t] = sol[t]`` multiplies the raw loss ``L_t``). LibMTL's parameter-level
    MGDA instead applies them to the normalised gradients, i.e. weights ``sol_t / n_t``;
    with the default ``normalization="none"`` the two agree.

    Frank-Wolfe converges sublinearly: after ``k`` iterations the duality gap
    ``||d||^2 - min_t g_t . d`` is ``O(max_t G_tt / k)``; ``max_iter=250`` is the official
    code's iteration limit. Computed in float64 on ``gramian``'s device; one host sync (the
    failure check) per call on an accelerator. Returns a ``(T,)`` tensor of
    ``gramian``'s dtype. Raises :class:`PolicyError` when the Gramian (or a normaliser) is
    not finite or a normaliser is not positive.
    """
    method = "MGDA"
    G = as_gramian(gramian, method)
    scale = gradient_normalizers(G, losses, normalization)
    finite_scale = torch.isfinite(scale).all() & (scale > 0).all()
    safe_scale = torch.where(scale > 0, scale, 1.0)
    G_normalised = G / (safe_scale[:, None] * safe_scale[None, :])
    weights = _frank_wolfe(G_normalised, max_iter, tol)
    ok = torch.isfinite(G).all() & finite_scale & torch.isfinite(weights).all()
    raise_unless(
        ok,
        method,
        f"the min-norm solve failed (non-finite Gramian, or a non-positive / non-finite "
        f"{normalization!r} gradient normaliser)",
    )
    return weights.to(gramian.dtype)


class MGDA(Policy):
    """MGDA (Sener & Koltun 2018) on the Gramian of the shared-parameter gradients.

    Hyperparameters: ``normalization`` in ``("none", "l2", "loss", "loss+")`` (default
    ``"none"``, as in the paper and LibMTL's default ``mgda_gn``; the official sample CelebA
    configuration uses ``"loss+"``), ``max_iter`` and ``tol`` of the Frank-Wolfe solver
    (Algorithm 2: stop when ``gamma < tol``).
    """

    name = "mgda"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    # Annotated so that the "-UB" subclass may override it with "representation".
    wrt: ClassVar[Wrt] = "parameters"

    def __init__(self, normalization: str = "none", max_iter: int = 250, tol: float = 1e-5) -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"hyperparameter 'normalization' must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"hyperparameter 'max_iter' must be an integer >= 1, got {max_iter!r}")
        self.normalization = normalization
        self.max_iter = max_iter
        self.tol = check_positive("tol", tol, allow_zero=True)

    def hparams(self) -> dict[str, Any]:
        return {"normalization": self.normalization, "max_iter": self.max_iter, "tol": self.tol}

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

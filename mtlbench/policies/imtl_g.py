"""IMTL-G: gradient balance with equal projections on every task gradient.

Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang, "Towards Impartial Multi-task Learning",
ICLR 2021: the gradient balance "IMTL-G" and its closed form (Algorithm 1). The shared
update ``d = sum_t alpha_t g_t`` (``sum_t alpha_t = 1``) is chosen so that its projections
on the unit task gradients ``u_t = g_t / ||g_t||`` are all equal, ``d . u_1 = d . u_t``. With
``D = [g_1 - g_2, ..., g_1 - g_T]`` and ``U = [u_1 - u_2, ..., u_1 - u_T]`` (rows) the
closed form is

    alpha_{2:T} = g_1 U^T (D U^T)^{-1},    alpha_1 = 1 - sum_{t>=2} alpha_t.

Equal projections with ``sum alpha = 1`` mean ``G alpha = c n`` (``n_t = ||g_t||``), i.e.
``C beta = c 1`` for the cosine matrix ``C = N^-1 G N^-1`` (``N = diag(n)``) and
``beta = N alpha``; when ``C`` is invertible the closed form above is
``alpha = N^-1 C^-1 1 / (1^T N^-1 C^-1 1)``, so the method needs only ``G = J J^T``.

Rank deficiency (``T > rank J``, e.g. ``g_3 = g_1 + g_2``). ``D U^T`` is then singular and
equal projections may be impossible for any ``d != 0`` (for unit vectors ``e_1``, ``e_2``,
``(e_1 + e_2)/sqrt 2`` they force ``d = 0``). We use the Moore-Penrose generalisation
``beta = C^+ 1``: the projections ``U d`` are then proportional to the orthogonal
projection of the all-equal vector ``1`` onto the achievable projection vectors
(``range C``), i.e. as close to equal as a least-squares fit allows, exactly equal
whenever equality is achievable (e.g. duplicated gradients), and identical to the closed
form when ``C`` is invertible. Eigenvalues of ``C`` below ``T * eps * max eig`` (``eps``
of the Gramian's dtype; the usual numerical-rank cutoff) count as zero.

Deviations: the paper computes the gradients with respect to the shared feature ``z``
(and applies ``alpha`` to the losses); this policy uses the shared parameters by default,
as LibMTL does without ``rep_grad``. The paper's hybrid IMTL also scales the losses with
IMTL-L; that is a separate loss-level policy (``"imtl-l"``). The weights may be negative
(the closed form has no sign constraint).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtlbench.policies.base import GradientWeights, Observation, Policy, as_gramian, raise_unless

__all__ = ["IMTLG", "imtl_g_weights"]


def imtl_g_weights(gramian: Tensor) -> Tensor:
    """IMTL-G scaling factors ``alpha`` (sum 1) from the Gramian (module docstring).

    ``alpha = N^-1 C^+ 1 / (1^T N^-1 C^+ 1)``, by a symmetric eigendecomposition of the
    cosine matrix ``C`` in float64 on ``gramian``'s device (no host sync); one sync follows
    for the failure check. Equals Algorithm 1's closed form when the task gradients are
    linearly independent. Raises :class:`PolicyError` when a task gradient is zero
    (``u_t`` undefined), the Gramian is not finite, or no direction has a positive common
    projection (``1^T N^-1 C^+ 1 = 0``, e.g. two opposite gradients).
    """
    method = "IMTL-G"
    G = as_gramian(gramian, method)
    num_tasks = G.shape[0]
    norms = G.diagonal().clamp(min=0).sqrt()
    safe_norms = torch.where(norms > 0, norms, 1.0)
    finite = torch.isfinite(G).all()
    cosines = G / (safe_norms[:, None] * safe_norms[None, :])
    cosines = torch.where(finite, cosines, torch.eye(num_tasks, dtype=G.dtype, device=G.device))
    eigenvalues, eigenvectors = torch.linalg.eigh(cosines)
    cutoff = num_tasks * torch.finfo(gramian.dtype).eps * eigenvalues.abs().max()
    inverse = torch.where(
        eigenvalues > cutoff, 1.0 / torch.where(eigenvalues > cutoff, eigenvalues, 1.0), 0.0
    )
    beta = eigenvectors @ (inverse * (eigenvectors.mT @ torch.ones_like(norms)))  # C^+ 1
    alpha = beta / safe_norms
    total = alpha.sum()
    weights = alpha / torch.where(total != 0, total, 1.0)
    scale = alpha.abs().sum()
    ok = finite & (norms > 0).all() & (total.abs() > 1e-12 * scale) & torch.isfinite(weights).all()
    raise_unless(
        ok,
        method,
        "no impartial update: a task gradient is zero, the Gramian is not finite, or no "
        "direction has a positive common projection on the task gradients (e.g. opposite gradients)",
    )
    return weights.to(gramian.dtype)


class IMTLG(Policy):
    """IMTL-G (Liu et al., ICLR 2021): impartial gradient weights, no hyperparameters."""

    name = "imtl-g"
    #: 2: the pseudo-inverse generalisation for linearly dependent gradients (issue 14 item 18)
    version = "2"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "parameters"

    def act(self, observation: Observation) -> GradientWeights:
        return GradientWeights(imtl_g_weights(observation["gramian"]))

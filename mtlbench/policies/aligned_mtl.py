"""Aligned-MTL: align the principal components of the task gradients.

Senushkin, Patakin, Kuznetsov, Konushin, "Independent Component Alignment for Multi-Task
Learning", CVPR 2023, Algorithm 1. The gradient matrix ``J`` (rows ``g_t``) is replaced by
the closest matrix, in the Procrustes sense, whose singular values are all equal, which
makes the linear system of gradients perfectly conditioned (condition number 1). From the
eigen-decomposition of the Gramian ``G = J J^T = V diag(lambda) V^T``:

    B = sqrt(lambda_min) V diag(lambda)^{-1/2} V^T,    aligned gradients  J_hat = B J,

and the update is ``d = J_hat^T 1 = J^T (B 1)``, i.e. the task weights ``a = B 1``. The
scale ``sqrt(lambda_min)`` (smallest singular value of ``J``) is the paper's default;
the official code (github.com/SamsungLabs/MTL, ``ProcrustesSolver``) also offers
``"median"`` and ``"rmse"`` (the square root of the median or the mean eigenvalue).
Eigenvalues at or below ``max(lambda) * T * eps`` (``eps`` of the Gramian's dtype, as in
the official code, which works in float32) are treated as zero: ``J`` is rank deficient
and ``B`` uses the non-zero part of the spectrum only.

Deviations: the official code sums the aligned gradients (weights ``B 1``), which we keep;
TorchJD uses the mean (``B 1/T``). Aligned-MTL-UB (the paper's cheaper variant) is the
same computation on the gradients of the shared representation: :class:`AlignedMTLUB`.
``torch.linalg.eigh`` synchronises with the host on CUDA (to check convergence); that is
the one sync of this policy.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from mtlbench.policies.base import (
    GradientWeights,
    Observation,
    Policy,
    Wrt,
    as_gramian,
    raise_unless,
)

__all__ = ["SCALE_MODES", "AlignedMTL", "AlignedMTLUB", "aligned_mtl_weights"]

#: The official code's ``scale_mode`` options.
SCALE_MODES: tuple[str, ...] = ("min", "median", "rmse")


def aligned_mtl_weights(gramian: Tensor, *, scale_mode: str = "min") -> Tensor:
    """Aligned-MTL weights ``a = B 1`` (Senushkin et al. 2023, Algorithm 1).

    Computed in float64 on ``gramian``'s device; the rank cut-off uses the machine epsilon
    of ``gramian``'s own dtype. A zero Gramian (all gradients zero, rank 0) gives weights
    ``1`` (any weights give ``d = 0``). Raises :class:`PolicyError` when the Gramian is
    not finite (``torch.linalg.eigh`` itself raises on non-convergence).
    """
    method = "Aligned-MTL"
    if scale_mode not in SCALE_MODES:
        raise ValueError(f"scale_mode must be one of {SCALE_MODES}, got {scale_mode!r}")
    G = as_gramian(gramian, method)
    num_tasks = G.shape[0]
    finite = torch.isfinite(G).all()
    # eigh on a non-finite matrix may raise or hang in LAPACK: solve a harmless stand-in
    # and report the failure below.
    G = torch.where(finite, G, torch.eye(num_tasks, dtype=G.dtype, device=G.device))
    eigenvalues, eigenvectors = torch.linalg.eigh(G)
    eps = torch.finfo(gramian.dtype).eps if gramian.dtype.is_floating_point else torch.finfo(G.dtype).eps
    kept = eigenvalues > eigenvalues.max() * num_tasks * eps
    safe = torch.where(kept, eigenvalues, 1.0)
    if scale_mode == "min":
        scale = torch.where(kept, eigenvalues, torch.inf).min()
    elif scale_mode == "median":
        scale = torch.where(kept, eigenvalues, torch.nan).nanmedian()
    else:
        scale = torch.where(kept, eigenvalues, 0.0).sum() / kept.sum().clamp(min=1)
    factors = torch.where(kept, (scale / safe).sqrt(), 0.0)
    balance = (eigenvectors * factors[None, :]) @ eigenvectors.mT
    ones = torch.ones(num_tasks, dtype=G.dtype, device=G.device)
    weights = torch.where(kept.any(), balance @ ones, ones)
    ok = finite & torch.isfinite(weights).all()
    raise_unless(ok, method, "the Gramian is not finite")
    return weights.to(gramian.dtype)


class AlignedMTL(Policy):
    """Aligned-MTL (Senushkin et al., CVPR 2023).

    Parameters
    ----------
    scale_mode
        The scale of the aligned gradients, from the Gramian's kept eigenvalues: their
        minimum (``"min"``, default, the paper's), median (``"median"``) or mean
        (``"rmse"``, the official code's name for it).
    """

    name = "aligned-mtl"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    # Annotated so that the "-UB" subclass may override it with "representation".
    wrt: ClassVar[Wrt] = "parameters"

    def __init__(self, scale_mode: str = "min") -> None:
        super().__init__()
        if scale_mode not in SCALE_MODES:
            raise ValueError(f"hyperparameter 'scale_mode' must be one of {SCALE_MODES}, got {scale_mode!r}")
        self.scale_mode = scale_mode

    def act(self, observation: Observation) -> GradientWeights:
        return GradientWeights(aligned_mtl_weights(observation["gramian"], scale_mode=self.scale_mode))


class AlignedMTLUB(AlignedMTL):
    """Aligned-MTL-UB: Aligned-MTL on the gradients of the shared representation."""

    name = "aligned-mtl-ub"
    wrt = "representation"

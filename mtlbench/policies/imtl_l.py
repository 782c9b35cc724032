"""IMTL-L, the loss-balancing half of Impartial Multi-Task Learning (Liu et al., ICLR 2021).

Each task gets a learnable scale parameter ``s_t`` and the objective is (Liu et al. 2021,
the "loss balance" part, IMTL-L)

    L(theta, s) = sum_t exp(s_t) L_t(theta) - s_t,

so the loss weight of task ``t`` is ``w_t = exp(s_t)`` and ``dL/ds_t = exp(s_t) L_t - 1``.
At the fixed point ``exp(s_t) L_t = 1``: every scaled loss is 1, which is what makes the
method "impartial" to loss scales. ``s = 0`` initially (weights 1, EW's scale), as in LibMTL.

As for UW (:mod:`mtlbench.policies.uw`), ``s`` is owned by the policy and stepped by its own
Adam optimiser with the env's learning rate (reset context ``lr``, ``1e-4`` when absent)
unless ``lr`` is given; LibMTL trains ``s`` with the model's optimiser (which for NYUv2 also
applies weight decay 1e-5 to it; we do not). The weights returned are those before the update.

Equivalence with UW: mtlbench's UW is ``exp(-s) L + s`` (:mod:`mtlbench.policies.uw`). At
``s_IMTL = -s_UW`` the two ``s``-gradients are exact negatives, Adam is odd in the gradient,
and both start at ``s = 0``, so the two methods give bit-identical weights at every step
(tested) and identical leaderboard rows. In LibMTL they differ only by UW's 0.5 factors (a
constant scale of the model's gradient, to which Adam is invariant up to ``eps`` and
weight decay) and by the weight decay LibMTL applies to ``s``.
"""

from __future__ import annotations

import torch

from mtlbench.policies.learned_scales import LearnedLossScales

__all__ = ["IMTLL", "imtl_l_scale_grad", "imtl_l_weights"]


def imtl_l_weights(scales: torch.Tensor) -> torch.Tensor:
    """Loss weights ``exp(s_t)``."""
    return torch.exp(scales)


def imtl_l_scale_grad(scales: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    """``d/ds_t [exp(s_t) L_t - s_t] = exp(s_t) L_t - 1``."""
    return torch.exp(scales) * losses - 1.0


class IMTLL(LearnedLossScales):
    """IMTL-L: learnable loss scales ``exp(s_t)`` trained on ``exp(s_t) L_t - s_t``."""

    name = "imtl-l"

    weights_of = staticmethod(imtl_l_weights)
    scale_grad = staticmethod(imtl_l_scale_grad)

"""Uncertainty weighting (UW), Kendall, Gal and Cipolla, CVPR 2018.

Each task gets a learnable log-variance ``s_t = log sigma_t^2`` and the objective is
(Kendall et al. 2018, Section 3, in the log-variance form they train for numerical stability)

    L(theta, s) = sum_t exp(-s_t) L_t(theta) + s_t,

so the loss weight of task ``t`` is ``w_t = exp(-s_t)`` and ``s`` is trained by gradient
descent on the same objective: ``dL/ds_t = 1 - exp(-s_t) L_t``, whose fixed point is
``exp(-s_t) = 1 / L_t`` (tasks with a large loss, i.e. high homoscedastic uncertainty, are
down-weighted).

Conventions and deviations (documented, deliberate):

* Form. The paper's regression form is ``L_t / (2 sigma_t^2) + log sigma_t``; LibMTL
  (``LibMTL/weighting/UW.py``) uses it literally, ``L_t / (2 exp(s_t)) + s_t / 2``, i.e. one
  half of the objective above, with ``s_t`` initialised to ``-0.5`` (initial weight 0.82).
  We use the common form ``exp(-s_t) L_t + s_t`` with ``s_t = 0`` initially, so the initial
  weights are exactly 1 per task (EW's scale, see :mod:`mtlbench.policies.ew`). The factor
  1/2 only rescales the gradient of ``s``, to which Adam is (nearly) invariant.
* Optimiser. ``s`` is owned by the policy and stepped by its own Adam optimiser, with the
  env's learning rate (reset context ``lr``; ``1e-4`` when absent) unless ``lr`` is given.
  In LibMTL it shares the model's optimiser (same Adam and learning rate).
* Data. The gradient of ``s`` is computed from the observed (detached) batch losses; it is
  exactly the autograd gradient of the objective w.r.t. ``s``. The weights returned for this
  step are those *before* the ``s`` update, as in a joint backward/step.
* Equivalence. In this form, with its own Adam and ``s = 0`` at the start, UW gives
  bit-identical weights to IMTL-L (``exp(s) L - s``, :mod:`mtlbench.policies.imtl_l`) at
  every step: ``s_IMTL = -s_UW`` throughout, since the two ``s``-gradients are then exact
  negatives and Adam is odd in the gradient. Their leaderboard rows coincide.
"""

from __future__ import annotations

import torch

from mtlbench.policies.learned_scales import DEFAULT_LR, LearnedLossScales

__all__ = ["DEFAULT_LR", "UW", "uw_log_variance_grad", "uw_weights"]


def uw_weights(scales: torch.Tensor) -> torch.Tensor:
    """Loss weights ``exp(-s_t)`` from the log-variances ``scales`` (``s``)."""
    return torch.exp(-scales)


def uw_log_variance_grad(scales: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    """``d/ds_t [exp(-s_t) L_t + s_t] = 1 - exp(-s_t) L_t``, ``scales`` being the log-variances ``s``."""
    return 1.0 - torch.exp(-scales) * losses


class UW(LearnedLossScales):
    """Uncertainty weighting with learnable log-variances ``s`` (weights ``exp(-s)``)."""

    name = "uw"

    weights_of = staticmethod(uw_weights)
    scale_grad = staticmethod(uw_log_variance_grad)

    @property
    def log_vars(self) -> torch.nn.Parameter | None:
        """The learnable log-variances ``s_t = log sigma_t^2`` (the base class's ``scales``)."""
        return self.scales

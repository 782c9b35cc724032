"""Geometric loss strategy (GLS), Chennupati et al., CVPR Workshops 2019 ("MultiNet++").

GLS minimises the geometric mean of the task losses (Chennupati et al. 2019, the GLS loss):

    L_GLS = (prod_t L_t)^(1/T).

As a loss-level policy it returns weights ``w`` such that the env's weighted sum
``sum_t w_t L_t`` (with ``w`` held constant) has the gradient of ``T * L_GLS``. Derivation:

    d L_GLS / d L_t = (1/T) (prod_s L_s)^(1/T) / L_t = L_GLS / (T L_t),

so ``grad L_GLS = sum_t L_GLS / (T L_t) grad L_t``; multiplying by ``T`` (EW's scale, see
:mod:`mtlbench.policies.ew`) gives

    w_t = L_GLS / L_t.

With equal losses every weight is 1 (EW). The weights are computed in log space,
``exp(mean_s log L_s - log L_t)``, with the losses clamped below at ``eps`` (a zero loss
would make the geometric mean and its gradient degenerate). LibMTL (``GLS.py``)
back-propagates ``L_GLS`` itself, i.e. ``1/T`` of our scale.
"""

from __future__ import annotations

import torch

from mtlbench.policies.base import Observation, Policy

__all__ = ["GLS", "gls_weights"]


def gls_weights(losses: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``w_t = (prod_s L_s)^(1/T) / L_t = T * d L_GLS / d L_t`` (log space)."""
    log_l = torch.log(losses.clamp_min(eps))
    return torch.exp(log_l.mean(dim=-1, keepdim=True) - log_l)


class GLS(Policy):
    """Geometric loss strategy: weights ``L_GLS / L_t`` (gradient of ``T * L_GLS``)."""

    name = "gls"
    level = "loss"
    needs = frozenset({"losses"})

    def act(self, observation: Observation) -> torch.Tensor:
        return gls_weights(observation["losses"].detach())

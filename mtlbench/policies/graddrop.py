"""Gradient sign dropout (GradDrop), Chen et al., NeurIPS 2020, Algorithm 1.

At a shared activation layer, with ``g_t`` the gradient of ``L_t`` w.r.t. the activations,
GradDrop computes per element the positive sign purity

    P = 0.5 * (1 + sum_t g_t / sum_t |g_t|)        (in [0, 1]),

draws ``U ~ U(0, 1)`` i.i.d. per element, keeps for every task only the gradients of the
sign the draw picks,

    M_t = 1[P > U] 1[g_t > 0] + 1[P < U] 1[g_t < 0],

and back-propagates ``sum_t (leak + (1 - leak) M_t) g_t`` (``f`` = identity, ``leak = 0`` as in
the paper's multitask experiments). Where all tasks agree in sign, ``P`` is 0 or 1 and
nothing is dropped.

What this implementation does (documented): ``obs["jacobian"]`` holds the gradients w.r.t.
the shared representation (``wrt = "representation"``), flattened over batch and feature
dimensions; ``P``, ``U`` and the masks are computed *per element of that flattened tensor*,
i.e. per example and per feature. That is the paper's basic algorithm for tasks that share
their inputs. The paper's extension for batch-separated inputs (and LibMTL, which always
uses it) first sums ``sign(input) * g_t`` over the batch dimension and draws one mask per
feature shared by all examples; the env does not expose the representation's values, so
that variant is not implemented. ``1e-7`` guards the division (LibMTL's constant). The
result is returned as an explicit :class:`GradientDirection` (it is not a linear combination
of the task gradients); heads get their unweighted gradients.
"""

from __future__ import annotations

import torch

from mtlbench.policies.base import (
    GradientDirection,
    Observation,
    Policy,
    PolicyError,
    check_in_range,
    require_observed,
)

__all__ = ["GradDrop", "graddrop_direction", "sign_purity"]

_EPS = 1e-7


def sign_purity(jacobian: torch.Tensor) -> torch.Tensor:
    """``P = 0.5 (1 + sum_t g_t / sum_t |g_t|)`` per element, shape ``(D,)``."""
    return 0.5 * (1.0 + jacobian.sum(dim=0) / (jacobian.abs().sum(dim=0) + _EPS))


def graddrop_direction(jacobian: torch.Tensor, uniform: torch.Tensor, leak: float = 0.0) -> torch.Tensor:
    """``sum_t (leak + (1 - leak) M_t) g_t`` for a draw ``uniform`` of ``U(0, 1)``, shape ``(D,)``."""
    purity = sign_purity(jacobian)
    keep_pos = (purity > uniform).unsqueeze(0) & (jacobian > 0)
    keep_neg = (purity < uniform).unsqueeze(0) & (jacobian < 0)
    mask = (keep_pos | keep_neg).to(jacobian.dtype)
    return (jacobian * (leak + (1.0 - leak) * mask)).sum(dim=0)


class GradDrop(Policy):
    """GradDrop on the representation gradients; returns the masked gradient sum.

    Parameters
    ----------
    leak
        Fraction of every task's gradient that always passes (paper: 0 for multitask).
    """

    name = "graddrop"
    level = "gradient"
    needs = frozenset({"losses", "jacobian"})
    wrt = "representation"

    def __init__(self, leak: float = 0.0) -> None:
        super().__init__()
        self.leak = check_in_range("leak", leak, 0.0, 1.0)

    def act(self, observation: Observation) -> GradientDirection:
        if self.generator is None:
            raise PolicyError("graddrop: call reset() before act()")
        require_observed(observation, "jacobian", "graddrop")
        jac = observation["jacobian"].detach()
        uniform = torch.rand(jac.shape[1], generator=self.generator, device=self.generator.device).to(
            device=jac.device, dtype=jac.dtype
        )
        return GradientDirection(graddrop_direction(jac, uniform, self.leak))

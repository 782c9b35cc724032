"""GradNorm, Chen, Badrinarayanan, Lee and Rabinovich, ICML 2018, Algorithm 1.

Learnable task weights ``w`` (initially 1) are trained to equalise the *training rates* of
the tasks through the norms of their weighted gradients. With ``g_t`` the gradient of
``L_t`` w.r.t. the chosen shared tensor ``W``:

    G_t = ||w_t g_t|| = w_t ||g_t||,          Gbar = mean_t G_t,
    Ltilde_t = L_t(k) / L_t(0),                r_t = Ltilde_t / mean_s Ltilde_s,
    L_grad = sum_t | G_t - Gbar r_t^alpha |   (the target Gbar r^alpha held constant),

so ``dL_grad/dw_t = sign(G_t - Gbar r_t^alpha) ||g_t||``. ``w`` takes one optimiser step on
``L_grad`` and is then renormalised to ``sum_t w_t = T`` (EW's scale). The model step of
this iteration uses the weights *before* the update (Algorithm 1). ``alpha = 1.5``.

Implementation choices (documented):

* ``||g_t|| = sqrt(G_tt)`` comes from the Gramian of the per-task gradients, so GradNorm
  needs ``{"losses", "gramian"}``, never the full Jacobian.
* ``W`` is the shared *representation* (``wrt = "representation"``), as in LibMTL's
  ``rep_grad`` mode and the Lin et al. (2022) benchmark; the paper uses the last shared
  layer's weights. As there, it is a gradient-level method: the weights combine the shared
  gradients and the heads get unweighted gradients (``weight_heads=True`` also weights the
  heads, as GradNorm's loss ``sum_t w_t L_t`` does in the original paper).
* ``L_t(0)`` is the loss at the first step after :meth:`reset` (Algorithm 1). LibMTL runs
  one EW epoch first and uses that epoch's mean loss; we follow the paper.
* ``w`` is trained by its own Adam optimiser with the env's learning rate (reset context
  ``lr``, ``1e-4`` when absent) unless ``lr`` is given, and is clamped at 0 before the
  renormalisation (the action must be non-negative; the paper does not say).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlbench.policies.base import (
    GradientWeights,
    Observation,
    Policy,
    PolicyError,
    check_positive,
    learned_state,
    load_learned_state,
    require_observed,
)
from mtlbench.policies.learned_scales import resolve_lr

__all__ = ["GradNorm", "gradnorm_weight_grad"]


def gradnorm_weight_grad(
    weights: torch.Tensor,
    gramian: torch.Tensor,
    losses: torch.Tensor,
    initial_losses: torch.Tensor,
    alpha: float = 1.5,
) -> torch.Tensor:
    """Gradient of ``L_grad = sum_t |w_t ||g_t|| - Gbar r_t^alpha|`` w.r.t. ``w`` (target fixed)."""
    norms = torch.diagonal(gramian).clamp_min(0).sqrt()
    g_w = weights * norms
    ratio = losses / initial_losses
    rate = ratio / ratio.mean()
    target = g_w.mean() * rate.pow(alpha)
    return torch.sign(g_w - target) * norms


class GradNorm(Policy):
    """GradNorm task weights on the representation gradients.

    Parameters
    ----------
    alpha
        Strength of the restoring force towards a common training rate (paper: 1.5).
    lr
        Adam learning rate of the weights; ``None`` uses the env's learning rate (reset
        context ``lr``), or ``1e-4`` when it has none.
    weight_heads
        Also weight the task heads' losses by ``w`` (the original paper's loss-level use);
        default ``False`` (gradient level, as in Lin et al. 2022 and LibMTL).
    """

    name = "gradnorm"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "representation"

    def __init__(self, alpha: float = 1.5, lr: float | None = None, weight_heads: bool = False) -> None:
        super().__init__()
        self.alpha = check_positive("alpha", alpha, allow_zero=True)
        self.lr = None if lr is None else check_positive("lr", lr)
        self.weight_heads = bool(weight_heads)
        self.weights: torch.nn.Parameter | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.initial_losses: torch.Tensor | None = None

    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        lr = resolve_lr(self.lr, context)
        self.weights = torch.nn.Parameter(torch.ones(self.num_tasks, device=self.device))
        self.optimizer = torch.optim.Adam([self.weights], lr=lr)
        self.initial_losses = None

    def parameters(self) -> list[torch.nn.Parameter]:
        return [] if self.weights is None else [self.weights]

    def act(self, observation: Observation) -> GradientWeights:
        if self.weights is None or self.optimizer is None:
            raise PolicyError("gradnorm: call reset() before act()")
        require_observed(observation, "gramian", "gradnorm")
        dev = self.weights.device
        losses = observation["losses"].detach().to(dev)
        gramian = observation["gramian"].detach().to(dev)
        if self.initial_losses is None:
            self.initial_losses = losses.clone()
        with torch.no_grad():
            current = self.weights.detach().clone()
            self.weights.grad = gradnorm_weight_grad(
                self.weights, gramian, losses, self.initial_losses, self.alpha
            )
        self.optimizer.step()
        with torch.no_grad():
            w = self.weights.clamp_min(0)
            self.weights.copy_(self.num_tasks * w / w.sum().clamp_min(1e-12))
        out = current.to(observation["losses"].device)
        return GradientWeights(out, head_weights=out if self.weight_heads else None)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict() | learned_state("weights", self.weights, self.optimizer)
        if self.weights is not None and self.optimizer is not None:
            state["initial_losses"] = self.initial_losses
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        load_learned_state("gradnorm", "weights", self.weights, self.optimizer, state)
        self.initial_losses = state["initial_losses"]

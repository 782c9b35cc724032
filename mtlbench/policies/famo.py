"""Fast adaptive multitask optimisation (FAMO), Liu, Feng, Stone and Liu, NeurIPS 2023.

FAMO keeps task logits ``xi`` (``z = softmax(xi)``) and, every step, descends the weighted
log-losses with the normalisation that makes the update balanced (Liu et al. 2023,
Section 3, and the official code github.com/Cranial-XIX/FAMO):

    d = sum_t  z_t / (c (L_t - L*_t)) * grad L_t,     c = sum_s z_s / (L_s - L*_s),

i.e. loss weights ``z_t / (c (L_t - L*_t))``, which lie on the simplex (they sum to 1). After
the model step, ``xi`` is updated from the log-loss decrease of the *same* batch,

    delta_t = log(L_t(theta_k) - L*_t) - log(L_t(theta_{k+1}) - L*_t),
    xi <- Adam step along J_softmax(xi)^T delta    (lr 0.025, weight decay 1e-3),

which lowers the weight of tasks that improved most. ``L*`` (the minimum losses) is 0 as in
the official code and ``1e-8`` is added inside the logs, as there.

Conventions (documented):

* Scale: the official weights sum to 1; we return ``T`` times them (EW's scale, see
  :mod:`mtlbench.policies.ew`), so at ``xi = 0`` with equal losses every weight is 1.
* The update happens in :meth:`FAMO.update`, from ``info["next_losses"]``: the env's second
  forward pass of the same training batch at the updated parameters (``needs``
  ``"next_losses"``). LibMTL's ``update_w`` is the same computation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlbench.policies.base import (
    Observation,
    Policy,
    PolicyError,
    check_positive,
    learned_state,
    load_learned_state,
)

__all__ = ["FAMO", "famo_logit_grad", "famo_weights"]

_EPS = 1e-8


def famo_weights(
    logits: torch.Tensor, losses: torch.Tensor, min_losses: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """Simplex weights ``z_t / (c (L_t - L*_t))``, ``z = softmax(xi)`` (sum to 1)."""
    z = torch.softmax(logits, dim=-1)
    scaled = z / (losses - min_losses + _EPS)
    return scaled / scaled.sum(dim=-1, keepdim=True)


def famo_logit_grad(
    logits: torch.Tensor,
    losses: torch.Tensor,
    next_losses: torch.Tensor,
    min_losses: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """``J_softmax(xi)^T delta`` with ``delta = log(L - L*) - log(L_next - L*)``."""
    delta = torch.log(losses - min_losses + _EPS) - torch.log(next_losses - min_losses + _EPS)
    z = torch.softmax(logits, dim=-1)
    # J_softmax is symmetric: diag(z) - z z^T
    return z * (delta - (z * delta).sum(dim=-1, keepdim=True))


class FAMO(Policy):
    """FAMO loss weights ``T z_t / (c L_t)`` with logits updated from the loss decrease.

    Parameters
    ----------
    lr
        Adam learning rate of the logits (paper code: 0.025).
    weight_decay
        Adam weight decay of the logits, ``gamma`` in the paper code (1e-3).
    """

    name = "famo"
    level = "loss"
    needs = frozenset({"losses", "next_losses"})

    def __init__(self, lr: float = 0.025, weight_decay: float = 1e-3) -> None:
        super().__init__()
        self.lr = check_positive("lr", lr)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.logits: torch.nn.Parameter | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._prev_losses: torch.Tensor | None = None

    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        self.logits = torch.nn.Parameter(torch.zeros(self.num_tasks, device=self.device))
        self.optimizer = torch.optim.Adam([self.logits], lr=self.lr, weight_decay=self.weight_decay)
        self._prev_losses = None

    def parameters(self) -> list[torch.nn.Parameter]:
        return [] if self.logits is None else [self.logits]

    def act(self, observation: Observation) -> torch.Tensor:
        if self.logits is None:
            raise PolicyError("famo: call reset() before act()")
        losses = observation["losses"].detach()
        self._prev_losses = losses.clone()
        with torch.no_grad():
            w = famo_weights(self.logits.to(losses.device), losses)
        return self.num_tasks * w

    def update(self, info: Mapping[str, Any]) -> None:
        if self.logits is None or self.optimizer is None:
            raise PolicyError("famo: call reset() before update()")
        if self._prev_losses is None:
            raise PolicyError("famo: update() called before act()")
        if "next_losses" not in info:
            raise PolicyError(
                "famo needs info['next_losses'] (the batch's losses after the step); "
                "declare 'next_losses' in needs"
            )
        next_losses = torch.as_tensor(info["next_losses"]).detach().to(self.logits.device)
        with torch.no_grad():
            self.logits.grad = famo_logit_grad(
                self.logits, self._prev_losses.to(self.logits.device), next_losses
            )
        self.optimizer.step()
        self._prev_losses = None

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | learned_state("logits", self.logits, self.optimizer)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        load_learned_state("famo", "logits", self.logits, self.optimizer, state)

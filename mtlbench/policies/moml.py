"""Multi-objective meta learning (MOML) for loss weights, Ye et al., NeurIPS 2021.

MOML treats the loss weights as meta-parameters of a bi-level problem (Ye et al. 2021,
Section 3, and its multi-task learning instance in the experiments): the lower level trains the
model on ``sum_t lambda_t L_t`` over the training data; the upper level chooses
``lambda = softmax(phi)`` to minimise the validation losses of the model after that
training. The official code (github.com/Baijiong-Lin/MOML, ``MTL/moml_nyu.py``) alternates,
every step: (1) one *virtual* SGD step ``theta' = theta - alpha * grad sum_t lambda_t L_t``
on a training batch, (2) an Adam step on ``phi`` along the gradient of the validation loss
``sum_s L_s^val(theta')`` (the default; an MGDA combination of the per-task validation
hypergradients is an option, ``--MGDA``), (3) the real step with the updated weights.

Here the hypergradient is taken to first order. With ``w = T lambda`` the weights the env
uses (EW's scale, :mod:`mtlbench.policies.ew`) and ``g_t``, ``g_s^val`` the training and
validation gradients of the shared parameters (``obs["jacobian"]``, ``obs["val_jacobian"]``,
validation split only, never test),

    d L^val(theta - alpha sum_t w_t g_t) / d w_t = -alpha grad L^val(theta') . g_t
                                                ~ -alpha (sum_s g_s^val(theta)) . g_t,

and ``d/d lambda_t = T d/d w_t``, ``d/d phi = J_softmax(phi)^T d/d lambda``.

Deviations (documented):

* First order: the validation gradient is evaluated at ``theta``, not at ``theta'``, and the
  second-order term through ``g_t``'s dependence on ``lambda`` is dropped (the official code
  differentiates through the virtual step exactly with ``create_graph=True``).
* Only the shared parameters enter the hypergradient (the env's Jacobians are of the shared
  parameters or representation); the official code also includes the task-specific heads,
  whose term for task ``t`` is ``-alpha (g^val_{t,head} . g_{t,head})``.
* The upper level is the plain sum of validation losses (the official default), not MGDA.
* ``alpha`` (``step_size``) is the env's learning rate from the reset context (``lr``),
  ``1e-4`` when absent (the official value); ``phi`` starts at 0 (uniform weights, as the
  official ``1/T`` constant initialisation) and is trained by Adam with ``meta_lr = 1e-4``
  (official). Adam makes the update nearly invariant to ``alpha``.
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
    require_observed,
)
from mtlbench.policies.learned_scales import DEFAULT_LR, resolve_lr

__all__ = ["MOML", "moml_hypergradient"]


def moml_hypergradient(jacobian: torch.Tensor, val_jacobian: torch.Tensor, step_size: float) -> torch.Tensor:
    """First-order ``d L^val(theta - alpha sum_t w_t g_t) / d w_t = -alpha (sum_s g_s^val) . g_t``.

    ``jacobian`` and ``val_jacobian`` have shape ``(T, D)``; returns shape ``(T,)``.
    """
    return -step_size * (jacobian @ val_jacobian.sum(dim=0))


class MOML(Policy):
    """Loss weights ``T softmax(phi)`` meta-learned on the validation loss (first order).

    Parameters
    ----------
    meta_lr
        Adam learning rate of the weight logits ``phi`` (official: 1e-4).
    step_size
        ``alpha`` of the virtual step; ``None`` uses the env's learning rate (reset
        context ``lr``), or ``1e-4`` when it has none.
    """

    name = "moml"
    level = "loss"
    needs = frozenset({"losses", "jacobian", "val_jacobian"})

    def __init__(self, meta_lr: float = 1e-4, step_size: float | None = None) -> None:
        super().__init__()
        self.meta_lr = check_positive("meta_lr", meta_lr)
        self.step_size = None if step_size is None else check_positive("step_size", step_size)
        self.logits: torch.nn.Parameter | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._alpha = DEFAULT_LR

    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        self._alpha = resolve_lr(self.step_size, context)
        self.logits = torch.nn.Parameter(torch.zeros(self.num_tasks, device=self.device))
        self.optimizer = torch.optim.Adam([self.logits], lr=self.meta_lr)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [] if self.logits is None else [self.logits]

    def act(self, observation: Observation) -> torch.Tensor:
        if self.logits is None or self.optimizer is None:
            raise PolicyError("moml: call reset() before act()")
        require_observed(observation, ("jacobian", "val_jacobian"), "moml")
        losses = observation["losses"]
        hyper_w = moml_hypergradient(observation["jacobian"], observation["val_jacobian"], self._alpha).to(
            self.logits.device, self.logits.dtype
        )
        num_tasks = self.num_tasks
        with torch.enable_grad():
            lam = torch.softmax(self.logits, dim=0)
            # chain rule through w = T * softmax(phi)
            (grad,) = torch.autograd.grad(lam, self.logits, grad_outputs=num_tasks * hyper_w)
        self.logits.grad = grad
        self.optimizer.step()
        with torch.no_grad():
            weights = num_tasks * torch.softmax(self.logits, dim=0)
        return weights.to(device=losses.device, dtype=losses.dtype)

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | learned_state("logits", self.logits, self.optimizer)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        load_learned_state("moml", "logits", self.logits, self.optimizer, state)

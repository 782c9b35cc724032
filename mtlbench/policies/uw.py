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
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlbench.policies.base import Observation, Policy, PolicyError, check_positive

__all__ = ["DEFAULT_LR", "UW", "uw_log_variance_grad", "uw_weights"]

#: Learning rate of the policy's own optimiser when neither ``lr`` nor the env gives one.
DEFAULT_LR = 1e-4


def uw_weights(log_vars: torch.Tensor) -> torch.Tensor:
    """Loss weights ``exp(-s_t)``."""
    return torch.exp(-log_vars)


def uw_log_variance_grad(log_vars: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    """``d/ds_t [exp(-s_t) L_t + s_t] = 1 - exp(-s_t) L_t``."""
    return 1.0 - torch.exp(-log_vars) * losses


class UW(Policy):
    """Uncertainty weighting with learnable log-variances ``s`` (weights ``exp(-s)``).

    Parameters
    ----------
    lr
        Learning rate of the Adam optimiser of ``s``; ``None`` (default) uses the env's
        learning rate from the reset context (``lr``), or ``1e-4`` when it has none.
    """

    name = "uw"
    level = "loss"
    needs = frozenset({"losses"})

    def __init__(self, lr: float | None = None) -> None:
        super().__init__()
        self.lr = None if lr is None else check_positive("lr", lr)
        self.log_vars: torch.nn.Parameter | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def hparams(self) -> dict[str, Any]:
        return {"lr": self.lr}

    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        lr = self.lr if self.lr is not None else float(context.get("lr", DEFAULT_LR))
        self.log_vars = torch.nn.Parameter(torch.zeros(self.num_tasks, device=self.device))
        self.optimizer = torch.optim.Adam([self.log_vars], lr=lr)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [] if self.log_vars is None else [self.log_vars]

    def act(self, observation: Observation) -> torch.Tensor:
        if self.log_vars is None or self.optimizer is None:
            raise PolicyError("uw: call reset() before act()")
        losses = observation["losses"].detach().to(self.log_vars.device)
        with torch.no_grad():
            weights = uw_weights(self.log_vars).clone()
            self.log_vars.grad = uw_log_variance_grad(self.log_vars, losses)
        self.optimizer.step()
        return weights.to(observation["losses"].device)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.log_vars is not None and self.optimizer is not None:
            state["log_vars"] = self.log_vars.detach().clone()
            state["optimizer"] = copy.deepcopy(self.optimizer.state_dict())
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if self.log_vars is None or self.optimizer is None:
            raise PolicyError("uw: call reset() before load_state_dict()")
        with torch.no_grad():
            self.log_vars.copy_(state["log_vars"])
        self.optimizer.load_state_dict(state["optimizer"])

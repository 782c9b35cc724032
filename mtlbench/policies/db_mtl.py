"""Dual-balancing multi-task learning (DB-MTL), Lin et al., 2023 (arXiv 2308.12029).

DB-MTL balances the tasks twice (Lin et al. 2023):

* Loss scale: every loss is log-transformed, so task ``t`` contributes
  ``grad log L_t = g_t / L_t`` (``1e-8`` is added to ``L_t``, as in LibMTL's ``DB_MTL.py``).
* Gradient magnitude: an exponential moving average of those gradients,
  ``ghat_t <- beta_k ghat_t + (1 - beta_k) g_t / L_t`` with ``beta_k = beta / k^sigma`` at
  step ``k = 1, 2, ...`` and ``ghat = 0`` initially (``beta = 0.9``, ``sigma = 0``, LibMTL's
  defaults), is rescaled so that every task has the largest norm:

      d = sum_t (max_s ||ghat_s|| / ||ghat_t||) ghat_t.

``d`` is not a combination of the current gradients (the EMA remembers earlier steps), so it
is returned as a :class:`GradientDirection` of the shared *parameters* (LibMTL rejects
representation gradients for DB-MTL). Because the log transform applies to the whole loss,
the heads are trained on ``log L_t`` too: ``head_weights = 1 / (L_t + 1e-8)``, which is what
LibMTL's per-task backward of ``log(L_t + 1e-8)`` gives the heads. ``eps = 1e-8`` in the
norm ratio, as in LibMTL. The EMA buffer (``T x D``) is created at the first step and
cleared by :meth:`DBMTL.reset`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlbench.policies.base import (
    GradientDirection,
    Observation,
    Policy,
    PolicyError,
    check_in_range,
    check_positive,
    require_observed,
)

__all__ = ["DBMTL", "db_mtl_direction", "db_mtl_update_buffer"]

_EPS = 1e-8


def db_mtl_update_buffer(
    buffer: torch.Tensor,
    jacobian: torch.Tensor,
    losses: torch.Tensor,
    step: int,
    beta: float = 0.9,
    beta_sigma: float = 0.0,
) -> torch.Tensor:
    """``ghat <- beta_k ghat + (1 - beta_k) J / (L + eps)`` with ``beta_k = beta / step^sigma``."""
    log_grads = jacobian / (losses + _EPS).unsqueeze(1)
    beta_k = beta / float(step) ** beta_sigma
    return log_grads + beta_k * (buffer - log_grads)


def db_mtl_direction(buffer: torch.Tensor) -> torch.Tensor:
    """``sum_t (max_s ||ghat_s|| / (||ghat_t|| + eps)) ghat_t``."""
    norms = buffer.norm(dim=1)
    scale = norms.max() / (norms + _EPS)
    return scale @ buffer


class DBMTL(Policy):
    """DB-MTL: log-loss gradients, EMA, and rescaling to the largest task-gradient norm.

    Parameters
    ----------
    beta
        EMA coefficient of the log-loss gradients, in ``[0, 1)`` (default 0.9).
    beta_sigma
        Decay exponent ``sigma`` of ``beta_k = beta / k^sigma`` (default 0: constant).
    """

    name = "db-mtl"
    level = "gradient"
    needs = frozenset({"losses", "jacobian"})
    wrt = "parameters"

    def __init__(self, beta: float = 0.9, beta_sigma: float = 0.0) -> None:
        super().__init__()
        self.beta = check_in_range("beta", beta, 0.0, 1.0)
        if self.beta == 1.0:
            raise ValueError("hyperparameter 'beta' must be in [0, 1), got 1.0")
        self.beta_sigma = check_positive("beta_sigma", beta_sigma, allow_zero=True)
        self.buffer: torch.Tensor | None = None
        self.step = 0

    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        self.buffer = None
        self.step = 0

    def act(self, observation: Observation) -> GradientDirection:
        require_observed(observation, "jacobian", "db-mtl")
        jac = observation["jacobian"].detach()
        losses = observation["losses"].detach()
        if self.buffer is None or self.buffer.shape != jac.shape:
            if self.buffer is not None:
                raise PolicyError(
                    f"db-mtl: Jacobian shape changed from {tuple(self.buffer.shape)} to "
                    f"{tuple(jac.shape)} within a run"
                )
            self.buffer = torch.zeros_like(jac)
        self.step += 1
        self.buffer = db_mtl_update_buffer(self.buffer, jac, losses, self.step, self.beta, self.beta_sigma)
        return GradientDirection(db_mtl_direction(self.buffer), head_weights=1.0 / (losses + _EPS))

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["buffer"] = None if self.buffer is None else self.buffer.clone()
        state["step"] = self.step
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer = None if state["buffer"] is None else state["buffer"].clone()
        self.step = int(state["step"])

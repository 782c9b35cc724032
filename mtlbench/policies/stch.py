"""Smooth Tchebycheff scalarisation (STCH), Lin, Zhang, Yang, Zhang and Zhang, ICML 2024.

The smooth Tchebycheff scalarisation of the objectives ``f_t`` with preference ``lambda``
and ideal point ``z*`` is (Lin et al. 2024, Section 3)

    g_mu(x) = mu * log sum_t exp(lambda_t (f_t(x) - z*_t) / mu).

The official multi-task code (github.com/Xi-L/STCH, ``STCH_MTL/LibMTL/weighting/STCH.py``,
also in LibMTL) instantiates it with uniform preferences on *log-normalised* losses
``f_t = log(L_t / n_t)``, where ``n`` is a nadir estimate, ideal point 0 in that space, and
multiplies by ``T``; ``mu = 1``:

* epochs ``e < warmup_epochs`` (default 4): minimise ``sum_t log L_t``;
* epoch ``e == warmup_epochs``: the same, while averaging the batch losses into ``n``;
* later epochs: minimise ``T mu logsumexp(log(L_t / n_t) / mu)``.

As a loss-level policy we return the gradient of that objective w.r.t. the losses, which
gives the same parameter gradient as back-propagating the objective:

    warm-up:  w_t = 1 / L_t,
    after:    w_t = T softmax(log(L / n) / mu)_t / L_t.

(For ``mu = 1`` the latter is ``T (L_t/n_t) / (L_t sum_s L_s/n_s)``.) The official ``1e-20``
is added to ``L_t`` in the logarithm. The warm-up is log-loss weighting, not EW, as in the
official code. If no loss was seen during epoch ``warmup_epochs`` (e.g. a run resumed past
it without state), the nadir falls back to 1 (plain log-losses).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlbench.policies.base import (
    Observation,
    Policy,
    check_integer,
    check_positive,
    current_epoch,
)

__all__ = ["STCH", "stch_weights"]

_EPS = 1e-20


def stch_weights(losses: torch.Tensor, nadir: torch.Tensor, mu: float = 1.0) -> torch.Tensor:
    """``d/dL_t [T mu logsumexp(log(L / n + eps) / mu)] = T softmax(.)_t / (L_t + eps n_t)``."""
    num_tasks = losses.shape[-1]
    log_norm = torch.log(losses / nadir + _EPS)
    return num_tasks * torch.softmax(log_norm / mu, dim=-1) / (losses + _EPS * nadir)


class STCH(Policy):
    """Smooth Tchebycheff scalarisation of log-normalised losses, after a warm-up.

    Parameters
    ----------
    mu
        Smoothing parameter ``mu`` (official MTL default 1.0).
    warmup_epochs
        Epochs of log-loss training before the nadir estimate (official default 4); the
        nadir is the mean batch loss of epoch ``warmup_epochs``.
    """

    name = "stch"
    level = "loss"
    needs = frozenset({"losses"})

    def __init__(self, mu: float = 1.0, warmup_epochs: int = 4) -> None:
        super().__init__()
        self.mu = check_positive("mu", mu)
        self.warmup_epochs = check_integer("warmup_epochs", warmup_epochs, 0, integral_floats=True)
        self._clear()

    def _clear(self) -> None:
        self._loss_sum: torch.Tensor | None = None
        self._loss_count = 0
        self._nadir: torch.Tensor | None = None

    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        self._clear()

    def act(self, observation: Observation) -> torch.Tensor:
        losses = observation["losses"].detach()
        epoch = current_epoch(observation, "stch")
        if epoch <= self.warmup_epochs:
            if epoch == self.warmup_epochs:
                self._loss_sum = losses.clone() if self._loss_sum is None else self._loss_sum + losses
                self._loss_count += 1
            return 1.0 / (losses + _EPS)
        if self._nadir is None:
            self._nadir = (
                torch.ones_like(losses) if self._loss_sum is None else self._loss_sum / self._loss_count
            )
        return stch_weights(losses, self._nadir.to(losses.device), self.mu)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(loss_sum=self._loss_sum, loss_count=self._loss_count, nadir=self._nadir)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._loss_sum = state["loss_sum"]
        self._loss_count = int(state["loss_count"])
        self._nadir = state["nadir"]

"""Loss-progress softmax: an example of a self-contained loss-level submission.

Each step the policy smooths the observed training losses with an exponential moving
average ``m_t <- beta * m_t + (1 - beta) * L_t`` (``m_t = L_t`` at the first step), measures
each task's relative progress ``r_t = m_t / L_t(first step)`` and returns the weights

    w = T * softmax(r / temperature),

so that the weights sum to ``T`` (EW's scale) and a task whose loss has fallen least,
relative to where it started, gets the most weight. This is in the spirit of DWA (Liu et al.,
CVPR 2019) and of GradNorm's inverse training rate (Chen et al., ICML 2018), but per step
and without gradients: it needs only ``losses``.

It is deterministic (no randomness at all), keeps all its state in tensors on the env's
device (no host synchronisation per step) and saves that state in ``state_dict`` so a
resumed run continues identically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlbench.policies.base import Observation, Policy, check_in_range, check_positive


class LossProgressSoftmax(Policy):
    """``w = T * softmax((EMA(L) / L_first) / temperature)``."""

    name = "example-loss-softmax"
    level = "loss"
    needs = frozenset({"losses"})

    def __init__(self, temperature: float = 0.5, beta: float = 0.9) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.beta = check_in_range("beta", beta, 0.0, 0.999)
        self._first: torch.Tensor | None = None
        self._ema: torch.Tensor | None = None

    def reset(self, task_names: Sequence[str], seed: int, **kwargs: Any) -> None:
        super().reset(task_names, seed, **kwargs)
        self._first = None
        self._ema = None

    def act(self, observation: Observation) -> torch.Tensor:
        losses = observation["losses"].detach().float()
        if self._first is None or self._ema is None:
            self._first = losses.clamp_min(1e-12)
            self._ema = losses.clone()
        else:
            self._ema = self.beta * self._ema + (1.0 - self.beta) * losses
        progress = self._ema / self._first
        return self.num_tasks * torch.softmax(progress / self.temperature, dim=0)

    def hparams(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "beta": self.beta}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self._first is not None and self._ema is not None:
            state["first"], state["ema"] = self._first.clone(), self._ema.clone()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if "first" in state:
            self._first = state["first"].to(self.device).clone()
            self._ema = state["ema"].to(self.device).clone()

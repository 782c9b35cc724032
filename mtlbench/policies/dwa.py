"""Dynamic weight average (DWA), Liu, Johns and Davison, CVPR 2019, Section 3.3 (Eq. (1)).

With ``Lbar_t(e)`` the average training loss of task ``t`` over epoch ``e`` (0-indexed),

    r_t(e - 1) = Lbar_t(e - 1) / Lbar_t(e - 2),
    w_t(e)     = T * exp(r_t(e - 1) / temp) / sum_s exp(r_s(e - 1) / temp),

and ``w_t(e) = 1`` for the first two epochs (``e = 0, 1``), as in the official code
(github.com/lorenmt/mtan) and LibMTL. The temperature defaults to 2. Weights sum to ``T``
(EW's scale).

The epoch averages are accumulated from the observed batch losses (``obs["losses"]``, the
same per-batch losses the official code averages) in device tensors; the epoch number comes
from ``obs["epoch"]`` (a host scalar), so no device synchronisation is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlbench.policies.base import Observation, Policy, check_positive, current_epoch

__all__ = ["DWA", "dwa_weights"]


def dwa_weights(
    last_epoch_avg: torch.Tensor, previous_epoch_avg: torch.Tensor, temperature: float = 2.0
) -> torch.Tensor:
    """``T * softmax((Lbar(e-1) / Lbar(e-2)) / temp)`` (Liu et al. 2019, Eq. (1))."""
    ratio = last_epoch_avg / previous_epoch_avg
    return ratio.shape[-1] * torch.softmax(ratio / temperature, dim=-1)


class DWA(Policy):
    """Dynamic weight average over the last two epochs' average losses.

    Parameters
    ----------
    temperature
        Softmax temperature ``T`` of the paper (default 2.0).
    """

    name = "dwa"
    level = "loss"
    needs = frozenset({"losses"})

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self._clear()

    def _clear(self) -> None:
        self._epoch = -1
        self._sum: torch.Tensor | None = None
        self._count = 0
        # Average losses of completed epochs, {epoch: (T,) tensor}; only the last two kept.
        self._history: dict[int, torch.Tensor] = {}

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

    def _close_epoch(self) -> None:
        if self._sum is not None and self._count > 0:
            self._history[self._epoch] = self._sum / self._count
            for e in sorted(self._history)[:-2]:
                del self._history[e]
        self._sum, self._count = None, 0

    def act(self, observation: Observation) -> torch.Tensor:
        losses = observation["losses"].detach()
        epoch = current_epoch(observation, "dwa")
        if epoch != self._epoch:
            self._close_epoch()
            self._epoch = epoch
        self._sum = losses.clone() if self._sum is None else self._sum + losses
        self._count += 1
        last, previous = self._history.get(epoch - 1), self._history.get(epoch - 2)
        if epoch < 2 or last is None or previous is None:
            return torch.ones_like(losses)
        return dwa_weights(last, previous, self.temperature).to(losses.dtype)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(
            epoch=self._epoch,
            sum=None if self._sum is None else self._sum.clone(),
            count=self._count,
            history={e: v.clone() for e, v in self._history.items()},
        )
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._epoch = int(state["epoch"])
        self._sum = state["sum"]
        self._count = int(state["count"])
        self._history = dict(state["history"])

"""Equal weighting (EW): the conventional baseline of Lin et al. (2022), Eq. (1).

Every task loss gets weight 1, so the objective is ``sum_t L_t`` (Lin et al. 2022, Section 2,
"Conventional Baseline with Fixed Weights").

Scale convention (shared by every loss-level method in this package): EW's weights sum to
``T``, one per task. A method whose weights live on the probability simplex (RLW, FAMO, MOML,
DWA, ...) returns them multiplied by ``T``, so that its *expected* weight per task is 1, the
same as EW's. For RLW this is exact: Appendix A of Lin et al. (2022) shows
``E[softmax(z)_t] = 1/T`` for i.i.d. ``z_t``, hence ``E[T softmax(z)_t] = 1``. Comparing
methods at the same scale keeps the effective learning rate of the shared parameters equal,
which is what makes the litmus test (RLW vs. the method) fair.
"""

from __future__ import annotations

import torch

from mtlbench.policies.base import Observation, Policy

__all__ = ["EW", "equal_weights"]


def equal_weights(losses: torch.Tensor) -> torch.Tensor:
    """Weight 1 per task, same dtype and device as ``losses`` (shape ``(T,)``)."""
    return torch.ones_like(losses)


class EW(Policy):
    """Equal weighting: ``w_t = 1`` for every task (weights sum to ``T``)."""

    name = "ew"
    level = "loss"
    needs = frozenset({"losses"})

    def act(self, observation: Observation) -> torch.Tensor:
        return equal_weights(observation["losses"])

"""The :class:`TaskMetric` protocol and the helpers every metric shares.

The conventions (device-side accumulation, units, sources) are in the docstring of
:mod:`mtlbench.evaluation.metrics`.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

__all__ = ["TaskMetric"]


class TaskMetric(ABC):
    """Accumulates one task's predictions over a split and reports its metrics.

    ``names`` lists the reported metrics in order; ``higher_is_better`` says, per name,
    which direction is better (delta_p and delta_m read it). Use as ``reset()``, any number
    of ``update(pred, target)``, then ``compute()``.
    """

    names: ClassVar[tuple[str, ...]]
    higher_is_better: ClassVar[dict[str, bool]]

    def __init__(self) -> None:
        self._updates = 0

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._updates = 0
        self._reset_state()

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Accumulate one batch; never waits for the device."""
        with torch.no_grad():
            self._update(pred.detach(), target.detach())
        self._updates += 1

    def compute(self) -> dict[str, float]:
        """The metrics over everything seen since the last reset (one host sync)."""
        if self._updates == 0:
            raise RuntimeError(f"{type(self).__name__}.compute() called before any update()")
        return self._compute()

    @abstractmethod
    def _reset_state(self) -> None: ...

    @abstractmethod
    def _update(self, pred: Tensor, target: Tensor) -> None: ...

    @abstractmethod
    def _compute(self) -> dict[str, float]: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# ------------------------------------------------------------------------------ helpers
def _zeros(device: torch.device, *shape: int, dtype: torch.dtype = torch.int64) -> Tensor:
    # Created by a fill kernel on the device (no host-to-device copy).
    return torch.zeros(shape, dtype=dtype, device=device)


def _ratio(num: float, den: float, metric: str, scale: float = 1.0) -> float:
    if den == 0:
        warnings.warn(f"{metric}: no valid element in the split; reporting NaN", stacklevel=3)
        return math.nan
    return scale * num / den


def _check_same_shape(metric: str, pred: Tensor, target: Tensor, expected: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"{metric}: pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the "
            f"same shape, {expected}"
        )


def _raise_if_bad_labels(metric: str, bad: Tensor | None, allowed: str) -> None:
    if bad is not None and int(bad.item()) > 0:
        raise ValueError(f"{metric}: {int(bad.item())} target labels outside {allowed}")

"""The env's Gymnasium spaces and its observation mapping (docs/gymnasium.md).

* :class:`ObservationDict`: an observation, a plain ``dict`` of torch tensors except that a
  key the env was not built to observe raises :class:`MissingObservation`, which names the
  fix (``mtlbench.make(id, policy=policy)``).
* :class:`WeightingSpace`: the action space. At the loss level a ``(T,)`` vector of
  non-negative loss weights (Lin et al. 2022, Eq. 1); at the gradient level a
  :class:`~mtlbench.protocol.GradientWeights` (signed ``(T,)`` weights of the shared-part
  task gradients, Eq. 2) or a :class:`~mtlbench.protocol.GradientDirection` (the ``(D,)``
  update itself), each with optional non-negative head weights. ``contains`` checks the
  declaration; the run-time check is :mod:`mtlbench.protocol`'s validator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from mtlbench.protocol import KNOWN_NEEDS, GradientDirection, GradientWeights

__all__ = ["MissingObservation", "ObservationDict", "WeightingSpace"]


class MissingObservation(KeyError):
    """A policy asked for an observation the env was not built to provide."""

    def __str__(self) -> str:  # KeyError would print the repr of the whole message
        return str(self.args[0])


class ObservationDict(dict[str, torch.Tensor]):
    """An observation: a plain ``dict`` of tensors, except that a missing key says how to get it."""

    __slots__ = ("_env_id", "_observed")

    def __init__(self, values: Mapping[str, torch.Tensor], env_id: str, observed: frozenset[str]) -> None:
        super().__init__(values)
        self._env_id = env_id
        self._observed = observed

    def __missing__(self, key: str) -> torch.Tensor:
        if key not in KNOWN_NEEDS or key == "next_losses":
            where = "it is passed to Policy.update in info" if key == "next_losses" else "no env provides it"
            raise MissingObservation(
                f"{key!r} is not an observation key ({where}); observation keys: "
                f"{sorted(KNOWN_NEEDS - {'next_losses'} | {'step', 'epoch'})}"
            )
        raise MissingObservation(
            f"the env does not observe {key!r} (it observes {sorted(self._observed)}): build it for "
            f"the policy with mtlbench.make({self._env_id!r}, policy=policy), or pass "
            f"observe=({key!r},) to mtlbench.make"
        )

    def __reduce__(self) -> Any:  # pickle and copy keep the helpful error
        return (ObservationDict, (dict(self), self._env_id, self._observed))


class WeightingSpace(gym.spaces.Space[Any]):
    """The actions an :class:`MTLEnv` accepts (Lin et al. 2022, Eq. 1 and Eq. 2).

    * loss level: a ``(T,)`` float array or tensor of finite loss weights in ``loss_weights``
      (``Box(0, inf)``);
    * gradient level: :class:`GradientWeights` with finite ``weights`` in ``gradient_weights``
      (``Box(-inf, inf, (T,))``: the combination may have any sign), or
      :class:`GradientDirection` with a finite ``direction`` in ``direction`` (``Box(-inf,
      inf, (D,))``, ``None`` when the env does not observe the Jacobian and so does not know
      ``D``); both with ``head_weights`` ``None`` (unweighted heads) or in ``loss_weights``.

    ``sample()`` draws loss weights (the one kind a generic tool can sample), from the same
    distribution as ``loss_weights.sample()``. ``contains`` states the declaration; the env
    validates every action it is given at ``step``.
    """

    def __init__(self, num_tasks: int, direction_dim: int | None = None, seed: int | None = None) -> None:
        self.num_tasks = num_tasks
        self.direction_dim = direction_dim
        self.loss_weights = gym.spaces.Box(0.0, np.inf, shape=(num_tasks,), dtype=np.float32)
        self.gradient_weights = gym.spaces.Box(-np.inf, np.inf, shape=(num_tasks,), dtype=np.float32)
        self.direction = (
            None
            if direction_dim is None
            else gym.spaces.Box(-np.inf, np.inf, shape=(direction_dim,), dtype=np.float32)
        )
        super().__init__(shape=None, dtype=None, seed=seed)

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        if mask is not None or probability is not None:
            raise ValueError("WeightingSpace.sample takes no mask or probability")
        # what Box(0, inf).sample() draws: Exp(1) above the lower bound 0
        return self.np_random.exponential(size=self.num_tasks).astype(np.float32)

    def contains(self, x: Any) -> bool:
        if isinstance(x, GradientWeights | GradientDirection):
            heads_ok = x.head_weights is None or _in_box(self.loss_weights, x.head_weights)
            if isinstance(x, GradientWeights):
                return heads_ok and _in_box(self.gradient_weights, x.weights)
            if self.direction is None:
                d = _as_numpy(x.direction)
                return heads_ok and d is not None and d.ndim == 1 and bool(np.isfinite(d).all())
            return heads_ok and _in_box(self.direction, x.direction)
        return _in_box(self.loss_weights, x)

    @property
    def is_np_flattenable(self) -> bool:
        return False  # three kinds of action, not one array

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, WeightingSpace)
            and other.num_tasks == self.num_tasks
            and other.direction_dim == self.direction_dim
        )

    def __repr__(self) -> str:
        return f"WeightingSpace(num_tasks={self.num_tasks}, direction_dim={self.direction_dim})"


def _as_numpy(value: Any) -> np.ndarray | None:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value if isinstance(value, np.ndarray) else None


def _in_box(box: gym.spaces.Box, value: Any) -> bool:
    """``value`` is a float array or tensor in ``box`` and finite (Box alone admits +-inf)."""
    array = _as_numpy(value)
    if array is None or not np.issubdtype(array.dtype, np.floating):
        return False
    return box.contains(array.astype(box.dtype, copy=False)) and bool(np.isfinite(array).all())

"""Gymnasium wrappers that put an :class:`~mtlbench.env.MTLEnv` in front of generic tools.

An MTLEnv speaks torch on its own device (observations are dicts of tensors, the action
space is a :class:`~mtlbench.env.WeightingSpace` of loss weights or gradient-level actions),
so that the training loop never copies to the host. Gymnasium's ``check_env`` and RL
libraries (Stable-Baselines3, ...) expect NumPy arrays, a bounded ``Box`` action and, for
most policies, one flat ``Box`` observation. Three wrappers bridge the gap, innermost first
(docs/gymnasium.md):

* :class:`TorchToNumpy`: observations (and tensors in ``info``) to NumPy, NumPy actions to
  torch on the env's device. Spaces are unchanged. Enough for
  ``gymnasium.utils.env_checker.check_env``.
* :class:`SoftmaxLossWeights`: a loss-level action from a bounded box,
  ``w = T * softmax(logit_scale * a)`` for ``a`` in ``[-1, 1]^T``; ``a = 0`` is equal
  weighting (EW), and the weights always sum to ``T`` (RLW's softmax normalisation, Lin et
  al. 2022, Sec. 3, scaled so that EW is the centre of the box).
* :class:`FlatObservation`: one float32 vector, the observed arrays in key order, with
  ``step`` and ``epoch`` as fractions of the budget (no 0-d entries, bounded where the
  counters are).

:func:`agent_env` applies all three. Gymnasium's own ``ArrayConversion`` does what
:class:`TorchToNumpy` does but needs the ``array-api-compat`` package and converts
nothing inside gradient-level actions; this one needs neither.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

from mtlbench.policies.base import GradientDirection, GradientWeights

__all__ = ["FlatObservation", "SoftmaxLossWeights", "TorchToNumpy", "agent_env"]


def _to_numpy(value: Any) -> Any:
    """Tensors to NumPy arrays, through mappings, lists and tuples; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, Mapping):
        return {k: _to_numpy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_numpy(v) for v in value)
    return value


class TorchToNumpy(gym.Wrapper[Any, Any, Any, Any], gym.utils.RecordConstructorArgs):
    """NumPy in, NumPy out: observations and ``info`` tensors to NumPy, actions to torch.

    A NumPy action (also inside :class:`GradientWeights` / :class:`GradientDirection`)
    becomes a tensor on the env's device; a floating one is cast to float32, the dtype of
    the action space; an integer one is passed on as it is (and refused by the env). The
    observation and action spaces are the env's: they already describe NumPy arrays.
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self._device = getattr(env.unwrapped, "device", torch.device("cpu"))

    def _to_torch(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            dtype = torch.float32 if np.issubdtype(value.dtype, np.floating) else None
            return torch.as_tensor(value, dtype=dtype, device=self._device)
        return value

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if isinstance(action, GradientWeights | GradientDirection):
            action = dataclasses.replace(
                action,
                **{f.name: self._to_torch(getattr(action, f.name)) for f in dataclasses.fields(action)},
            )
        else:
            action = self._to_torch(action)
        obs, reward, terminated, truncated, info = self.env.step(action)
        return _to_numpy(obs), float(reward), bool(terminated), bool(truncated), _to_numpy(info)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return _to_numpy(obs), _to_numpy(info)


class SoftmaxLossWeights(gym.ActionWrapper[Any, np.ndarray, Any], gym.utils.RecordConstructorArgs):
    """Action ``a`` in ``Box(-1, 1, (T,))`` -> loss weights ``T * softmax(logit_scale * a)``.

    The weights are positive and sum to ``T``; ``a = 0`` gives equal weighting, and the
    largest ratio between two weights is ``exp(2 * logit_scale)``. Actions outside the box
    are clipped to it first (as most agents do before stepping). The weights are a float32
    NumPy array: put :class:`TorchToNumpy` inside this wrapper.
    """

    def __init__(self, env: gym.Env[Any, Any], logit_scale: float = 1.0) -> None:
        if not (np.isfinite(logit_scale) and logit_scale > 0):
            raise ValueError(f"logit_scale must be a finite positive number, got {logit_scale!r}")
        gym.utils.RecordConstructorArgs.__init__(self, logit_scale=logit_scale)
        gym.ActionWrapper.__init__(self, env)
        self.num_tasks = int(env.unwrapped.num_tasks)  # type: ignore[attr-defined]
        self.logit_scale = float(logit_scale)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.num_tasks,), dtype=np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        logits = self.logit_scale * np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        e = np.exp(logits - logits.max())
        return (self.num_tasks * e / e.sum()).astype(np.float32)


class FlatObservation(gym.ObservationWrapper[np.ndarray, Any, Any], gym.utils.RecordConstructorArgs):
    """The observation dict as one float32 vector, keys in sorted order.

    ``step`` becomes ``step / total_steps`` and ``epoch`` becomes ``epoch / epochs``, both
    in ``[0, 1]``; every other key (losses, Gramian, Jacobian, ...) is flattened as it is,
    with the bounds of its ``Box``. Needs NumPy observations: put :class:`TorchToNumpy`
    inside this wrapper.
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        inner: gym.Env[Any, Any] = env
        while not isinstance(inner, TorchToNumpy):
            if not isinstance(inner, gym.Wrapper):
                raise TypeError(
                    "FlatObservation needs NumPy observations: wrap the env in "
                    "mtlbench.wrappers.TorchToNumpy first (or use mtlbench.wrappers.agent_env)"
                )
            inner = inner.env
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        base = env.unwrapped
        self._scale = {
            "step": float(base.total_steps),  # type: ignore[attr-defined]
            "epoch": float(base.bench_spec.budget.epochs),  # type: ignore[attr-defined]
        }
        spaces = env.observation_space
        assert isinstance(spaces, gym.spaces.Dict)
        self._keys = sorted(spaces.spaces)
        lows, highs = [], []
        for key in self._keys:
            box = spaces[key]
            assert isinstance(box, gym.spaces.Box)
            if key in self._scale:
                lows.append(np.zeros(1))
                highs.append(np.ones(1))
            else:
                lows.append(box.low.reshape(-1))
                highs.append(box.high.reshape(-1))
        self.observation_space = gym.spaces.Box(
            np.concatenate(lows).astype(np.float32),
            np.concatenate(highs).astype(np.float32),
            dtype=np.float32,
        )

    def observation(self, observation: Mapping[str, np.ndarray]) -> np.ndarray:
        parts = [
            np.asarray(observation[k], dtype=np.float64).reshape(-1) / self._scale.get(k, 1.0)
            for k in self._keys
        ]
        return np.concatenate(parts).astype(np.float32)


def agent_env(env: gym.Env[Any, Any], *, logit_scale: float = 1.0) -> FlatObservation:
    """``env`` as a learning agent sees it: flat float32 observations, a ``[-1, 1]^T`` action box.

    ``FlatObservation(SoftmaxLossWeights(TorchToNumpy(env), logit_scale))``: the agent sets
    loss weights (a loss-level weighting policy) every optimisation step.
    """
    return FlatObservation(SoftmaxLossWeights(TorchToNumpy(env), logit_scale=logit_scale))

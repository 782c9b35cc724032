"""The policy checker's synthetic inputs: observations, an observation that records reads of
undeclared keys, and a driver that runs a policy over them (:mod:`mtlbench.harness.checker`).

Observations come from a private ``torch.Generator`` (the global RNG is never touched):
positive, decaying losses, a random Jacobian ``J`` (T, D), its Gramian ``J J^T``, validation
losses and Jacobian likewise, and ``next_losses`` for ``update(info)`` when declared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from mtlbench.protocol import ALWAYS_OBSERVED, OBSERVATION_NEEDS, GradientDirection, GradientWeights

if TYPE_CHECKING:
    from mtlbench.policies.base import Policy

__all__ = [
    "Setup",
    "StrictObservation",
    "UndeclaredRead",
    "describe_exc",
    "reset_policy",
    "run_policy",
    "same_action",
    "snapshot",
    "strict_observation",
    "synthetic_setup",
    "update_info",
    "visible_keys",
]


@dataclass(frozen=True)
class Setup:
    task_names: tuple[str, ...]
    dim: int
    seed: int
    steps_per_epoch: int
    observations: tuple[dict[str, torch.Tensor], ...]
    next_losses: tuple[torch.Tensor, ...]

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    def context(self, policy: Policy) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "lr": 1e-3,
            "steps_per_epoch": self.steps_per_epoch,
            "num_epochs": math.ceil(len(self.observations) / self.steps_per_epoch),
            "representation_dim": self.dim if getattr(policy, "wrt", None) == "representation" else None,
        }
        return ctx


def synthetic_setup(num_tasks: int, dim: int, steps: int, seed: int) -> Setup:
    g = torch.Generator().manual_seed(10_007 + seed)  # private: the global RNG is never touched
    steps_per_epoch = max(1, steps // 4)
    scale = torch.rand(num_tasks, generator=g) * 2 + 0.5
    observations, next_losses = [], []
    for step in range(steps):
        decay = math.exp(-0.05 * step)
        losses = scale * decay * (1 + 0.2 * torch.rand(num_tasks, generator=g))
        jac = torch.randn(num_tasks, dim, generator=g)
        val_jac = torch.randn(num_tasks, dim, generator=g)
        observations.append(
            {
                "losses": losses,
                "jacobian": jac,
                "gramian": jac @ jac.T,
                "val_losses": scale * decay * (1 + 0.2 * torch.rand(num_tasks, generator=g)),
                "val_jacobian": val_jac,
                "step": torch.tensor(step, dtype=torch.int64),
                "epoch": torch.tensor(step // steps_per_epoch, dtype=torch.int64),
            }
        )
        next_losses.append(losses * (0.95 + 0.04 * torch.rand(num_tasks, generator=g)))
    return Setup(
        task_names=tuple(f"task{t}" for t in range(num_tasks)),
        dim=dim,
        seed=seed,
        steps_per_epoch=steps_per_epoch,
        observations=tuple(observations),
        next_losses=tuple(next_losses),
    )


class StrictObservation(dict[str, torch.Tensor]):
    """A plain dict that records reads (``obs[key]``) of keys the policy did not declare.

    ``key in obs`` and ``obs.get(key)`` stay silent: testing for an optional key is fine,
    relying on one the env will not send is not.
    """

    def __init__(self, data: Mapping[str, torch.Tensor]) -> None:
        super().__init__(data)
        self.undeclared: list[str] = []

    def __missing__(self, key: str) -> Any:
        self.undeclared.append(key)
        raise KeyError(key)


class UndeclaredRead(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def visible_keys(policy: Policy) -> frozenset[str]:
    return (frozenset(getattr(policy, "needs", ())) & OBSERVATION_NEEDS) | ALWAYS_OBSERVED


def strict_observation(setup: Setup, step: int, policy: Policy) -> StrictObservation:
    keys = visible_keys(policy)
    return StrictObservation({k: v.clone() for k, v in setup.observations[step].items() if k in keys})


def update_info(setup: Setup, step: int, policy: Policy) -> dict[str, Any]:
    info: dict[str, Any] = {"step": step + 1, "epoch": (step + 1) // setup.steps_per_epoch}
    if "next_losses" in getattr(policy, "needs", ()):
        info["next_losses"] = setup.next_losses[step].clone()
    return info


def snapshot(action: Any) -> Any:
    """A detached copy of an action, so later in-place changes by the policy do not alter it."""
    if isinstance(action, torch.Tensor):
        return action.detach().clone()
    if isinstance(action, GradientWeights | GradientDirection):
        fields = {
            name: (value.detach().clone() if isinstance(value, torch.Tensor) else value)
            for name, value in vars(action).items()
        }
        return type(action)(**fields)
    return action


def reset_policy(policy: Policy, setup: Setup) -> None:
    policy.reset(setup.task_names, setup.seed, device="cpu", **setup.context(policy))


def run_policy(policy: Policy, setup: Setup, steps: range | None = None, *, reset: bool = True) -> list[Any]:
    """Reset (optionally), then act/update over ``steps``; undeclared reads raise UndeclaredRead."""
    if reset:
        reset_policy(policy, setup)
    actions = []
    for step in steps if steps is not None else range(len(setup.observations)):
        obs = strict_observation(setup, step, policy)
        try:
            action = policy.act(obs)
        except KeyError:
            if obs.undeclared:
                raise UndeclaredRead(obs.undeclared[0]) from None
            raise
        if obs.undeclared:  # the policy caught the KeyError itself: still a read of an undeclared key
            raise UndeclaredRead(obs.undeclared[0])
        actions.append(snapshot(action))
        policy.update(update_info(setup, step, policy))
    return actions


def same_action(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return (
            a.shape == b.shape
            and a.dtype == b.dtype
            and bool(torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True))  # exact, NaN == NaN
        )
    if isinstance(a, GradientWeights | GradientDirection):
        return all(
            (x is None and y is None) or (x is not None and y is not None and same_action(x, y))
            for x, y in zip(vars(a).values(), vars(b).values())
        )
    return bool(a == b)


def describe_exc(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"

"""Shared fixtures: a tiny MultiMNIST env (unofficial overrides) and toy policies."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

import mtlbench
from mtlbench.harness.runner import MethodRef, RunRequest
from mtlbench.policies.base import GradientWeights, Observation, Policy

TINY = {
    "dataset.kwargs.limit": 64,
    "optimizer.batch_size": 16,
    "budget.epochs": 2,
}


@pytest.fixture(autouse=True)
def _threads() -> Iterator[None]:
    torch.set_num_threads(1)
    yield


def tiny_grid(
    results_dir: str | os.PathLike[str],
    methods: tuple[str, ...] = ("ew", "rlw"),
    seeds: tuple[int, ...] = (0, 1),
) -> list[RunRequest]:
    """A grid of built-in methods x seeds on the TINY MultiMNIST protocol, CPU, one thread per run."""
    return [
        RunRequest(
            env_id="multimnist-hps",
            method=MethodRef.builtin(m),
            seed=s,
            results_dir=str(results_dir),
            device="cpu",
            threads=1,
            overrides=dict(TINY),
        )
        for m in methods
        for s in seeds
    ]


def tiny_env(overrides: dict | None = None, device: str = "cpu", **kwargs: object) -> mtlbench.env.MTLEnv:  # type: ignore[name-defined]
    return mtlbench.make("multimnist-hps", device=device, overrides={**TINY, **(overrides or {})}, **kwargs)


class ConstantLoss(Policy):
    """Toy loss-level policy returning fixed weights (no randomness)."""

    name = "constant"
    level = "loss"
    needs = frozenset({"losses"})

    def __init__(self, weights: list[float] | None = None) -> None:
        super().__init__()
        self.weights = weights

    def act(self, observation: Observation) -> torch.Tensor:
        if self.weights is None:
            return torch.ones_like(observation["losses"])
        return torch.tensor(self.weights, dtype=torch.float32)


class RecordingRandom(Policy):
    """Toy random loss-level policy that records the batches' losses it was shown."""

    name = "recording"
    level = "loss"
    needs = frozenset({"losses"})

    def reset(self, task_names, seed, **kw):  # type: ignore[no-untyped-def]
        super().reset(task_names, seed, **kw)
        self.seen: list[torch.Tensor] = []

    def act(self, observation: Observation) -> torch.Tensor:
        self.seen.append(observation["losses"].clone())
        z = torch.randn(self.num_tasks, generator=self.generator)
        return self.num_tasks * torch.softmax(z, 0)


class MeanGradient(Policy):
    """Toy gradient-level policy (representation level): equal gradient weights."""

    name = "meangrad"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt = "representation"

    def act(self, observation: Observation) -> GradientWeights:
        return GradientWeights(torch.ones_like(observation["losses"]))

"""The Gymnasium interface: registration on import, ``env.spec``, ``make(policy=)``, action space."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.envs.registration import EnvSpec

import mtlbench
from mtlbench import policies
from mtlbench.env import MissingObservation
from mtlbench.harness.train import env_kwargs_for
from mtlbench.policies.base import GradientDirection, GradientWeights
from tests.conftest import TINY, tiny_env

ROOT = Path(__file__).resolve().parents[1]


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter (nothing registered yet), with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


# ------------------------------------------------------------------ 13: registered on import
def test_import_mtlbench_registers_every_env_with_gymnasium() -> None:
    """``import mtlbench`` is enough for ``gymnasium.make`` (as ``import ale_py`` is for ``ALE/...``),
    and the import builds no model (``mtlbench.models`` is not even imported)."""
    proc = _fresh_python(
        "import sys, gymnasium, mtlbench\n"
        "ids = sorted(i for i in gymnasium.registry if i.startswith('mtlbench/'))\n"
        "assert ids == sorted('mtlbench/' + i for i in mtlbench.registry), ids\n"
        "assert 'mtlbench/multimnist-hps-v2' in ids\n"
        "assert 'mtlbench.models' not in sys.modules and 'mtlbench.env' not in sys.modules\n"
        f"env = gymnasium.make('mtlbench/multimnist-hps-v2', device='cpu', overrides={TINY!r})\n"
        "print(env.unwrapped.bench_spec.id)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "multimnist-hps-v2"


def test_gymnasium_module_prefix_imports_mtlbench() -> None:
    """``gymnasium.make``'s ``module:id`` form imports the package itself."""
    proc = _fresh_python(
        "import gymnasium\n"
        f"env = gymnasium.make('mtlbench:mtlbench/multimnist-hps-v2', device='cpu', overrides={TINY!r})\n"
        "print(env.spec.id)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "mtlbench/multimnist-hps-v2"


# ------------------------------------------------------------------ 14: env.spec
def test_make_sets_a_gymnasium_spec() -> None:
    env = tiny_env()
    assert isinstance(env.spec, EnvSpec)
    assert env.spec.id == "mtlbench/multimnist-hps-v2"
    assert env.spec.max_episode_steps == env.total_steps == 8
    assert env.spec.kwargs["env_id"] == "multimnist-hps-v2"
    assert env.spec.kwargs["overrides"] == TINY
    assert env.spec.kwargs["device"] == "cpu"
    assert env.bench_spec.id == "multimnist-hps-v2"  # the protocol keeps its own name
    # the spec rebuilds the same env, as gymnasium's specs do
    again = gymnasium.make(env.spec)
    assert again.unwrapped.bench_spec == env.bench_spec
    assert again.spec is not None and again.spec.max_episode_steps == env.total_steps


def test_gymnasium_make_spec_has_the_budget_as_max_episode_steps() -> None:
    env = gymnasium.make("mtlbench/multimnist-hps-v2", device="cpu", overrides=TINY)
    assert env.spec is not None
    assert env.spec.id == "mtlbench/multimnist-hps-v2"
    assert env.spec.max_episode_steps == env.unwrapped.total_steps  # type: ignore[attr-defined]


def test_an_episode_lasts_max_episode_steps() -> None:
    env = tiny_env()
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(torch.ones(2))
        assert not terminated
        steps += 1
    assert env.spec is not None and steps == env.spec.max_episode_steps


# ------------------------------------------------------------------ 15: make(policy=)
def test_make_with_a_gradient_policy_builds_the_env_it_needs() -> None:
    policy = policies.make("mgda")
    env = mtlbench.make("multimnist-hps", device="cpu", overrides=TINY, policy=policy)
    assert {"gramian", "losses"} <= env.observe
    assert env.wrt == policy.wrt
    assert env.spec is not None
    assert env.spec.kwargs["observe"] == env_kwargs_for(policy)["observe"]  # recorded, not the object
    assert "policy" not in env.spec.kwargs
    policy.reset(env.task_names, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(policy.act(obs))


def test_make_with_policy_refuses_a_conflicting_wrt_and_a_non_policy() -> None:
    policy = policies.make("mgda")
    with pytest.raises(ValueError, match=r"wrt='representation'.*policy"):
        mtlbench.make("multimnist-hps", device="cpu", policy=policy, wrt="representation")
    with pytest.raises(TypeError, match=r"policies\.make\('mgda'\)"):
        mtlbench.make("multimnist-hps", device="cpu", policy="mgda")


def test_make_with_policy_adds_explicit_observations_and_accepts_a_class() -> None:
    rlw = type(policies.make("rlw"))
    env = mtlbench.make("multimnist-hps", device="cpu", policy=rlw, observe=("val_losses",))
    assert env.observe == {"losses", "val_losses"} and env.wrt == "parameters"


def test_missing_observation_names_the_fix() -> None:
    """A gradient method on an env built without its needs: one error that says how to build it."""
    policy = policies.make("mgda")
    env = tiny_env()
    policy.reset(env.task_names, seed=0)
    obs, _ = env.reset(seed=0)
    with pytest.raises(KeyError, match=r"'gramian'.*policy=policy") as caught:
        policy.act(obs)
    assert isinstance(caught.value, MissingObservation)
    assert "observe=" in str(caught.value)
    assert obs.get("gramian") is None and "gramian" not in obs  # the Mapping protocol is unchanged
    with pytest.raises(MissingObservation, match="not an observation key"):
        obs["gramain"]
    for copied in (pickle.loads(pickle.dumps(obs)), copy.deepcopy(obs)):  # copies keep the message
        assert torch.equal(copied["losses"], obs["losses"])
        with pytest.raises(MissingObservation, match="policy=policy"):
            copied["gramian"]


def test_action_space_describes_both_levels() -> None:
    env = tiny_env(observe=("jacobian",))
    space = env.action_space
    d = env.observation_space["jacobian"].shape[1]
    assert space.loss_weights.shape == (2,) and float(space.loss_weights.low.min()) == 0.0
    # loss level: non-negative finite (T,) weights
    assert space.contains(np.array([1.0, 0.5], dtype=np.float32))
    assert space.contains(torch.tensor([1.0, 0.5]))
    assert not space.contains(np.array([-1.0, 0.5], dtype=np.float32))
    assert not space.contains(np.array([np.inf, 0.5], dtype=np.float32))
    assert not space.contains(np.ones(3, dtype=np.float32))
    # gradient level: signed (T,) gradient weights, or a (D,) direction, optional non-negative heads
    assert space.contains(GradientWeights(torch.tensor([-1.0, 2.0])))
    assert space.contains(GradientWeights(torch.tensor([-1.0, 2.0]), head_weights=torch.ones(2)))
    assert not space.contains(GradientWeights(torch.tensor([1.0, 2.0]), head_weights=-torch.ones(2)))
    assert not space.contains(GradientWeights(torch.ones(3)))
    assert space.contains(GradientDirection(torch.zeros(d)))
    assert not space.contains(GradientDirection(torch.zeros(d + 1)))
    # a sample is a loss-weight vector the env accepts
    space.seed(0)
    sample = space.sample()
    assert space.loss_weights.contains(sample)
    env.reset(seed=0)
    env.step(torch.as_tensor(sample))

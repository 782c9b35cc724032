"""mtlbench.wrappers: what a learning agent (and Gymnasium's checker) needs in front of an MTLEnv."""

from __future__ import annotations

import time
import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from mtlbench.policies.base import GradientWeights
from mtlbench.wrappers import FlatObservation, SoftmaxLossWeights, TorchToNumpy, agent_env
from tests.conftest import tiny_env

TINY_RL = {"budget.epochs": 1, "budget.steps_per_epoch": 4}


def test_check_env_passes_on_the_agent_env() -> None:
    """(``TorchToNumpy`` alone: tests/envs/test_env.py::test_check_env_passes.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(agent_env(tiny_env(observe=("gramian",))), skip_render_check=True)


def test_torch_to_numpy_converts_observations_and_actions() -> None:
    env = TorchToNumpy(tiny_env(observe=("gramian",), overrides=TINY_RL))
    obs, _ = env.reset(seed=0)
    assert all(isinstance(v, np.ndarray) for v in obs.values())
    assert env.observation_space.contains(obs)
    assert obs["step"].shape == () and obs["gramian"].shape == (2, 2)
    obs, reward, _, _, info = env.step(np.ones(2, dtype=np.float64))  # float64 from an agent is fine
    assert isinstance(reward, float) and int(obs["step"]) == 1
    # the converted observation is the env's, value for value
    raw = tiny_env(observe=("gramian",), overrides=TINY_RL)
    raw_obs, _ = raw.reset(seed=0)
    raw_obs, *_ = raw.step(torch.ones(2))
    np.testing.assert_array_equal(obs["gramian"], raw_obs["gramian"].numpy())


def test_softmax_loss_weights_maps_the_box_to_weights_summing_to_t() -> None:
    env = SoftmaxLossWeights(TorchToNumpy(tiny_env()), logit_scale=2.0)
    box = env.action_space
    assert isinstance(box, gymnasium.spaces.Box)
    assert box.shape == (2,) and np.all(box.low == -1) and np.all(box.high == 1)
    np.testing.assert_allclose(env.action(np.zeros(2, dtype=np.float32)), [1.0, 1.0])  # 0 is EW
    w = env.action(np.array([1.0, -1.0], dtype=np.float32))
    np.testing.assert_allclose(w.sum(), 2.0, rtol=1e-6)
    np.testing.assert_allclose(w[0] / w[1], np.exp(4.0), rtol=1e-5)  # logits 2a: ratio e^(2*2)
    assert w.dtype == np.float32 and (w > 0).all()
    with pytest.raises(ValueError, match="logit_scale"):
        SoftmaxLossWeights(TorchToNumpy(tiny_env()), logit_scale=0.0)


def test_flat_observation_is_a_bounded_float32_vector_without_0d_entries() -> None:
    inner = TorchToNumpy(tiny_env(observe=("gramian",), overrides=TINY_RL))
    env = FlatObservation(inner)
    space = env.observation_space
    assert isinstance(space, gymnasium.spaces.Box) and space.dtype == np.float32
    assert space.shape == (2 + 4 + 2,)  # losses (2), gramian (2x2), epoch and step progress
    obs, _ = env.reset(seed=0)
    assert obs.shape == space.shape and obs.dtype == np.float32 and space.contains(obs)
    steps = 0
    truncated = False
    while not truncated:
        obs, _, _, truncated, _ = env.step(np.ones(2, dtype=np.float32))
        steps += 1
        assert space.contains(obs)
    # keys in sorted order: epoch, gramian, losses, step; step/epoch as fractions of the budget
    assert obs[0] == 1.0 and obs[-1] == 1.0 and steps == 4
    with pytest.raises(TypeError, match="TorchToNumpy"):
        FlatObservation(tiny_env())  # type: ignore[arg-type]


def test_agent_env_records_its_wrappers_in_the_spec() -> None:
    env = agent_env(tiny_env(overrides=TINY_RL), logit_scale=3.0)
    assert env.spec is not None
    names = [w.name for w in env.spec.additional_wrappers]
    assert names == ["TorchToNumpy", "SoftmaxLossWeights", "FlatObservation"]
    again = gymnasium.make(env.spec)  # the spec rebuilds the wrapped env
    assert isinstance(again, FlatObservation) and again.action_space == env.action_space


def test_stable_baselines3_ppo_trains_a_few_steps() -> None:
    """An off-the-shelf agent drives the env through :func:`agent_env` (SB3 is the ``rl`` extra)."""
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    # two 2-step epochs: the second evaluation gives a reward that is not 0 by construction
    env = agent_env(tiny_env(overrides={"budget.epochs": 2, "budget.steps_per_epoch": 2}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sb3_check_env(env)
    start = time.perf_counter()
    model = sb3.PPO("MlpPolicy", env, n_steps=8, batch_size=4, n_epochs=1, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=8)
    assert model.num_timesteps == 8
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))
    action, _ = model.predict(env.reset(seed=1)[0], deterministic=True)
    assert env.action_space.contains(action)
    assert time.perf_counter() - start < 60


def test_torch_to_numpy_converts_inside_gradient_level_actions() -> None:
    """A NumPy ``GradientWeights`` reaches the env as tensors and trains like the torch one."""
    results = []
    for as_numpy in (False, True):
        base = tiny_env(observe=("gramian",), overrides=TINY_RL)
        env = TorchToNumpy(base) if as_numpy else base
        env.reset(seed=0)
        weights = np.array([0.5, 1.5], dtype=np.float32)
        action = GradientWeights(weights if as_numpy else torch.from_numpy(weights))
        env.step(action)
        assert base.model is not None
        results.append(torch.cat([p.detach().reshape(-1) for p in base.model.parameters()]))
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)

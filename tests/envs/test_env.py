"""MTLEnv: the Gymnasium contract, seeding, pairing across policies, action checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from mtlbench import policies
from mtlbench.env import InvalidAction
from mtlbench.policies.base import GradientDirection, GradientWeights
from mtlbench.wrappers import TorchToNumpy
from tests.conftest import tiny_env


def test_check_env_passes() -> None:
    """Gymnasium's checker, with what it cannot apply said here:

    * Observations are torch tensors on the env's device (so the hot loop never syncs);
      the checker compares observations with numpy semantics, so it runs on the env seen
      through the shipped :class:`mtlbench.wrappers.TorchToNumpy` (torch -> numpy), which
      changes nothing but the array type.
    * ``skip_render_check``: a training run has nothing to render.
    Its determinism checks (same seed, same first observation) run and pass.
    """
    env = TorchToNumpy(tiny_env())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)


def test_spaces_describe_observations() -> None:
    env = tiny_env(observe=("gramian",), wrt="representation")
    obs, info = env.reset(seed=0)
    assert set(obs) == {"losses", "gramian", "step", "epoch"}
    assert env.observation_space["gramian"].shape == (2, 2)
    assert env.observation_space.contains({k: v.numpy() for k, v in obs.items()})
    assert env.action_space.loss_weights.shape == (2,)
    assert info["steps_per_epoch"] == 4


def _batches_seen(method: str, seed: int, steps: int = 6) -> list[torch.Tensor]:
    """The target batches an env serves to ``method`` (a registered policy) at ``seed``."""
    policy = policies.make(method)
    env = tiny_env()
    policy.reset(env.task_names, seed)
    obs, _ = env.reset(seed=seed)
    seen = []
    for _ in range(steps):
        seen.append(env._batch[1]["left"].clone())
        obs, *_ = env.step(policy.act(obs))
    return seen


def test_ew_and_rlw_at_the_same_seed_see_identical_batches() -> None:
    """Data order depends on the seed only, never on the policy: comparisons are paired."""
    for a, b in zip(_batches_seen("ew", seed=3), _batches_seen("rlw", seed=3), strict=True):
        assert torch.equal(a, b)
    other = _batches_seen("ew", seed=4)
    assert not all(torch.equal(a, b) for a, b in zip(_batches_seen("ew", seed=3), other, strict=True))


def _run(seed: int) -> dict:
    env = tiny_env()
    obs, _ = env.reset(seed=seed)
    while True:
        _obs, _, term, trunc, _info = env.step(torch.ones(2))
        if trunc or term:
            return env.evaluate("test")


def test_rerun_at_same_seed_gives_identical_metrics() -> None:
    assert _run(7) == _run(7)


def test_initial_weights_depend_only_on_seed() -> None:
    a, b = tiny_env(), tiny_env(observe=("gramian",))
    a.reset(seed=1)
    b.reset(seed=1)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_episode_ends_with_truncation_and_evaluations() -> None:
    env = tiny_env()
    env.reset(seed=0)
    evaluations, steps = [], 0
    while True:
        _, reward, _term, trunc, info = env.step(np.ones(2, dtype=np.float32))
        steps += 1
        if "evaluation" in info:
            evaluations.append(info["evaluation"])
            assert set(info["evaluation"]["val"]) == {"left", "right"}
        else:
            assert reward == 0.0
        if trunc:
            break
    assert steps == env.total_steps == 8
    assert [e["epoch"] for e in evaluations] == [1, 2]


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (torch.ones(3), r"shape \(2,\)"),
        (torch.tensor([1.0, float("nan")]), "finite"),
        (torch.tensor([1.0, -1.0]), "non-negative"),
        (GradientWeights(torch.tensor([float("inf"), 1.0])), "finite"),
        (GradientDirection(torch.ones(7)), "entries"),
    ],
)
def test_bad_actions_raise_naming_the_step(action: object, match: str) -> None:
    env = tiny_env(observe=("gramian",), wrt="representation")
    env.reset(seed=0)
    env.step(torch.ones(2))
    with pytest.raises(InvalidAction, match=rf"step 1: .*{match}"):
        env.step(action)


def test_gradient_weights_on_parameters_equal_loss_weights_for_shared_part() -> None:
    """sum_t a_t g_t applied through the Jacobian equals back-propagating sum_t a_t L_t."""
    a = torch.tensor([0.3, 1.7])
    grads = []
    for observe, action in [((), a), (("jacobian",), GradientWeights(a, head_weights=a))]:
        env = tiny_env(observe=observe)
        env.reset(seed=0)
        env._apply(action)
        grads.append([p.grad.clone() for p in env.model.parameters()])
    for g1, g2 in zip(*grads, strict=True):
        torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-6)


def test_gradient_level_heads_get_unweighted_gradients() -> None:
    env = tiny_env(observe=("gramian",), wrt="representation")
    env.reset(seed=0)
    env._apply(GradientWeights(torch.tensor([5.0, 0.0])))
    head_grads = {n: p.grad.clone() for n, p in env.model.heads.named_parameters()}
    env2 = tiny_env()
    env2.reset(seed=0)
    env2._apply(torch.ones(2))
    for n, p in env2.model.heads.named_parameters():
        torch.testing.assert_close(head_grads[n], p.grad, rtol=1e-4, atol=1e-6)


def test_nan_loss_terminates_as_diverged() -> None:
    env = tiny_env()
    env.splits.train.inputs[5:] = float("nan")  # every batch has a NaN image
    env.reset(seed=0)
    _, _, term, trunc, info = env.step(torch.ones(2))
    assert term and not trunc and info["diverged"] is True and info["diverged_at_step"] == 0


def test_checkpoint_restore_continues_identically() -> None:
    env = tiny_env()
    env.reset(seed=2)
    for _ in range(env.steps_per_epoch):
        env.step(torch.ones(2))
    state = env.checkpoint()
    a = [env.step(torch.ones(2))[0]["losses"] for _ in range(3)]
    env2 = tiny_env()
    env2.reset(seed=2)
    env2.restore(state)
    b = [env2.step(torch.ones(2))[0]["losses"] for _ in range(3)]
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)

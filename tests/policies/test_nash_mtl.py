"""Nash-MTL (Navon et al., ICML 2022): the fixed point G a = 1/a and the stateful policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares

from mtlbench import policies
from mtlbench.policies import GradientWeights, PolicyError
from mtlbench.policies.nash_mtl import NashMTL, nash_mtl_weights

J3 = torch.tensor([[1.0, 0.5, -0.5], [-0.8, 1.2, 0.3], [0.2, -0.4, 1.5]], dtype=torch.float64)


def random_jacobian(num_tasks: int, dim: int, seed: int, shared: float = 0.5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scales = torch.exp(torch.randn(num_tasks, 1, generator=gen, dtype=torch.float64))
    common = torch.randn(1, dim, generator=gen, dtype=torch.float64)
    signs = torch.where(torch.rand(num_tasks, 1, generator=gen) < 0.5, -1.0, 1.0)
    return (
        shared * signs * common + torch.randn(num_tasks, dim, generator=gen, dtype=torch.float64)
    ) * scales


@pytest.mark.parametrize("num_tasks", [1, 2, 3, 8, 20])
@pytest.mark.parametrize("seed", [0, 1])
def test_weights_solve_the_bargaining_fixed_point(num_tasks: int, seed: int) -> None:
    J = random_jacobian(num_tasks, 2 * num_tasks + 3, seed)
    G = J @ J.T
    a = nash_mtl_weights(G)
    assert torch.all(a > 0)
    torch.testing.assert_close(G @ a, 1.0 / a, rtol=1e-6, atol=0)
    # Consequence used by max_norm: ||d||^2 = a^T G a = T at the solution.
    assert (a @ G @ a).item() == pytest.approx(num_tasks, rel=1e-6)


def test_strongly_conflicting_gradients_still_reach_the_fixed_point() -> None:
    g = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    J = torch.stack([g, -g + 1e-3 * torch.tensor([0.3, -0.2, 0.1, 0.4], dtype=torch.float64)])
    G = J @ J.T
    a = nash_mtl_weights(G)
    torch.testing.assert_close(G @ a, 1.0 / a, rtol=1e-6, atol=0)


def test_golden_orthogonal_gradients() -> None:
    # g_t = n_t e_t: n_t^2 a_t = 1 / a_t, so a_t = 1 / n_t.
    J = torch.diag(torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    torch.testing.assert_close(nash_mtl_weights(J @ J.T), torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64))


def test_golden_hand_written_jacobian_matches_least_squares() -> None:
    # Independently: scipy's least_squares on G a - 1/a with a > 0 (FairGrad's official recipe).
    G = (J3 @ J3.T).numpy()
    result = least_squares(
        lambda a: G @ a - 1.0 / a, np.ones(3), bounds=(1e-9, np.inf), xtol=1e-15, ftol=1e-15, gtol=1e-15
    )
    torch.testing.assert_close(nash_mtl_weights(J3 @ J3.T), torch.as_tensor(result.x), atol=1e-8, rtol=0)


def test_pareto_stationary_gradients_have_no_solution() -> None:
    # g_2 = -g_1: a_1 g_1 + a_2 g_2 can vanish, and G a = 1/a has no positive solution.
    g = torch.tensor([1.0, 2.0], dtype=torch.float64)
    J = torch.stack([g, -g])
    with pytest.raises(PolicyError, match="Nash-MTL"):
        nash_mtl_weights(J @ J.T)


@pytest.mark.parametrize(
    "gramian", [torch.full((2, 2), float("nan")), torch.tensor([[1.0, 0.0], [0.0, 0.0]])]
)
def test_failures_raise_policy_error_naming_the_method(gramian: torch.Tensor) -> None:
    with pytest.raises(PolicyError, match="Nash-MTL"):
        nash_mtl_weights(gramian)


def test_max_norm_clips_the_update_like_the_official_code() -> None:
    J = random_jacobian(4, 9, seed=3)
    G = J @ J.T
    observation = {"losses": torch.ones(4), "gramian": G}
    free = NashMTL(max_norm=0.0).act(observation).weights
    torch.testing.assert_close(free, nash_mtl_weights(G))
    clipped = NashMTL(max_norm=1.0).act(observation).weights
    # ||d|| = sqrt(T) = 2 > 1 is scaled to max_norm (clip_grad_norm_'s 1e-6 aside).
    assert torch.linalg.vector_norm(J.T @ clipped).item() == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(clipped, free / (2.0 + 1e-6))
    unclipped = NashMTL(max_norm=10.0).act(observation).weights
    torch.testing.assert_close(unclipped, free)


def test_weights_are_reused_between_updates() -> None:
    policy = NashMTL(update_weights_every=3, max_norm=0.0)
    policy.reset(["a", "b"], seed=0)
    gramians = [J @ J.T for J in (random_jacobian(2, 5, seed=s) for s in range(5))]
    weights = [policy.act({"losses": torch.ones(2), "gramian": G}).weights for G in gramians]
    torch.testing.assert_close(weights[0], nash_mtl_weights(gramians[0]))
    torch.testing.assert_close(weights[1], weights[0])
    torch.testing.assert_close(weights[2], weights[0])
    torch.testing.assert_close(weights[3], nash_mtl_weights(gramians[3]))
    torch.testing.assert_close(weights[4], weights[3])
    # The state round-trips, and reset starts afresh.
    state = policy.state_dict()
    fresh = NashMTL(update_weights_every=3, max_norm=0.0)
    fresh.reset(["a", "b"], seed=0)
    fresh.load_state_dict(state)
    torch.testing.assert_close(
        fresh.act({"losses": torch.ones(2), "gramian": gramians[0]}).weights, weights[3]
    )
    policy.reset(["a", "b"], seed=0)
    torch.testing.assert_close(
        policy.act({"losses": torch.ones(2), "gramian": gramians[4]}).weights, nash_mtl_weights(gramians[4])
    )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"update_weights_every": 0}, "update_weights_every"),
        ({"max_norm": -1.0}, "max_norm"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": 0.0}, "tol"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        NashMTL(**kwargs)


def test_policy_acts_on_the_gramian() -> None:
    policy = policies.make("nash-mtl")
    assert isinstance(policy, NashMTL)
    assert policy.hparams() == {"update_weights_every": 1, "max_norm": 1.0, "max_iter": 50, "tol": 1e-6}
    policy.reset(["a", "b", "c"], seed=0)
    action = policy.act({"losses": torch.ones(3), "gramian": (J3 @ J3.T).float()})
    assert isinstance(action, GradientWeights)
    assert action.weights.shape == (3,) and action.weights.dtype == torch.float32
    assert torch.all(action.weights > 0)

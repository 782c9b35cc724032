"""FairGrad (Ban & Ji, ICML 2024): the alpha-fair fixed point G w = w^{-1/alpha}."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares

from mtlbench import policies
from mtlbench.policies import GradientWeights, PolicyError
from mtlbench.policies.fairgrad import FairGrad, fairgrad_weights
from mtlbench.policies.nash_mtl import nash_mtl_weights

J3 = torch.tensor([[1.0, 0.5, -0.5], [-0.8, 1.2, 0.3], [0.2, -0.4, 1.5]], dtype=torch.float64)


def random_jacobian(num_tasks: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scales = torch.exp(torch.randn(num_tasks, 1, generator=gen, dtype=torch.float64))
    common = torch.randn(1, dim, generator=gen, dtype=torch.float64)
    signs = torch.where(torch.rand(num_tasks, 1, generator=gen) < 0.5, -1.0, 1.0)
    return (0.5 * signs * common + torch.randn(num_tasks, dim, generator=gen, dtype=torch.float64)) * scales


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("num_tasks", [1, 2, 3, 8])
def test_weights_solve_the_alpha_fair_fixed_point(alpha: float, num_tasks: int) -> None:
    J = random_jacobian(num_tasks, 2 * num_tasks + 3, seed=num_tasks)
    G = J @ J.T
    w = fairgrad_weights(G, alpha=alpha)
    assert torch.all(w > 0)
    torch.testing.assert_close(G @ w, w ** (-1.0 / alpha), rtol=1e-6, atol=0)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_golden_orthogonal_gradients(alpha: float) -> None:
    # g_t = n_t e_t: n_t^2 w_t = w_t^{-1/alpha}, so w_t = n_t^{-2 alpha / (1 + alpha)}.
    norms = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    J = torch.diag(norms)
    torch.testing.assert_close(fairgrad_weights(J @ J.T, alpha=alpha), norms ** (-2 * alpha / (1 + alpha)))


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_golden_hand_written_jacobian_matches_the_official_least_squares(alpha: float) -> None:
    # The official recipe, independently: least_squares(G x - (1/x)^(1/alpha)), x >= 0.
    G = (J3 @ J3.T).numpy()
    result = least_squares(
        lambda x: G @ x - np.power(1.0 / x, 1.0 / alpha),
        np.ones(3) / 3,
        bounds=(1e-9, np.inf),
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
    )
    torch.testing.assert_close(
        fairgrad_weights(J3 @ J3.T, alpha=alpha), torch.as_tensor(result.x), atol=1e-8, rtol=0
    )


def test_alpha_one_is_the_nash_bargaining_solution() -> None:
    for seed in range(3):
        J = random_jacobian(5, 12, seed)
        torch.testing.assert_close(
            fairgrad_weights(J @ J.T, alpha=1.0), nash_mtl_weights(J @ J.T), rtol=1e-7, atol=0
        )


@pytest.mark.parametrize(
    "gramian", [torch.full((2, 2), float("nan")), torch.tensor([[1.0, 0.0], [0.0, 0.0]])]
)
def test_failures_raise_policy_error_naming_the_method(gramian: torch.Tensor) -> None:
    with pytest.raises(PolicyError, match="FairGrad"):
        fairgrad_weights(gramian)


def test_no_solution_for_pareto_stationary_gradients() -> None:
    g = torch.tensor([1.0, -2.0], dtype=torch.float64)
    J = torch.stack([g, -g])
    with pytest.raises(PolicyError, match="FairGrad"):
        fairgrad_weights(J @ J.T, alpha=2.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1.0}, "tol"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        FairGrad(**kwargs)


def test_policy_acts_on_the_gramian() -> None:
    policy = policies.make("fairgrad", alpha=2.0)
    assert isinstance(policy, FairGrad)
    assert policy.hparams() == {"alpha": 2.0, "max_iter": 50, "tol": 1e-6}
    policy.reset(["a", "b", "c"], seed=0)
    action = policy.act({"losses": torch.ones(3), "gramian": (J3 @ J3.T).float()})
    assert isinstance(action, GradientWeights)
    assert action.weights.shape == (3,) and action.weights.dtype == torch.float32

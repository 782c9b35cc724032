"""DualProj (Quinton & Rey 2024): the mean gradient projected onto the dual cone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

from mtlbench import policies
from mtlbench.harness.submission import load_submission
from mtlbench.policies import GradientWeights, PolicyError
from mtlbench.policies.dualproj import DualProj, dualproj_weights
from mtlbench.policies.upgrad import upgrad_weights

J3 = torch.tensor([[1.0, 0.5, -0.5], [-0.8, 1.2, 0.3], [0.2, -0.4, 1.5]], dtype=torch.float64)


def conflicting_jacobian(num_tasks: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    signs = torch.where(torch.rand(num_tasks, 1, generator=gen) < 0.5, -1.0, 1.0)
    signs[0], signs[1] = 1.0, -1.0  # at least one conflicting pair
    shared = torch.randn(1, dim, generator=gen, dtype=torch.float64)
    scales = torch.exp(torch.randn(num_tasks, 1, generator=gen, dtype=torch.float64))
    return (signs * shared + 0.5 * torch.randn(num_tasks, dim, generator=gen, dtype=torch.float64)) * scales


def project_onto_dual_cone(J: np.ndarray, g: np.ndarray) -> np.ndarray:
    """argmin_x ||x - g|| s.t. J x >= 0, in the parameter space, independently of G.

    Moreau: the projection is ``g + J^T lam`` with ``lam = argmin_{lam >= 0} ||J^T lam + g||``
    (``g`` minus its projection onto the polar cone ``{-J^T lam}``), a non-negative least
    squares problem solved by scipy's Lawson-Hanson active set.
    """
    lam, _ = nnls(J.T, -g)
    return g + J.T @ lam


@pytest.mark.parametrize(("num_tasks", "dim"), [(2, 4), (3, 6), (5, 12), (10, 30), (8, 5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_update_lies_in_the_dual_cone(num_tasks: int, dim: int, seed: int) -> None:
    J = conflicting_jacobian(num_tasks, dim, seed)
    G = J @ J.T
    trace = G.diagonal().sum()
    mean = J.mean(0)
    exact = dualproj_weights(G, reg_eps=0.0)
    assert torch.all(J @ (J.T @ exact) >= -1e-9 * trace)
    assert torch.all(exact >= 1 / num_tasks - 1e-12)  # v >= u (Proposition 1)
    if torch.any(J @ mean < 0):  # the mean conflicts with a task, so the projection moves it
        assert not torch.allclose(exact, torch.full_like(exact, 1 / num_tasks))
    # Default regularisation: J d >= -reg_eps * trace(G) * v (module docstring).
    w = dualproj_weights(G)
    assert torch.all(J @ (J.T @ w) >= -1e-4 * trace * w.abs().max() - 1e-9 * trace)


@pytest.mark.parametrize("seed", range(4))
def test_value_matches_an_independent_primal_projection(seed: int) -> None:
    J = conflicting_jacobian(3 + seed, 6 + seed, seed)
    expected = project_onto_dual_cone(J.numpy(), J.mean(0).numpy())
    d = J.T @ dualproj_weights(J @ J.T, reg_eps=0.0)
    torch.testing.assert_close(d, torch.as_tensor(expected), atol=1e-7, rtol=0)


def test_golden_hand_written_jacobian_differs_from_upgrad() -> None:
    # One projection of the mean, not the mean of the projections.
    G = J3 @ J3.T
    assert (J3 @ J3.mean(0) < 0).any() or (G < 0).any()
    expected = project_onto_dual_cone(J3.numpy(), J3.mean(0).numpy())
    d = J3.T @ dualproj_weights(G, reg_eps=0.0)
    torch.testing.assert_close(d, torch.as_tensor(expected), atol=1e-7, rtol=0)
    assert not torch.allclose(dualproj_weights(G, reg_eps=0.0), upgrad_weights(G, reg_eps=0.0), atol=1e-4)


def test_mean_inside_the_cone_is_returned_unchanged() -> None:
    # g_1 and g_2 conflict, but their mean has a non-negative product with both.
    J = torch.tensor([[1.0, 0.2, 0.0], [-0.3, 1.0, 0.0], [0.2, 0.0, 1.0]], dtype=torch.float64)
    assert (J @ J.T < 0).any() and (J @ J.mean(0) >= 0).all()
    torch.testing.assert_close(dualproj_weights(J @ J.T), torch.full((3,), 1 / 3, dtype=torch.float64))


def test_weights_are_invariant_to_the_scale_of_the_gramian() -> None:
    J = conflicting_jacobian(4, 9, seed=7)
    G = J @ J.T
    torch.testing.assert_close(dualproj_weights(1e6 * G), dualproj_weights(G), atol=1e-9, rtol=0)


def test_zero_gramian_gives_the_mean() -> None:
    torch.testing.assert_close(dualproj_weights(torch.zeros(4, 4)), torch.full((4,), 0.25))


def test_failures_raise_policy_error_naming_the_method() -> None:
    with pytest.raises(PolicyError, match="DualProj"):
        dualproj_weights(torch.full((3, 3), float("nan")))
    with pytest.raises(ValueError, match="reg_eps"):
        DualProj(reg_eps=-1e-3)


def test_policy_acts_on_the_gramian_and_is_a_builtin_submission() -> None:
    policy = policies.make("dualproj")
    assert isinstance(policy, DualProj)
    assert policy.hparams() == {"reg_eps": 1e-4} and policy.level == "gradient"
    policy.reset(["a", "b", "c"], seed=0)
    action = policy.act({"losses": torch.ones(3), "gramian": (J3 @ J3.T).float()})
    assert isinstance(action, GradientWeights)
    assert action.weights.shape == (3,) and action.weights.dtype == torch.float32
    submission = load_submission(Path(__file__).parents[2] / "submissions" / "dualproj")
    assert submission.policy_class() is DualProj

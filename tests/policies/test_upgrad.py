"""UPGrad (Quinton & Rey 2024): projections onto the dual cone, averaged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from mtlbench import policies
from mtlbench.policies import GradientWeights, PolicyError
from mtlbench.policies.upgrad import (
    UPGrad,
    _nonnegative_qps_device,
    _nonnegative_qps_host,
    upgrad_weights,
)

J3 = torch.tensor([[1.0, 0.5, -0.5], [-0.8, 1.2, 0.3], [0.2, -0.4, 1.5]], dtype=torch.float64)


def conflicting_jacobian(num_tasks: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    signs = torch.where(torch.rand(num_tasks, 1, generator=gen) < 0.5, -1.0, 1.0)
    signs[0], signs[1] = 1.0, -1.0  # at least one conflicting pair
    shared = torch.randn(1, dim, generator=gen, dtype=torch.float64)
    scales = torch.exp(torch.randn(num_tasks, 1, generator=gen, dtype=torch.float64))
    return (signs * shared + 0.5 * torch.randn(num_tasks, dim, generator=gen, dtype=torch.float64)) * scales


def project_onto_dual_cone(J: np.ndarray, g: np.ndarray) -> np.ndarray:
    """argmin_x ||x - g||^2 s.t. J x >= 0, in the primal (parameter) space, by SLSQP."""
    result = minimize(
        lambda x: 0.5 * (x - g) @ (x - g),
        g,
        jac=lambda x: x - g,
        constraints=({"type": "ineq", "fun": lambda x: J @ x, "jac": lambda x: J},),
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    assert result.success
    return result.x


@pytest.mark.parametrize("num_tasks", [2, 3, 7])
def test_host_and_device_solvers_agree(num_tasks: int) -> None:
    # The CPU path (NumPy, leaves the loop once converged) and the accelerator path (torch,
    # fixed iteration count) solve the same batch of QPs; here both run on the CPU.
    for seed in range(4):
        J = conflicting_jacobian(num_tasks, 3 * num_tasks, seed)
        G = J @ J.T
        G = G / G.diagonal().sum() + 1e-4 * torch.eye(num_tasks, dtype=G.dtype)
        m_host, residual_host = _nonnegative_qps_host(G.numpy(), G.numpy())
        m_device, residual_device = _nonnegative_qps_device(G, G)
        assert residual_host <= 1e-8 and float(residual_device) <= 1e-8
        torch.testing.assert_close(torch.from_numpy(m_host), m_device, atol=1e-6, rtol=0)
        assert (m_host >= 0).all()


@pytest.mark.parametrize(("num_tasks", "dim"), [(2, 4), (3, 6), (5, 12), (10, 30), (8, 5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_update_is_non_conflicting(num_tasks: int, dim: int, seed: int) -> None:
    J = conflicting_jacobian(num_tasks, dim, seed)
    G = J @ J.T
    assert (G < 0).any()  # the gradients do conflict
    trace = G.diagonal().sum()
    # Exact projection: J d >= 0 up to rounding.
    w = upgrad_weights(G, reg_eps=0.0)
    assert torch.all(J @ (J.T @ w) >= -1e-9 * trace)
    # Default regularisation: J d >= -reg_eps * trace(G) * a (module docstring).
    w = upgrad_weights(G)
    assert torch.all(J @ (J.T @ w) >= -1e-4 * trace * w.abs().max() - 1e-9 * trace)


def test_golden_hand_written_jacobian_matches_primal_projections() -> None:
    # Independently: project each g_i onto {x : J x >= 0} in parameter space, then average.
    J = J3.numpy()
    expected = np.mean([project_onto_dual_cone(J, g) for g in J], axis=0)
    d = J3.T @ upgrad_weights(J3 @ J3.T, reg_eps=0.0)
    torch.testing.assert_close(d, torch.as_tensor(expected), atol=1e-7, rtol=0)


def test_non_conflicting_gradients_give_the_mean() -> None:
    # Every g_i already lies in the dual cone, so each projection is g_i itself.
    J = torch.tensor([[1.0, 0.2, 0.0], [0.5, 1.0, 0.3], [0.1, 0.0, 2.0]], dtype=torch.float64)
    assert (J @ J.T >= 0).all()
    torch.testing.assert_close(
        upgrad_weights(J @ J.T, reg_eps=0.0), torch.full((3,), 1 / 3, dtype=torch.float64)
    )


def test_zero_gramian_gives_the_mean() -> None:
    torch.testing.assert_close(upgrad_weights(torch.zeros(4, 4)), torch.full((4,), 0.25))


def test_failures_raise_policy_error_naming_the_method() -> None:
    with pytest.raises(PolicyError, match="UPGrad"):
        upgrad_weights(torch.full((3, 3), float("nan")))
    with pytest.raises(ValueError, match="reg_eps"):
        UPGrad(reg_eps=-1e-3)


def test_single_threaded_solve_restores_the_thread_count() -> None:
    threads = torch.get_num_threads()
    upgrad_weights(J3 @ J3.T)
    assert torch.get_num_threads() == threads


def test_policy_acts_on_the_gramian() -> None:
    policy = policies.make("upgrad")
    assert isinstance(policy, UPGrad)
    assert policy.hparams() == {"reg_eps": 1e-4}
    policy.reset(["a", "b", "c"], seed=0)
    action = policy.act({"losses": torch.ones(3), "gramian": (J3 @ J3.T).float()})
    assert isinstance(action, GradientWeights)
    assert action.weights.shape == (3,) and action.weights.dtype == torch.float32

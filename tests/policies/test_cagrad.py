"""CAGrad (Liu et al., NeurIPS 2021): the dual solve, the update and the policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from mtlbench import policies
from mtlbench.policies import GradientWeights, PolicyError
from mtlbench.policies.cagrad import CAGrad, _solve_dual_device, _solve_dual_host, cagrad_weights

J3 = torch.tensor([[1.0, 0.5, -0.5], [-0.8, 1.2, 0.3], [0.2, -0.4, 1.5]], dtype=torch.float64)


def conflicting_jacobian(num_tasks: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    signs = torch.where(torch.rand(num_tasks, 1, generator=gen) < 0.5, -1.0, 1.0)
    shared = torch.randn(1, dim, generator=gen, dtype=torch.float64)
    scales = torch.exp(torch.randn(num_tasks, 1, generator=gen, dtype=torch.float64))
    return (0.7 * signs * shared + torch.randn(num_tasks, dim, generator=gen, dtype=torch.float64)) * scales


def dual_objective(w: np.ndarray, A: np.ndarray, c: float) -> float:
    b = np.full(len(w), 1.0 / len(w))
    return float(w @ A @ b + c * np.sqrt(b @ A @ b) * np.sqrt(max(w @ A @ w, 0.0)))


def dual_argmin(J: torch.Tensor, c: float) -> np.ndarray:
    """The dual solution by SLSQP (scipy), as the official code computes it."""
    A = (J @ J.T).numpy()
    T = A.shape[0]
    result = minimize(
        lambda x: dual_objective(x, A, c),
        np.full(T, 1.0 / T),
        bounds=[(0.0, 1.0)] * T,
        constraints=({"type": "eq", "fun": lambda x: 1.0 - x.sum()},),
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    # SLSQP may end with "positive directional derivative" at the optimum to precision.
    assert result.success or result.status == 8
    return result.x


def reference_weights(J: torch.Tensor, c: float) -> torch.Tensor:
    """The official recipe, independently: SLSQP on the dual, then g0 + lambda g_w, / (1+c^2)."""
    A = (J @ J.T).numpy()
    T = A.shape[0]
    w = dual_argmin(J, c)
    b = np.full(T, 1.0 / T)
    lam = c * np.sqrt(b @ A @ b) / np.sqrt(w @ A @ w)
    return torch.as_tensor((b + lam * w) / (1 + c**2))


@pytest.mark.parametrize("num_tasks", [1, 2, 3, 7])
def test_c_zero_is_the_mean_gradient(num_tasks: int) -> None:
    J = conflicting_jacobian(num_tasks, 8, seed=num_tasks)
    w = cagrad_weights(J @ J.T, c=0.0)
    torch.testing.assert_close(J.T @ w, J.mean(0))
    assert torch.equal(w, torch.full((num_tasks,), 1.0 / num_tasks, dtype=torch.float64))
    policy = CAGrad(c=0.0)
    action = policy.act({"losses": torch.ones(num_tasks), "gramian": J @ J.T})
    torch.testing.assert_close(J.T @ action.weights, J.mean(0))


def test_golden_hand_written_jacobian_matches_slsqp() -> None:
    torch.testing.assert_close(
        cagrad_weights(J3 @ J3.T, c=0.4), reference_weights(J3, 0.4), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
@pytest.mark.parametrize("c", [0.2, 0.4, 0.9])
def test_update_solves_the_conflict_averse_primal(num_tasks: int, c: float) -> None:
    J = conflicting_jacobian(num_tasks, 3 * num_tasks, seed=num_tasks)
    G = J @ J.T
    d = J.T @ cagrad_weights(G, c=c, rescale=0)
    g0 = J.mean(0)
    radius = c * torch.linalg.vector_norm(g0)
    # d lies on the boundary of the ball ||d - g0|| <= c ||g0|| ...
    assert torch.linalg.vector_norm(d - g0).item() == pytest.approx(radius.item(), rel=1e-9)
    # ... and its worst improvement min_t g_t . d reaches the dual value of SLSQP's
    # solution (weak duality: it can never exceed it), so d is primal optimal; no other
    # point of the ball beats it.
    worst = (J @ d).min()
    slsqp_value = dual_objective(dual_argmin(J, c), G.numpy(), c)
    assert worst.item() <= slsqp_value + 1e-9 * G.diagonal().max().item()
    assert worst.item() >= slsqp_value - 1e-7 * G.diagonal().max().item()
    gen = torch.Generator().manual_seed(0)
    directions = torch.randn(2000, J.shape[1], generator=gen, dtype=torch.float64)
    candidates = g0 + radius * directions / torch.linalg.vector_norm(directions, dim=1, keepdim=True)
    assert (candidates @ J.T).min(dim=1).values.max() <= worst + 1e-9


@pytest.mark.parametrize("num_tasks", [2, 3, 7])
def test_host_and_device_solvers_agree(num_tasks: int) -> None:
    # The CPU path (NumPy, leaves the loop once converged) and the accelerator path (torch,
    # fixed iteration count) solve the same dual; here both run on the CPU.
    for seed in range(4):
        J = conflicting_jacobian(num_tasks, 3 * num_tasks, seed)
        G = J @ J.T
        G = G / G.diagonal().mean()
        rho = (
            0.4
            * float(
                torch.full((num_tasks,), 1.0 / num_tasks, dtype=G.dtype)
                @ G
                @ torch.full((num_tasks,), 1.0 / num_tasks, dtype=G.dtype)
            )
            ** 0.5
        )
        w_host, residual_host = _solve_dual_host(G.numpy(), rho)
        w_device, residual_device = _solve_dual_device(G, torch.tensor(rho, dtype=G.dtype))
        assert residual_host <= 1e-7 and float(residual_device) <= 1e-7
        # the host stops at a KKT residual of 1e-10, the device runs on: equal to solver precision
        torch.testing.assert_close(torch.from_numpy(w_host), w_device, atol=1e-6, rtol=0)


def test_rescale_options_divide_the_update() -> None:
    G = J3 @ J3.T
    raw = cagrad_weights(G, c=0.4, rescale=0)
    torch.testing.assert_close(cagrad_weights(G, c=0.4, rescale=1), raw / 1.16)
    torch.testing.assert_close(cagrad_weights(G, c=0.4, rescale=2), raw / 1.4)


def test_all_zero_gradients_give_the_mean() -> None:
    torch.testing.assert_close(cagrad_weights(torch.zeros(3, 3), c=0.4), torch.full((3,), 1 / 3) / 1.16)


def test_failures_raise_policy_error_naming_the_method() -> None:
    with pytest.raises(PolicyError, match="CAGrad"):
        cagrad_weights(torch.full((3, 3), float("nan")))
    with pytest.raises(PolicyError, match="CAGrad"):
        cagrad_weights(torch.tensor([[1.0, float("inf")], [float("inf"), 1.0]]), c=0.0)


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"c": -0.1}, "'c'"), ({"rescale": 3}, "rescale"), ({"rescale": True}, "rescale")]
)
def test_invalid_hyperparameters_name_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        CAGrad(**kwargs)


def test_policy_acts_on_the_gramian() -> None:
    policy = policies.make("cagrad")
    assert isinstance(policy, CAGrad)
    assert policy.hparams() == {"c": 0.4, "rescale": 1}
    policy.reset(["a", "b", "c"], seed=0)
    action = policy.act({"losses": torch.ones(3), "gramian": (J3 @ J3.T).float()})
    assert isinstance(action, GradientWeights)
    assert action.weights.dtype == torch.float32
    torch.testing.assert_close(action.weights.double(), reference_weights(J3, 0.4), atol=1e-5, rtol=0)

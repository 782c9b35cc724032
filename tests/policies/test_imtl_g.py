"""IMTL-G (Liu et al., ICLR 2021): closed-form weights with equal projections."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlbench import policies
from mtlbench.policies import GradientWeights, PolicyError
from mtlbench.policies.imtl_g import IMTLG, imtl_g_weights

J3 = torch.tensor([[1.0, 0.5, -0.5], [-0.8, 1.2, 0.3], [0.2, -0.4, 1.5]], dtype=torch.float64)


def random_jacobian(num_tasks: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scales = torch.exp(torch.randn(num_tasks, 1, generator=gen, dtype=torch.float64))
    shared = torch.randn(1, dim, generator=gen, dtype=torch.float64)
    return (0.5 * shared + torch.randn(num_tasks, dim, generator=gen, dtype=torch.float64)) * scales


@pytest.mark.parametrize("num_tasks", [2, 3, 6, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_update_has_equal_projections_on_every_unit_gradient(num_tasks: int, seed: int) -> None:
    J = random_jacobian(num_tasks, 3 * num_tasks, seed)
    w = imtl_g_weights(J @ J.T)
    d = J.T @ w
    units = J / torch.linalg.vector_norm(J, dim=1, keepdim=True)
    projections = units @ d
    torch.testing.assert_close(projections, projections.mean().expand(num_tasks), rtol=1e-9, atol=1e-12)
    assert w.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_golden_orthogonal_gradients() -> None:
    # g_t = n_t e_t: d . u_t = a_t n_t equal for all t, so a_t is proportional to 1/n_t.
    J = torch.diag(torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    torch.testing.assert_close(
        imtl_g_weights(J @ J.T), torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64) / 7.0, atol=1e-14, rtol=0
    )


def test_golden_hand_written_jacobian_matches_an_independent_characterisation() -> None:
    # Independently (numpy): equal projections mean G a = c n with n_t = ||g_t||, so
    # a = G^{-1} n / (1^T G^{-1} n) for a non-singular Gramian.
    G = (J3 @ J3.T).numpy()
    n = np.sqrt(np.diag(G))
    v = np.linalg.solve(G, n)
    expected = torch.as_tensor(v / v.sum())
    torch.testing.assert_close(imtl_g_weights(J3 @ J3.T), expected, atol=1e-12, rtol=0)


def paper_closed_form(G: np.ndarray) -> np.ndarray:
    """Liu et al. 2021, Algorithm 1: alpha_{2:T} = g_1 U^T (D U^T)^{-1}, in NumPy."""
    n = np.sqrt(np.diag(G))
    g_dot_u = G / n[None, :]
    g1_u = g_dot_u[0, 0] - g_dot_u[0, 1:]
    d_u = g1_u[None, :] - g_dot_u[1:, 0:1] + g_dot_u[1:, 1:]
    tail = np.linalg.solve(d_u.T, g1_u)
    return np.concatenate([[1.0 - tail.sum()], tail])


@pytest.mark.parametrize("seed", range(5))
def test_full_rank_case_equals_the_paper_closed_form(seed: int) -> None:
    J = random_jacobian(2 + seed, 3 + 2 * seed, seed)
    G = J @ J.T
    torch.testing.assert_close(
        imtl_g_weights(G), torch.as_tensor(paper_closed_form(G.numpy())), atol=1e-10, rtol=0
    )


@pytest.mark.parametrize(
    "rows",
    [[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 1.0]], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]],
    ids=["4-tasks-rank-2", "3-tasks-rank-2"],
)
def test_linearly_dependent_gradients_give_the_least_squares_update(rows: list[list[float]]) -> None:
    # Issue 14, item 18: the closed form returned d = 0 here (w = [1, 1, -1, 0]) without an error.
    J = torch.tensor(rows, dtype=torch.float64)
    w = imtl_g_weights(J @ J.T)
    d = J.T @ w
    assert w.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert torch.linalg.vector_norm(d) > 0.1
    # Independently: the min-norm least-squares solution of U d = 1 (equal unit projections).
    units = J / torch.linalg.vector_norm(J, dim=1, keepdim=True)
    d_ls = torch.as_tensor(np.linalg.lstsq(units.numpy(), np.ones(len(rows)), rcond=None)[0])
    cosine = (d @ d_ls) / (torch.linalg.vector_norm(d) * torch.linalg.vector_norm(d_ls))
    assert cosine.item() == pytest.approx(1.0, abs=1e-12)
    assert torch.all(units @ d > 0)  # a descent direction for every task


def test_duplicated_gradients_still_get_equal_projections() -> None:
    # Rank deficient, but equal projections are achievable: the generalisation finds them.
    J = torch.tensor(
        [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [3.0, 4.0, 0.0], [-2.0, 1.0, 1.0]], dtype=torch.float64
    )
    J = torch.cat([J, J[2:3] * 5.0])  # g_5 = 5 g_3: collinear, same direction
    w = imtl_g_weights(J @ J.T)
    units = J / torch.linalg.vector_norm(J, dim=1, keepdim=True)
    projections = units @ (J.T @ w)
    torch.testing.assert_close(projections, projections.mean().expand(5), atol=1e-12, rtol=0)
    assert projections.mean() > 0


def test_single_task_weight_is_one() -> None:
    torch.testing.assert_close(imtl_g_weights(torch.tensor([[4.0]])), torch.tensor([1.0]))


def test_weights_are_invariant_to_the_scale_of_each_gradient_direction_set() -> None:
    J = random_jacobian(4, 10, seed=5)
    w = imtl_g_weights(J @ J.T)
    torch.testing.assert_close(imtl_g_weights(9.0 * (J @ J.T)), w)


@pytest.mark.parametrize(
    "gramian",
    [
        torch.full((3, 3), float("nan")),
        torch.tensor([[1.0, 0.0], [0.0, 0.0]]),  # a zero task gradient: u_2 undefined
        torch.tensor([[1.0, -1.0], [-1.0, 1.0]]),  # opposite gradients: no common projection
    ],
)
def test_failures_raise_policy_error_naming_the_method(gramian: torch.Tensor) -> None:
    with pytest.raises(PolicyError, match="IMTL-G"):
        imtl_g_weights(gramian)


def test_policy_acts_on_the_gramian() -> None:
    policy = policies.make("imtl-g")
    assert isinstance(policy, IMTLG)
    assert policy.hparams() == {} and policy.wrt == "parameters" and policy.level == "gradient"
    policy.reset(["a", "b", "c"], seed=0)
    action = policy.act({"losses": torch.ones(3), "gramian": (J3 @ J3.T).float()})
    assert isinstance(action, GradientWeights)
    assert action.weights.shape == (3,) and action.weights.dtype == torch.float32

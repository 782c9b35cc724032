"""MGDA / MGDA-UB (Sener & Koltun 2018): the Frank-Wolfe min-norm solver and the policy."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from mtlbench import policies
from mtlbench.policies import GradientWeights, PolicyError
from mtlbench.policies.mgda import MGDA, MGDAUB, gradient_normalizers, mgda_weights

# A hand-written Jacobian whose three task gradients conflict pairwise.
J3 = torch.tensor([[1.0, 0.5, -0.5], [-0.8, 1.2, 0.3], [0.2, -0.4, 1.5]], dtype=torch.float64)


def conflicting_jacobian(num_tasks: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    signs = torch.where(torch.rand(num_tasks, 1, generator=gen) < 0.5, -1.0, 1.0)
    shared = torch.randn(1, dim, generator=gen, dtype=torch.float64)
    noise = torch.randn(num_tasks, dim, generator=gen, dtype=torch.float64)
    scales = torch.exp(torch.randn(num_tasks, 1, generator=gen, dtype=torch.float64))
    return (0.7 * signs * shared + noise) * scales


def min_norm_reference(gramian: torch.Tensor) -> np.ndarray:
    """The min-norm weights by SLSQP (scipy), an independent solver."""
    A = gramian.numpy()
    T = A.shape[0]
    result = minimize(
        lambda x: x @ A @ x,
        np.full(T, 1.0 / T),
        jac=lambda x: 2 * A @ x,
        bounds=[(0.0, 1.0)] * T,
        constraints=({"type": "eq", "fun": lambda x: x.sum() - 1.0},),
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    assert result.success
    return result.x


def exact_min_norm(J: list[list[Fraction]]) -> list[Fraction]:
    """The min-norm weights in exact rational arithmetic, by enumerating the simplex's faces.

    For every support S, solve the KKT system [[G_SS, 1], [1^T, 0]] [v; -lam] = [0; 1] by
    Gaussian elimination over the rationals; the answer is the feasible (v >= 0) solution
    with g_t.d >= ||d||^2 for every task (first-order optimality on the simplex).
    """
    T = len(J)
    G = [
        [sum((a * b for a, b in zip(J[i], J[j], strict=True)), Fraction(0)) for j in range(T)]
        for i in range(T)
    ]
    for size in range(1, T + 1):
        for support in itertools.combinations(range(T), size):
            n = size + 1
            A = [[G[i][j] for j in support] + [Fraction(1)] for i in support] + [
                [Fraction(1)] * size + [Fraction(0)]
            ]
            b = [Fraction(0)] * size + [Fraction(1)]
            solution = _solve_rational(A, b)
            if solution is None or any(v < 0 for v in solution[:size]):
                continue
            w = [Fraction(0)] * T
            for i, v in zip(support, solution[: n - 1], strict=True):
                w[i] = v
            Gw = [sum((G[i][j] * w[j] for j in range(T)), Fraction(0)) for i in range(T)]
            norm2 = sum((w[i] * Gw[i] for i in range(T)), Fraction(0))
            if all(g >= norm2 for g in Gw):
                return w
    raise AssertionError("no face satisfies the KKT conditions")


def _solve_rational(A: list[list[Fraction]], b: list[Fraction]) -> list[Fraction] | None:
    n = len(b)
    M = [[*row, rhs] for row, rhs in zip(A, b, strict=True)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if M[r][col] != 0), None)
        if pivot is None:
            return None
        M[col], M[pivot] = M[pivot], M[col]
        for r in range(n):
            if r != col and M[r][col] != 0:
                factor = M[r][col] / M[col][col]
                M[r] = [x - factor * y for x, y in zip(M[r], M[col], strict=True)]
    return [M[i][n] / M[i][i] for i in range(n)]


def rational(J: torch.Tensor) -> list[list[Fraction]]:
    return [[Fraction(float(x)) for x in row] for row in J]


def test_exact_weights_on_the_issue_example() -> None:
    # Issue 14, item 17: Frank-Wolfe stopped at w = (0.669, 0.251, 0.080) (cosine 0.87 to d).
    J = torch.tensor([[-2.0, -1.0, 0.0], [5.0, 3.0, 0.0], [1.0, -1.0, -1.0]], dtype=torch.float64)
    assert exact_min_norm(rational(J)) == [Fraction(143, 209), Fraction(54, 209), Fraction(12, 209)]
    w = mgda_weights(J @ J.T)
    expected = torch.tensor([143.0, 54.0, 12.0], dtype=torch.float64) / 209
    torch.testing.assert_close(w, expected, atol=1e-14, rtol=0)
    d = torch.tensor([-4.0, 7.0, -12.0], dtype=torch.float64) / 209
    torch.testing.assert_close(J.T @ w, d, atol=1e-14, rtol=0)


HARD_CASES = {
    # pairwise conflicting gradients, min-norm point inside a 2-face
    "conflicting": [
        [3.0, 1.0, -2.0, 0.0],
        [-2.0, 2.0, 1.0, 1.0],
        [1.0, -3.0, 0.0, 2.0],
        [-1.0, -1.0, -1.0, 1.0],
    ],
    # gradient norms 1e4 apart: the large one gets a weight of order 1e-8
    "scale-disparate": [[1e4, 2e4, 0.0], [-1.0, 2.0, 0.0], [0.0, -1.0, 1.0]],
    "scale-disparate-conflicting": [[-3e4, 1e4, 0.0], [2.0, 1.0, 0.0], [1.0, -1.0, -1.0]],
    # nearly colinear: 1e-3 apart in angle
    "nearly-colinear": [[1000.0, 1.0, 0.0], [1000.0, -1.0, 0.0], [-999.0, 0.0, 3.0]],
    "nearly-colinear-opposed": [[1.0, 1e-3], [-1.0, 1e-3], [1.0, 2e-3]],
}


@pytest.mark.parametrize("case", list(HARD_CASES))
def test_hard_cases_match_the_exact_rational_solution(case: str) -> None:
    J = torch.tensor(HARD_CASES[case], dtype=torch.float64)
    expected_w = torch.tensor([float(x) for x in exact_min_norm(rational(J))], dtype=torch.float64)
    w = mgda_weights(J @ J.T)
    expected_d = J.T @ expected_w
    # d is what training uses: relative to ||d*||, and w to its own scale
    assert torch.linalg.vector_norm(J.T @ w - expected_d) <= 1e-10 * torch.linalg.vector_norm(expected_d)
    torch.testing.assert_close(w, expected_w, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("seed", range(6))
def test_random_cases_match_the_exact_rational_solution(seed: int) -> None:
    num_tasks = 2 + seed % 4
    J = conflicting_jacobian(num_tasks, num_tasks + 1, seed)
    expected_w = torch.tensor([float(x) for x in exact_min_norm(rational(J))], dtype=torch.float64)
    torch.testing.assert_close(mgda_weights(J @ J.T), expected_w, atol=1e-10, rtol=0)


def test_non_convergence_within_max_iter_is_an_error() -> None:
    J = torch.tensor([[-2.0, -1.0, 0.0], [5.0, 3.0, 0.0], [1.0, -1.0, -1.0]], dtype=torch.float64)
    with pytest.raises(PolicyError, match="did not converge"):
        mgda_weights(J @ J.T, max_iter=1)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_norm_point_satisfies_kkt(num_tasks: int, seed: int) -> None:
    J = conflicting_jacobian(num_tasks, 4 * num_tasks, seed)
    G = J @ J.T
    w = mgda_weights(G)
    d = J.T @ w
    norm2 = d @ d
    projections = J @ d  # g_t . d
    # The duality gap ||d||^2 - min_t g_t.d is at rounding level at the exact min-norm point.
    gap_tol = 1e-12 * G.diagonal().max()
    assert torch.all(w >= 0) and torch.isclose(w.sum(), torch.tensor(1.0, dtype=w.dtype))
    assert torch.all(projections >= norm2 - gap_tol)
    # On the support, g_t.d = ||d||^2: the deviation is at most gap / w_t.
    support = w > 0
    assert torch.all((projections[support] - norm2).abs() <= gap_tol)


def test_min_norm_value_matches_an_independent_solver() -> None:
    for seed in range(3):
        J = conflicting_jacobian(4, 9, seed)
        G = J @ J.T
        w = mgda_weights(G)
        reference = torch.as_tensor(min_norm_reference(G))
        excess = (w @ G @ w - reference @ G @ reference).item()
        # SLSQP is itself approximate; the exact solver must never be worse than it.
        assert excess <= 1e-12 * G.diagonal().max().item()


def test_two_tasks_match_the_closed_form_of_algorithm_1() -> None:
    g1 = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
    g2 = torch.tensor([-1.0, 0.5, 1.0], dtype=torch.float64)
    J = torch.stack([g1, g2])
    w = mgda_weights(J @ J.T)
    # By hand: gamma = (g2 - g1).g2 / ||g1 - g2||^2 is the weight of g1.
    gamma = ((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2))).item()
    torch.testing.assert_close(w, torch.tensor([gamma, 1 - gamma], dtype=torch.float64), atol=1e-12, rtol=0)


def test_golden_orthogonal_gradients() -> None:
    # g_t = n_t e_t: min ||sum w_t n_t e_t||^2 on the simplex gives w_t proportional to 1/n_t^2.
    J = torch.diag(torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    expected = torch.tensor([16.0, 4.0, 1.0], dtype=torch.float64) / 21.0
    torch.testing.assert_close(mgda_weights(J @ J.T), expected, atol=1e-14, rtol=0)


def test_golden_hand_written_jacobian() -> None:
    G = J3 @ J3.T
    expected = torch.as_tensor(min_norm_reference(G))
    w = mgda_weights(G)
    torch.testing.assert_close(w, expected, atol=1e-4, rtol=0)
    assert (w @ G @ w).item() == pytest.approx(0.34984229582, rel=1e-8)


def test_pareto_stationary_gradients_give_zero_update() -> None:
    J = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    w = mgda_weights(J @ J.T)
    d = J.T @ w
    assert d @ d < 1e-24
    torch.testing.assert_close(w, torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64), atol=1e-12, rtol=0)


def test_l2_normalisation_is_invariant_to_gradient_scales() -> None:
    J = conflicting_jacobian(4, 12, seed=3)
    G = J @ J.T
    scales = torch.tensor([0.1, 1.0, 5.0, 30.0], dtype=torch.float64)
    G_scaled = scales[:, None] * G * scales[None, :]
    # The solve sees the same unit gradients, so the weights (which multiply the raw
    # gradients, as in the official code) are unchanged.
    w = mgda_weights(G, normalization="l2")
    w_scaled = mgda_weights(G_scaled, normalization="l2")
    torch.testing.assert_close(w_scaled, w, atol=1e-12, rtol=0)


def test_gradient_normalizers_follow_the_official_definitions() -> None:
    G = torch.tensor([[4.0, 1.0], [1.0, 9.0]], dtype=torch.float64)
    losses = torch.tensor([0.5, 2.0], dtype=torch.float64)
    torch.testing.assert_close(gradient_normalizers(G, losses, "none"), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(
        gradient_normalizers(G, losses, "l2"), torch.tensor([2.0, 3.0], dtype=torch.float64)
    )
    torch.testing.assert_close(gradient_normalizers(G, losses, "loss"), losses)
    torch.testing.assert_close(
        gradient_normalizers(G, losses, "loss+"), torch.tensor([1.0, 6.0], dtype=torch.float64)
    )


def test_loss_normalisation_uses_the_losses() -> None:
    J = conflicting_jacobian(3, 6, seed=4)
    G = J @ J.T
    losses = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    w = mgda_weights(G, losses=losses, normalization="loss")
    # Same as the min-norm point of g_t / L_t, independently by SLSQP.
    expected = min_norm_reference(G / (losses[:, None] * losses[None, :]))
    torch.testing.assert_close(w, torch.as_tensor(expected), atol=1e-6, rtol=0)
    # A common rescaling of the losses changes nothing.
    torch.testing.assert_close(mgda_weights(G, losses=3 * losses, normalization="loss"), w)


def test_failures_raise_policy_error_naming_the_method() -> None:
    G = J3 @ J3.T
    with pytest.raises(PolicyError, match="MGDA"):
        mgda_weights(torch.full((3, 3), float("nan")))
    with pytest.raises(PolicyError, match="MGDA"):
        mgda_weights(G, losses=torch.tensor([1.0, 0.0, 1.0]), normalization="loss")
    with pytest.raises(ValueError, match="losses"):
        mgda_weights(G, normalization="loss+")
    with pytest.raises(ValueError, match=r"\(T, T\)"):
        mgda_weights(torch.ones(2, 3))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"normalization": "l1"}, "normalization"),
        ({"max_iter": 0}, "max_iter"),
        ({"max_iter": 2.5}, "max_iter"),
        ({"tol": -1.0}, "tol"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        MGDA(**kwargs)


def test_policy_acts_on_the_gramian() -> None:
    policy = policies.make("mgda", normalization="loss+")
    assert isinstance(policy, MGDA)
    assert policy.hparams() == {"normalization": "loss+", "max_iter": 1000, "tol": 1e-10}
    policy.reset(["a", "b", "c"], seed=0)
    G = (J3 @ J3.T).float()
    action = policy.act({"losses": torch.tensor([1.0, 2.0, 3.0]), "gramian": G})
    assert isinstance(action, GradientWeights)
    assert action.weights.shape == (3,) and action.weights.dtype == torch.float32
    assert action.head_weights is None


def test_mgda_ub_is_mgda_on_the_representation() -> None:
    policy = policies.make("mgda-ub")
    assert isinstance(policy, MGDAUB)
    assert (policy.wrt, MGDA.wrt) == ("representation", "parameters")
    assert policy.level == "gradient" and "gramian" in policy.needs
    G = J3 @ J3.T
    observation = {"losses": torch.ones(3, dtype=torch.float64), "gramian": G}
    torch.testing.assert_close(policy.act(observation).weights, MGDA().act(observation).weights)


def test_the_exact_solver_is_a_new_code_version() -> None:
    """Results of the Frank-Wolfe solver (version 1) stay apart from the exact solver's (issue 14, 17)."""
    from mtlbench.harness.runner import MethodRef
    from mtlbench.policies import version_of

    assert version_of("mgda") == version_of("mgda-ub") == "2"
    assert version_of("rlw+mgda-ub") == "1+2" and version_of("rlw+cagrad") == "1"
    assert MethodRef.builtin("rlw+mgda-ub").version == "1+2"

from __future__ import annotations

import pytest
import torch

from mtlbench import policies
from mtlbench.policies.base import GradientWeights
from mtlbench.policies.pcgrad import pcgrad_coefficients, random_task_orders


def _explicit_pcgrad(jac: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """Algorithm 1 of Yu et al. (2020), on explicit gradients; returns the projected rows."""
    pc = jac.clone()
    for i in range(jac.shape[0]):
        for j in orders[i].tolist():
            inner = pc[i] @ jac[j]
            if inner < 0:
                pc[i] = pc[i] - inner / (jac[j] @ jac[j]) * jac[j]
    return pc


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("num_tasks", [2, 3, 6])
def test_weights_from_the_gramian_equal_explicit_projection(seed: int, num_tasks: int) -> None:
    g = torch.Generator().manual_seed(seed)
    jac = torch.randn(num_tasks, 12, generator=g, dtype=torch.float64)
    orders = random_task_orders(num_tasks, g)
    assert all(
        sorted(orders[i].tolist()) == [j for j in range(num_tasks) if j != i] for i in range(num_tasks)
    )
    coef = pcgrad_coefficients(jac @ jac.T, orders)
    pc = _explicit_pcgrad(jac, orders)
    torch.testing.assert_close(coef @ jac, pc)
    torch.testing.assert_close(coef.sum(0) @ jac, pc.sum(0))


def test_two_conflicting_gradients() -> None:
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    jac = torch.stack([g1, g2]).double()
    p = policies.make("pcgrad")
    p.reset(["a", "b"], seed=0)
    a = p.act({"losses": torch.ones(2), "gramian": jac @ jac.T})
    assert isinstance(a, GradientWeights)
    coef = pcgrad_coefficients(jac @ jac.T, torch.tensor([[1], [0]]))
    pc = coef @ jac
    # each projected gradient no longer conflicts with the other task's gradient
    assert pc[0] @ jac[1] >= -1e-12 and pc[1] @ jac[0] >= -1e-12
    torch.testing.assert_close(pc[0] @ jac[1], torch.tensor(0.0, dtype=torch.float64))
    # and the two projected gradients do not conflict with each other: with c = g1.g2 < 0,
    # pc1.pc2 = -c (1 - c^2 / (|g1|^2 |g2|^2)) >= 0 by Cauchy-Schwarz
    assert pc[0] @ pc[1] >= 0
    # the update has a non-negative inner product with every task gradient
    d = a.weights @ jac
    assert (jac @ d >= -1e-12).all()
    torch.testing.assert_close(d, pc.sum(0))


def test_no_conflict_means_plain_sum_and_rng_hygiene() -> None:
    jac = torch.tensor([[1.0, 0.2], [0.5, 1.0], [0.1, 0.1]])
    p = policies.make("pcgrad")
    rng_before = torch.random.get_rng_state()
    p.reset(["a", "b", "c"], seed=0)
    w = p.act({"losses": torch.ones(3), "gramian": jac @ jac.T}).weights
    torch.testing.assert_close(w, torch.ones(3))
    assert torch.equal(torch.random.get_rng_state(), rng_before)


def test_zero_gradient_is_not_projected_on() -> None:
    jac = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.5]])
    coef = pcgrad_coefficients(jac @ jac.T, random_task_orders(3, torch.Generator().manual_seed(0)))
    assert torch.isfinite(coef).all()

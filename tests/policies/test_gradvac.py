from __future__ import annotations

import math

import pytest
import torch

from mtlbench import policies
from mtlbench.policies.gradvac import GradVac, gradvac_coefficients
from mtlbench.policies.pcgrad import random_task_orders


def _explicit_gradvac(
    jac: torch.Tensor, orders: torch.Tensor, targets: torch.Tensor, beta: float, eps: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1 of Wang et al. (2021) on explicit gradients (whole-model granularity)."""
    pc, targets = jac.clone(), targets.clone()
    for i in range(jac.shape[0]):
        for j in orders[i].tolist():
            phi = (pc[i] @ jac[j]) / (pc[i].norm() * jac[j].norm() + eps)
            t = targets[i, j]
            if phi < t:
                w = pc[i].norm() * (t * math.sqrt(1 - phi**2) - phi * math.sqrt(1 - t**2))
                w = w / (jac[j].norm() * math.sqrt(1 - t**2) + eps)
                pc[i] = pc[i] + w * jac[j]
            targets[i, j] = (1 - beta) * t + beta * phi
    return pc, targets


@pytest.mark.parametrize("seed", range(4))
def test_gramian_form_equals_explicit_algorithm_over_steps(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    targets = torch.zeros(4, 4, dtype=torch.float64)
    ref_targets = targets.clone()
    for _ in range(3):
        jac = torch.randn(4, 9, generator=g, dtype=torch.float64)
        orders = random_task_orders(4, g)
        coef, targets = gradvac_coefficients(jac @ jac.T, orders, targets, beta=0.5)
        pc, ref_targets = _explicit_gradvac(jac, orders, ref_targets, beta=0.5)
        torch.testing.assert_close(coef @ jac, pc)
        torch.testing.assert_close(targets, ref_targets)


def test_conflict_is_corrected_to_the_target_similarity() -> None:
    jac = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    coef, targets = gradvac_coefficients(jac @ jac.T, torch.tensor([[1], [0]]), torch.zeros(2, 2), beta=0.5)
    pc = coef @ jac
    # with zero targets the corrected gradients are orthogonal to the other task's (PCGrad-like)
    torch.testing.assert_close(pc[0] @ jac[1], torch.tensor(0.0, dtype=torch.float64))
    torch.testing.assert_close(pc[1] @ jac[0], torch.tensor(0.0, dtype=torch.float64))
    cos = -1 / math.sqrt(2)
    torch.testing.assert_close(
        targets, torch.tensor([[0.0, 0.5 * cos], [0.5 * cos, 0.0]], dtype=torch.float64)
    )


def test_reset_really_resets_and_state_round_trips() -> None:
    p = policies.make("gradvac")
    assert isinstance(p, GradVac)
    p.reset(["a", "b", "c"], seed=0)
    jac = torch.tensor([[1.0, 0.0, 0.2], [-1.0, 1.0, 0.0], [0.3, -0.5, 1.0]])
    obs = {"losses": torch.ones(3), "gramian": jac @ jac.T}
    w = p.act(obs).weights
    assert w.shape == (3,) and torch.isfinite(w).all()
    assert p.targets is not None and p.targets.abs().sum() > 0
    q = GradVac()
    q.reset(["a", "b", "c"], seed=0)
    q.load_state_dict(p.state_dict())
    torch.testing.assert_close(p.act(obs).weights, q.act(obs).weights)
    p.reset(["a", "b", "c"], seed=0)
    assert torch.equal(p.targets, torch.zeros(3, 3))
    torch.testing.assert_close(p.act(obs).weights, w)  # same seed, fresh targets: same first step


def test_beta_validated() -> None:
    with pytest.raises(ValueError, match="beta"):
        GradVac(beta=0.0)
    with pytest.raises(ValueError, match="beta"):
        GradVac(beta=1.5)

from __future__ import annotations

import pytest
import torch

from mtlbench.policies.base import PolicyError
from mtlbench.policies.moml import MOML, moml_hypergradient

TASKS = ["a", "b"]


def test_first_order_hypergradient_matches_autograd_of_a_virtual_step() -> None:
    # first order: L_val linearised at theta, so grad L_val(theta') = grad L_val(theta)
    torch.manual_seed(0)
    jac = torch.randn(2, 5)
    val_jac = torch.randn(2, 5)
    alpha = 0.1
    w = torch.ones(2, requires_grad=True)
    theta0 = torch.zeros(5)
    theta = theta0 - alpha * (w @ jac)
    lin_val = (val_jac.sum(0) * theta).sum()  # linearisation of L_val around theta0
    (ref,) = torch.autograd.grad(lin_val, w)
    torch.testing.assert_close(moml_hypergradient(jac, val_jac, alpha), ref)


def test_weights_move_towards_the_task_aligned_with_validation() -> None:
    p = MOML(meta_lr=0.01)
    assert p.needs == frozenset({"losses", "jacobian", "val_jacobian"})
    p.reset(TASKS, seed=0, lr=0.1)
    obs = {
        "losses": torch.ones(2),
        "jacobian": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        "val_jacobian": torch.tensor([[1.0, 0.0], [0.5, 0.0]]),
    }
    w = p.act(obs)
    assert w.shape == (2,) and torch.isfinite(w).all()
    torch.testing.assert_close(w.sum(), torch.tensor(2.0))
    assert w[0] > 1 > w[1]


def test_reset_and_errors() -> None:
    p = MOML(meta_lr=0.1)
    p.reset(TASKS, seed=0)
    obs = {
        "losses": torch.ones(2),
        "jacobian": torch.eye(2),
        "val_jacobian": torch.tensor([[1.0, 0.0], [1.0, 0.0]]),
    }
    for _ in range(3):
        p.act(obs)
    q = MOML(meta_lr=0.1)
    q.reset(TASKS, seed=0)
    q.load_state_dict(p.state_dict())
    torch.testing.assert_close(p.act(obs), q.act(obs))
    p.reset(TASKS, seed=0)
    assert p.logits is not None and torch.equal(p.logits.detach(), torch.zeros(2))
    with pytest.raises(PolicyError, match="val_jacobian"):
        p.act({"losses": torch.ones(2), "jacobian": torch.eye(2)})
    with pytest.raises(ValueError, match="meta_lr"):
        MOML(meta_lr=0)

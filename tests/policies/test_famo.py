from __future__ import annotations

import pytest
import torch

from mtlbench.policies.base import PolicyError
from mtlbench.policies.famo import FAMO, famo_logit_grad, famo_weights

TASKS = ["a", "b", "c"]


def test_weights_follow_the_paper_and_sum_to_t() -> None:
    p = FAMO()
    assert p.needs == frozenset({"losses", "next_losses"})
    p.reset(TASKS, seed=0)
    assert torch.allclose(p.act({"losses": torch.full((3,), 2.0)}), torch.ones(3))
    losses = torch.tensor([1.0, 2.0, 4.0])
    w = p.act({"losses": losses})
    # z uniform: w_t = T (1/L_t) / sum_s (1/L_s)
    torch.testing.assert_close(w, 3 * (1 / losses) / (1 / losses).sum(), rtol=1e-6, atol=1e-6)
    logits = torch.tensor([0.5, -0.2, 0.1])
    z = torch.softmax(logits, 0)
    torch.testing.assert_close(
        famo_weights(logits, losses), (z / losses) / (z / losses).sum(), rtol=1e-6, atol=1e-7
    )


def test_logit_gradient_matches_the_official_autograd_form() -> None:
    logits = torch.tensor([0.5, -0.2, 0.1], requires_grad=True)
    prev, nxt = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.5, 1.9, 4.1])
    delta = torch.log(prev + 1e-8) - torch.log(nxt + 1e-8)
    (ref,) = torch.autograd.grad(torch.softmax(logits, -1), logits, grad_outputs=delta)
    torch.testing.assert_close(famo_logit_grad(logits.detach(), prev, nxt), ref)


def test_update_lowers_the_weight_of_the_task_that_improved_most() -> None:
    p = FAMO()
    p.reset(TASKS, seed=0)
    losses = torch.ones(3)
    p.act({"losses": losses})
    p.update({"next_losses": torch.tensor([0.5, 1.0, 1.0]), "step": 0, "epoch": 0})
    w = p.act({"losses": losses})
    assert w[0] < w[1] and torch.isclose(w[1], w[2])
    torch.testing.assert_close(w.sum(), torch.tensor(3.0))


def test_reset_really_resets() -> None:
    p = FAMO()
    p.reset(TASKS, seed=0)
    for _ in range(5):
        p.act({"losses": torch.ones(3)})
        p.update({"next_losses": torch.tensor([0.5, 1.0, 1.0])})
    assert not torch.allclose(p.act({"losses": torch.ones(3)}), torch.ones(3))
    p.reset(TASKS, seed=0)
    assert p.optimizer is not None and len(p.optimizer.state) == 0
    assert torch.allclose(p.act({"losses": torch.ones(3)}), torch.ones(3))


def test_state_dict_round_trip() -> None:
    p, q = FAMO(), FAMO()
    p.reset(TASKS, seed=0)
    q.reset(TASKS, seed=0)
    for _ in range(3):
        p.act({"losses": torch.ones(3)})
        p.update({"next_losses": torch.tensor([0.5, 1.0, 1.0])})
    q.load_state_dict(p.state_dict())
    for r in (p, q):
        r.act({"losses": torch.ones(3)})
        r.update({"next_losses": torch.tensor([0.9, 0.5, 1.0])})
    torch.testing.assert_close(p.act({"losses": torch.ones(3)}), q.act({"losses": torch.ones(3)}))


def test_update_errors_are_clear() -> None:
    p = FAMO()
    p.reset(TASKS, seed=0)
    with pytest.raises(PolicyError, match="before act"):
        p.update({"next_losses": torch.ones(3)})
    p.act({"losses": torch.ones(3)})
    with pytest.raises(PolicyError, match="next_losses"):
        p.update({"step": 0})


def test_hyperparameters_validated() -> None:
    with pytest.raises(ValueError, match="'lr'"):
        FAMO(lr=0)
    with pytest.raises(ValueError, match="weight_decay"):
        FAMO(weight_decay=-1)

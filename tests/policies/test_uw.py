from __future__ import annotations

import pytest
import torch

from mtlbench.policies.uw import UW, uw_log_variance_grad, uw_weights

TASKS = ["a", "b", "c"]


def test_initial_weights_are_one_and_finite() -> None:
    p = UW()
    p.reset(TASKS, seed=0)
    w = p.act({"losses": torch.tensor([0.5, 2.0, 1.0])})
    assert w.shape == (3,) and torch.equal(w, torch.ones(3))
    assert len(p.parameters()) == 1


def test_gradient_matches_autograd_of_the_objective() -> None:
    s = torch.tensor([0.3, -0.2, 1.0], requires_grad=True)
    losses = torch.tensor([0.5, 2.0, 1.5])
    (torch.exp(-s) * losses + s).sum().backward()
    torch.testing.assert_close(uw_log_variance_grad(s.detach(), losses), s.grad)
    torch.testing.assert_close(uw_weights(s.detach()), torch.exp(-s.detach()))


def test_converges_to_inverse_losses() -> None:
    p = UW(lr=0.05)
    p.reset(TASKS, seed=0)
    losses = torch.tensor([0.5, 2.0, 1.0])
    for _ in range(600):
        w = p.act({"losses": losses})
    torch.testing.assert_close(w, 1 / losses, rtol=0.05, atol=0)


def test_lr_comes_from_the_reset_context() -> None:
    p = UW()
    p.reset(TASKS, seed=0, lr=0.123)
    assert p.optimizer is not None and p.optimizer.param_groups[0]["lr"] == 0.123
    p.reset(TASKS, seed=0)
    assert p.optimizer.param_groups[0]["lr"] == 1e-4


def test_reset_really_resets() -> None:
    p = UW(lr=0.1)
    p.reset(TASKS, seed=0)
    for _ in range(10):
        p.act({"losses": torch.tensor([0.1, 5.0, 1.0])})
    assert not torch.equal(p.act({"losses": torch.ones(3)}), torch.ones(3))
    p.reset(TASKS, seed=0)
    assert p.optimizer is not None and len(p.optimizer.state) == 0
    assert torch.equal(p.act({"losses": torch.ones(3)}), torch.ones(3))


def test_state_dict_round_trip() -> None:
    p, q = UW(lr=0.1), UW(lr=0.1)
    p.reset(TASKS, seed=0)
    q.reset(TASKS, seed=0)
    for _ in range(5):
        p.act({"losses": torch.tensor([0.1, 5.0, 1.0])})
    q.load_state_dict(p.state_dict())
    obs = {"losses": torch.tensor([1.0, 2.0, 3.0])}
    torch.testing.assert_close(p.act(obs), q.act(obs))
    torch.testing.assert_close(p.act(obs), q.act(obs))


def test_bad_lr_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="'lr'"):
        UW(lr=0)

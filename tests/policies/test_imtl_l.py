from __future__ import annotations

import pytest
import torch

from mtlbench import policies
from mtlbench.policies.imtl_l import IMTLL, imtl_l_scale_grad, imtl_l_weights

TASKS = ["a", "b", "c"]


def test_registered_and_initial_weights_one() -> None:
    p = policies.make("imtl-l")
    assert isinstance(p, IMTLL) and p.level == "loss"
    p.reset(TASKS, seed=0)
    assert torch.equal(p.act({"losses": torch.tensor([0.5, 2.0, 1.0])}), torch.ones(3))


def test_gradient_matches_autograd_of_the_objective() -> None:
    s = torch.tensor([0.3, -0.2, 1.0], requires_grad=True)
    losses = torch.tensor([0.5, 2.0, 1.5])
    (torch.exp(s) * losses - s).sum().backward()
    torch.testing.assert_close(imtl_l_scale_grad(s.detach(), losses), s.grad)
    torch.testing.assert_close(imtl_l_weights(s.detach()), torch.exp(s.detach()))


def test_scaled_losses_converge_to_one() -> None:
    p = IMTLL(lr=0.05)
    p.reset(TASKS, seed=0)
    losses = torch.tensor([0.5, 2.0, 1.0])
    for _ in range(600):
        w = p.act({"losses": losses})
    torch.testing.assert_close(w * losses, torch.ones(3), rtol=0.05, atol=0)


def test_reset_really_resets_and_state_round_trips() -> None:
    p = IMTLL(lr=0.1)
    p.reset(TASKS, seed=0)
    for _ in range(10):
        p.act({"losses": torch.tensor([0.1, 5.0, 1.0])})
    q = IMTLL(lr=0.1)
    q.reset(TASKS, seed=0)
    q.load_state_dict(p.state_dict())
    obs = {"losses": torch.ones(3)}
    torch.testing.assert_close(p.act(obs), q.act(obs))
    p.reset(TASKS, seed=0)
    assert p.optimizer is not None and len(p.optimizer.state) == 0
    assert torch.equal(p.act(obs), torch.ones(3))


def test_bad_lr_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="'lr'"):
        IMTLL(lr=-1.0)


def test_under_adam_imtl_l_mirrors_uw_exactly() -> None:
    # UW here is exp(-s) L + s (LibMTL's 0.5 factors dropped, see mtlbench.policies.uw) and
    # IMTL-L is exp(s) L - s: their s-gradients are exact negatives at s_IMTL = -s_UW, Adam
    # is odd in the gradient, so from s = 0 the two give the same weights at every step.
    uw, imtl = policies.make("uw", lr=0.05), IMTLL(lr=0.05)
    uw.reset(TASKS, seed=0)
    imtl.reset(TASKS, seed=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        obs = {"losses": torch.rand(3, generator=g) * 3}
        assert torch.equal(uw.act(obs), imtl.act(obs))
    assert not torch.equal(imtl.act(obs), torch.ones(3))  # the scales did move

from __future__ import annotations

import pytest
import torch

from mtlbench.policies.stch import STCH, stch_weights

TASKS = ["a", "b", "c"]


def _obs(losses: list[float], epoch: int) -> dict[str, torch.Tensor]:
    return {"losses": torch.tensor(losses), "epoch": torch.tensor(epoch)}


@pytest.mark.parametrize("mu", [1.0, 0.3])
def test_weights_are_the_gradient_of_the_official_objective(mu: float) -> None:
    losses = torch.tensor([0.7, 2.0, 0.1], requires_grad=True)
    nadir = torch.tensor([1.0, 3.0, 0.5])
    obj = 3 * mu * torch.logsumexp(torch.log(losses / nadir + 1e-20) / mu, dim=0)
    (ref,) = torch.autograd.grad(obj, losses)
    torch.testing.assert_close(stch_weights(losses.detach(), nadir, mu), ref)


def test_warmup_nadir_and_smooth_tchebycheff_phases() -> None:
    p = STCH(warmup_epochs=1)
    p.reset(TASKS, seed=0)
    torch.testing.assert_close(p.act(_obs([0.5, 2.0, 4.0], 0)), torch.tensor([2.0, 0.5, 0.25]))
    # epoch == warmup: still log-loss weights, losses averaged into the nadir
    p.act(_obs([1.0, 2.0, 3.0], 1))
    p.act(_obs([3.0, 4.0, 5.0], 1))
    losses = torch.tensor([1.0, 1.0, 1.0])
    w = p.act({"losses": losses, "epoch": torch.tensor(2)})
    torch.testing.assert_close(w, stch_weights(losses, torch.tensor([2.0, 3.0, 4.0]), 1.0))
    assert torch.isfinite(w).all() and (w > 0).all()


def test_reset_really_resets() -> None:
    p = STCH(warmup_epochs=0)
    p.reset(TASKS, seed=0)
    p.act(_obs([1.0, 2.0, 3.0], 0))
    w_before = p.act(_obs([1.0, 1.0, 1.0], 1))
    p.reset(TASKS, seed=0)
    p.act(_obs([5.0, 5.0, 5.0], 0))
    w_after = p.act(_obs([1.0, 1.0, 1.0], 1))
    assert not torch.allclose(w_before, w_after)
    torch.testing.assert_close(w_after, torch.ones(3))  # equal normalised losses: w = T (1/3) / 1


def test_hyperparameters_validated() -> None:
    with pytest.raises(ValueError, match="'mu'"):
        STCH(mu=0)
    with pytest.raises(ValueError, match="warmup_epochs"):
        STCH(warmup_epochs=-1)

from __future__ import annotations

import pytest
import torch

from mtlbench.policies.base import GradientWeights
from mtlbench.policies.gradnorm import GradNorm, gradnorm_weight_grad

TASKS = ["a", "b", "c"]


def _gramian(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    jac = torch.randn(3, 7, generator=g)
    return jac @ jac.T


def test_weight_gradient_matches_autograd_with_constant_target() -> None:
    gram = _gramian()
    w = torch.tensor([0.8, 1.5, 0.7], requires_grad=True)
    losses, init = torch.tensor([0.5, 1.0, 2.0]), torch.tensor([1.0, 1.2, 2.1])
    norms = torch.diagonal(gram).sqrt()
    g_w = w * norms
    ratio = losses / init
    target = (g_w.mean() * (ratio / ratio.mean()) ** 1.5).detach()
    (g_w - target).abs().sum().backward()
    torch.testing.assert_close(gradnorm_weight_grad(w.detach(), gram, losses, init, 1.5), w.grad)


def test_first_step_and_renormalisation() -> None:
    p = GradNorm(lr=0.01)
    assert p.needs == frozenset({"losses", "gramian"}) and p.wrt == "representation"
    p.reset(TASKS, seed=0)
    obs = {"losses": torch.ones(3), "gramian": torch.diag(torch.tensor([4.0, 1.0, 1.0]))}
    a = p.act(obs)
    assert isinstance(a, GradientWeights) and a.head_weights is None
    assert torch.equal(a.weights, torch.ones(3))  # the weights before the first update
    assert p.initial_losses is not None and torch.equal(p.initial_losses, torch.ones(3))
    w = p.act(obs).weights
    torch.testing.assert_close(w.sum(), torch.tensor(3.0))
    # equal training rates: the task with the larger gradient norm is down-weighted
    assert w[0] < 1 < w[1] and torch.isclose(w[1], w[2])
    assert (w >= 0).all()


def test_reset_really_resets() -> None:
    p = GradNorm(lr=0.05)
    p.reset(TASKS, seed=0)
    obs = {"losses": torch.tensor([1.0, 2.0, 3.0]), "gramian": _gramian()}
    for _ in range(5):
        p.act(obs)
    assert not torch.allclose(p.act(obs).weights, torch.ones(3))
    p.reset(TASKS, seed=0)
    assert p.initial_losses is None
    assert p.optimizer is not None and len(p.optimizer.state) == 0
    assert torch.equal(p.act(obs).weights, torch.ones(3))


def test_state_round_trip_and_head_option() -> None:
    p, q = GradNorm(lr=0.05, weight_heads=True), GradNorm(lr=0.05, weight_heads=True)
    p.reset(TASKS, seed=0)
    q.reset(TASKS, seed=0)
    obs = {"losses": torch.tensor([1.0, 2.0, 3.0]), "gramian": _gramian()}
    for _ in range(3):
        p.act(obs)
    q.load_state_dict(p.state_dict())
    a, b = p.act(obs), q.act(obs)
    torch.testing.assert_close(a.weights, b.weights)
    assert a.head_weights is not None and torch.equal(a.head_weights, a.weights)


def test_hyperparameters_validated() -> None:
    with pytest.raises(ValueError, match="alpha"):
        GradNorm(alpha=-1)
    with pytest.raises(ValueError, match="'lr'"):
        GradNorm(lr=0)

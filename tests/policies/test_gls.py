from __future__ import annotations

import torch

from mtlbench import policies
from mtlbench.policies.gls import gls_weights


def _losses(theta: torch.Tensor) -> torch.Tensor:
    # three positive losses of a shared parameter vector
    return torch.stack([(theta**2).sum() + 0.1, (theta - 1).abs().sum() + 0.5, torch.exp(theta[0])])


def test_weighted_sum_gradient_equals_t_times_geometric_mean_gradient() -> None:
    theta = torch.tensor([0.3, -1.2, 0.7], requires_grad=True)
    losses = _losses(theta)
    (grad_gls,) = torch.autograd.grad(losses.prod().pow(1 / 3), theta, retain_graph=True)
    p = policies.make("gls")
    p.reset(["a", "b", "c"], seed=0)
    w = p.act({"losses": losses.detach()})
    (grad_w,) = torch.autograd.grad((w * losses).sum(), theta)
    torch.testing.assert_close(grad_w, 3 * grad_gls)


def test_equal_losses_give_ew_weights_and_stable_for_tiny_losses() -> None:
    torch.testing.assert_close(gls_weights(torch.full((4,), 2.5)), torch.ones(4))
    w = gls_weights(torch.tensor([1e-30, 1.0, 1e30]))
    assert torch.isfinite(w).all() and (w > 0).all()
    torch.testing.assert_close(gls_weights(torch.tensor([1.0, 4.0])), torch.tensor([2.0, 0.5]))

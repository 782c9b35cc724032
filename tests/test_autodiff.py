"""The batched Jacobian equals the naive per-task loop (issue: per-task gradients)."""

from __future__ import annotations

import torch
from torch import nn

from mtlbench.autodiff import gramian, jacobian, jacobian_loop


class _Model(nn.Module):
    """BatchNorm, dropout, and a shared parameter that only task 0 uses."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.3)
        self.only_task0 = nn.Linear(4, 4)
        self.heads = nn.ModuleList([nn.Linear(4, 1) for _ in range(3)])

    def shared(self) -> list[nn.Parameter]:
        return [*self.conv.parameters(), *self.bn.parameters(), *self.only_task0.parameters()]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.drop(torch.relu(self.bn(self.conv(x)))).mean(dim=(2, 3))
        losses = torch.stack(
            [
                self.heads[0](self.only_task0(z)).pow(2).mean(),
                self.heads[1](z).abs().mean(),
                self.heads[2](z).sigmoid().mean(),
            ]
        )
        return losses, z


def test_batched_jacobian_matches_loop_on_parameters() -> None:
    torch.manual_seed(0)
    model = _Model().train()
    losses, _ = model(torch.randn(5, 3, 8, 8))
    jac = jacobian(losses, model.shared(), strategy="batched")
    ref = jacobian_loop(losses, model.shared())
    assert torch.equal(jacobian(losses, model.shared()), ref)  # "auto" on CPU is the loop
    assert jac.shape == (3, sum(p.numel() for p in model.shared()))
    torch.testing.assert_close(jac, ref, rtol=1e-5, atol=1e-6)
    # task 1 and 2 never use ``only_task0``: their rows are exactly zero there
    n_other = sum(p.numel() for p in [*model.conv.parameters(), *model.bn.parameters()])
    assert torch.count_nonzero(jac[1:, n_other:]) == 0
    assert torch.count_nonzero(jac[0, n_other:]) > 0


def test_batched_jacobian_matches_loop_on_representation() -> None:
    torch.manual_seed(1)
    model = _Model().train()
    x = torch.randn(4, 3, 8, 8)
    z = model.drop(torch.relu(model.bn(model.conv(x)))).mean(dim=(2, 3))
    z_in = z.detach().requires_grad_(True)
    losses = torch.stack([model.heads[i](z_in).pow(i + 1).mean() for i in range(3)])
    torch.testing.assert_close(
        jacobian(losses, z_in, strategy="batched"), jacobian_loop(losses, z_in), rtol=1e-5, atol=1e-6
    )


def test_gramian_is_jjt_and_psd() -> None:
    jac = torch.randn(4, 50)
    g = gramian(jac)
    torch.testing.assert_close(g, jac @ jac.T)
    assert torch.linalg.eigvalsh(g).min() > -1e-4


def test_graph_is_retained_for_a_later_backward() -> None:
    model = _Model()
    losses, _ = model(torch.randn(2, 3, 8, 8))
    jacobian(losses, model.shared(), retain_graph=True)
    losses.sum().backward()  # would raise if the graph had been freed
    assert model.conv.weight.grad is not None


def test_unknown_strategy_is_rejected() -> None:
    import pytest

    with pytest.raises(ValueError, match="strategy must be"):
        jacobian(torch.ones(2, requires_grad=True), [torch.ones(1)], strategy="fast")

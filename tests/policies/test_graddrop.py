from __future__ import annotations

import pytest
import torch

from mtlbench import policies
from mtlbench.policies.base import GradientDirection
from mtlbench.policies.graddrop import GradDrop, graddrop_direction, sign_purity


def test_all_agreeing_signs_keep_the_sum() -> None:
    jac = torch.tensor([[1.0, -2.0, 0.5, 0.0], [3.0, -0.1, 0.2, 0.0], [0.1, -1.0, 4.0, 0.0]])
    p = policies.make("graddrop")
    assert p.wrt == "representation" and p.needs == frozenset({"losses", "jacobian"})
    p.reset(["a", "b", "c"], seed=0)
    for _ in range(10):
        a = p.act({"losses": torch.ones(3), "jacobian": jac})
        assert isinstance(a, GradientDirection) and a.direction.shape == (4,)
        torch.testing.assert_close(a.direction, jac.sum(0))


def test_mixed_signs_keep_exactly_one_sign_per_element() -> None:
    g = torch.Generator().manual_seed(0)
    jac = torch.randn(4, 1000, generator=g)
    uniform = torch.rand(1000, generator=g)
    d = graddrop_direction(jac, uniform)
    pos, neg = jac.clamp(min=0).sum(0), jac.clamp(max=0).sum(0)
    assert torch.all(torch.isclose(d, pos) | torch.isclose(d, neg))
    purity = sign_purity(jac)
    assert ((purity >= 0) & (purity <= 1)).all()
    torch.testing.assert_close(d, torch.where(purity > uniform, pos, neg))
    # a larger positive purity keeps the positive gradients more often
    assert (d == pos)[purity > 0.8].float().mean() > 0.7


def test_leak_one_is_the_plain_sum_and_determinism() -> None:
    g = torch.Generator().manual_seed(1)
    jac = torch.randn(3, 50, generator=g)
    torch.testing.assert_close(graddrop_direction(jac, torch.rand(50, generator=g), leak=1.0), jac.sum(0))
    rng_before = torch.random.get_rng_state()
    p, q = GradDrop(), GradDrop()
    p.reset(["a", "b", "c"], seed=5)
    q.reset(["a", "b", "c"], seed=5)
    obs = {"losses": torch.ones(3), "jacobian": jac}
    assert torch.equal(p.act(obs).direction, q.act(obs).direction)
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    with pytest.raises(ValueError, match="leak"):
        GradDrop(leak=1.5)

from __future__ import annotations

import torch

from mtlbench import policies
from mtlbench.policies.base import GradientWeights

TASKS = ["a", "b", "c", "d"]


def test_random_gradient_weights_on_the_representation() -> None:
    p = policies.make("rgw")
    assert p.level == "gradient" and p.wrt == "representation" and p.needs == frozenset({"losses"})
    rng_before = torch.random.get_rng_state()
    p.reset(TASKS, seed=3)
    actions = [p.act({"losses": torch.ones(4)}) for _ in range(2000)]
    assert all(isinstance(a, GradientWeights) and a.head_weights is None for a in actions)
    w = torch.stack([a.weights for a in actions])
    assert torch.isfinite(w).all() and (w > 0).all()
    torch.testing.assert_close(w.sum(1), torch.full((2000,), 4.0))
    assert (w.mean(0) - 1).abs().max() < 0.05  # expected scale of EW
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    q = policies.make("rgw")
    q.reset(TASKS, seed=3)
    assert torch.equal(q.act({"losses": torch.ones(4)}).weights, w[0])

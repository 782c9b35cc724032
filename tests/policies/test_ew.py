from __future__ import annotations

import torch

from mtlbench import policies
from mtlbench.policies.ew import EW


def test_ew_weights_are_one_per_task() -> None:
    p = policies.make("ew")
    assert isinstance(p, EW) and p.level == "loss" and p.needs == frozenset({"losses"})
    p.reset(["a", "b", "c"], seed=0)
    w = p.act({"losses": torch.tensor([0.1, 5.0, 2.0])})
    assert w.shape == (3,)
    assert torch.equal(w, torch.ones(3))
    assert float(w.sum()) == 3.0


def test_ew_follows_losses_dtype() -> None:
    p = EW()
    p.reset(["a", "b"], seed=0)
    w = p.act({"losses": torch.tensor([1.0, 2.0], dtype=torch.float64)})
    assert w.dtype == torch.float64

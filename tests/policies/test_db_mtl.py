from __future__ import annotations

import pytest
import torch

from mtlbench import policies
from mtlbench.policies.base import GradientDirection
from mtlbench.policies.db_mtl import DBMTL

TASKS = ["a", "b"]


def test_first_steps_golden_values() -> None:
    p = policies.make("db-mtl")
    assert p.needs == frozenset({"losses", "jacobian"}) and p.wrt == "parameters"
    p.reset(TASKS, seed=0)
    jac = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    losses = torch.tensor([0.5, 2.0])
    a = p.act({"losses": losses, "jacobian": jac})
    assert isinstance(a, GradientDirection)
    # buffer = 0.1 * J / L = [[0.6, 0.8], [0, 0.05]]; norms 1.0, 0.05; scale to the max norm 1
    buf = torch.tensor([[0.6, 0.8], [0.0, 0.05]])
    expected = buf[0] + (1.0 / 0.05) * buf[1]
    torch.testing.assert_close(a.direction, expected, rtol=1e-5, atol=1e-6)
    assert a.head_weights is not None
    torch.testing.assert_close(a.head_weights, 1 / losses)
    # second step: EMA with beta 0.9
    b = p.act({"losses": losses, "jacobian": jac})
    buf = 0.9 * buf + 0.1 * jac / losses.unsqueeze(1)
    n = buf.norm(dim=1)
    torch.testing.assert_close(b.direction, (n.max() / n) @ buf, rtol=1e-5, atol=1e-6)


def test_beta_sigma_decay_and_reset() -> None:
    p = DBMTL(beta=0.5, beta_sigma=1.0)
    p.reset(TASKS, seed=0)
    jac = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    obs = {"losses": torch.ones(2), "jacobian": jac}
    p.act(obs)  # beta_1 = 0.5 -> buffer 0.5 J
    p.act(obs)  # beta_2 = 0.25 -> buffer 0.25 * 0.5 J + 0.75 J
    assert p.buffer is not None
    torch.testing.assert_close(p.buffer, 0.875 * jac)
    p.reset(TASKS, seed=0)
    assert p.buffer is None and p.step == 0
    with pytest.raises(ValueError, match="beta"):
        DBMTL(beta=1.0)

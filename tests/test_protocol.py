"""One action validator: the runtime and ``mtlbench check`` accept and reject the same actions.

Issue 14 item 10: the env accepted Python lists, int64 weights and a bare tensor at gradient
level, all of which the checker rejected.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mtlbench.harness.checker import check_policy
from mtlbench.harness.train import env_kwargs_for, train
from mtlbench.policies.base import Observation, Policy
from mtlbench.protocol import (
    ActionError,
    GradientDirection,
    GradientWeights,
    action_parts,
    action_problem,
    values_bad,
)
from tests.conftest import tiny_env


def _loss_policy(name: str, make: Any) -> type[Policy]:
    class _P(Policy):
        level = "loss"
        needs = frozenset({"losses"})

        def act(self, observation: Observation) -> Any:
            return make(self.num_tasks)

    _P.name = name
    return _P


def _gradient_policy(name: str, make: Any) -> type[Policy]:
    class _P(Policy):
        level = "gradient"
        needs = frozenset({"losses", "gramian"})
        wrt = "parameters"

        def act(self, observation: Observation) -> Any:
            return make(self.num_tasks)

    _P.name = name
    return _P


BAD = [
    (_loss_policy("python-list", lambda t: [1.0] * t), "must be a torch.Tensor, got list"),
    (_loss_policy("int64", lambda t: torch.ones(t, dtype=torch.int64)), "floating-point tensor"),
    (_gradient_policy("bare-tensor", lambda t: torch.ones(t)), "GradientWeights or GradientDirection"),
    (_loss_policy("wrong-shape", lambda t: torch.ones(t + 1)), r"must have shape"),
    (_loss_policy("negative", lambda t: -torch.ones(t)), "must be non-negative"),
    (
        _gradient_policy("int-grad", lambda t: GradientWeights(torch.ones(t, dtype=torch.int32))),
        "floating-point tensor",
    ),
]


@pytest.mark.parametrize(("cls", "message"), BAD, ids=[c.name for c, _ in BAD])
def test_runtime_and_checker_reject_the_same_actions(cls: type[Policy], message: str) -> None:
    report = check_policy(cls)
    failed = {r.check: r.message for r in report.failures}
    assert "actions" in failed and message in failed["actions"], report.render()

    policy = cls()
    result = train(tiny_env(**env_kwargs_for(policy)), policy, seed=0)
    assert result.status == "invalid_action", (result.status, result.message)
    assert message in (result.message or "") and f"policy {cls.name!r}" in (result.message or "")


def test_valid_actions_pass_both() -> None:
    ok = _loss_policy("float64", lambda t: torch.ones(t, dtype=torch.float64))
    assert check_policy(ok).ok
    result = train(tiny_env(), ok(), seed=0)
    assert result.status == "ok", result.message


def test_action_parts_structure() -> None:
    assert [p.what for p in action_parts(torch.ones(3), 3)] == ["the loss weights"]
    parts = action_parts(GradientWeights(torch.ones(3), head_weights=torch.ones(3)), 3, level="gradient")
    assert [(p.what, p.non_negative) for p in parts] == [
        ("GradientWeights.weights", False),
        ("head_weights", True),
    ]
    assert action_parts(np.ones(3, dtype=np.float32), 3)[0].tensor.dtype == torch.float32
    with pytest.raises(ActionError, match="NumPy array of dtype int64"):
        action_parts(np.ones(3, dtype=np.int64), 3)
    with pytest.raises(ActionError, match=r"must have shape \(5,\)"):
        action_parts(GradientDirection(torch.ones(4)), 3, dim=5)
    with pytest.raises(ActionError, match="1-d"):
        action_parts(GradientDirection(torch.ones(2, 2)), 3)
    with pytest.raises(ActionError, match="loss-level policy"):
        action_parts(GradientWeights(torch.ones(3)), 3, level="loss")


def test_values_bad_is_a_device_flag_and_values_problem_names_the_entry() -> None:
    good = action_parts(torch.tensor([1.0, 0.0]), 2)
    assert not bool(values_bad(good))
    assert bool(values_bad(action_parts(torch.tensor([1.0, -1.0]), 2)))
    # gradient weights may be negative; head weights may not
    assert not bool(values_bad(action_parts(GradientWeights(torch.tensor([1.0, -1.0])), 2)))
    bad_head = GradientWeights(torch.ones(2), head_weights=torch.tensor([1.0, -0.5]))
    assert bool(values_bad(action_parts(bad_head, 2)))
    assert action_problem(bad_head, "gradient", 2) == "head_weights must be non-negative, got [1.0, -0.5]"
    assert action_problem(torch.tensor([1.0, float("nan")]), "loss", 2) == (
        "the loss weights must be finite, got [1.0, nan]"
    )


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_env_and_checker_take_the_contract_from_protocol_not_policies() -> None:
    root = Path(__file__).resolve().parents[1] / "mtlbench"
    env_imports = _imports(root / "env.py")
    assert not any(m == "mtlbench.policies" or m.startswith("mtlbench.policies.") for m in env_imports)
    assert "mtlbench.protocol" in env_imports
    assert "mtlbench.protocol" in _imports(root / "harness" / "checker.py")
    assert "mtlbench.protocol" in _imports(root / "policies" / "base.py")

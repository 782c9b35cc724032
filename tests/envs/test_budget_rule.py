"""benchmarks/budget_rule.py: the rule's selection and gap on hand-made evaluation curves."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from mtlbench.harness.results import Evaluation

HIB = {"a": {"acc": True}, "b": {"mae": False}}


def _rule() -> ModuleType:
    path = Path(__file__).parents[2] / "benchmarks" / "budget_rule.py"
    spec = importlib.util.spec_from_file_location("budget_rule", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ev(epoch: int, acc: float, mae: float, score: float) -> Evaluation:
    val = {"a": {"acc": acc}, "b": {"mae": mae}}
    return Evaluation(epoch=epoch, step=epoch * 10, val=val, test=val, val_score=score)


def test_selection_is_the_harness_rule_within_the_window() -> None:
    rule = _rule()
    evs = [_ev(1, 50, 2.0, 0.0), _ev(2, 60, 1.5, 5.0), _ev(3, 60, 1.5, 5.0), _ev(4, 70, 1.0, 9.0)]
    assert rule.selected(evs, 1).epoch == 1
    assert rule.selected(evs, 3).epoch == 2  # best score, earliest on ties
    assert rule.selected(evs, 4).epoch == 4


def test_gap_is_delta_p_of_the_short_selection_against_the_long_one() -> None:
    rule = _rule()
    # epochs 1..2 select epoch 2 (acc 60, mae 1.5); epochs 1..6 select epoch 5 (acc 66, mae 1.2)
    evs = [_ev(1, 50, 2.0, 0.0), _ev(2, 60, 1.5, 5.0), _ev(3, 55, 1.8, 1.0)]
    evs += [_ev(4, 58, 1.6, 2.0), _ev(5, 66, 1.2, 8.0), _ev(6, 64, 1.3, 7.0)]
    # delta_p = mean over tasks of the relative change: acc (60 - 66) / 66, mae -(1.5 - 1.2) / 1.2
    expected = 100 * ((60 - 66) / 66 + -(1.5 - 1.2) / 1.2) / 2
    assert rule.gap(evs, 2, 3, HIB) == pytest.approx(expected)
    # a budget whose selection stays the best through 3x has gap 0
    flat = [*evs[:2], *(_ev(e, 59, 1.6, 4.0) for e in range(3, 7))]
    assert rule.gap(flat, 2, 3, HIB) == pytest.approx(0.0)
    assert rule.gap(evs, 2, 3, HIB) < -1.0  # fails the 1% tolerance


def test_script_refuses_one_seed_and_an_existing_json(tmp_path: Path) -> None:
    rule = _rule()
    with pytest.raises(SystemExit):
        rule.main(["--seeds", "0"])
    existing = tmp_path / "out.json"
    existing.write_text("{}")
    with pytest.raises(SystemExit):
        rule.main(["--seeds", "0,1", "--json", str(existing)])
    assert existing.read_text() == "{}"

"""Issue 14, item 12: model selection accepts every legal metric value, 0 included."""

from __future__ import annotations

import pytest

import mtlbench
from mtlbench.evaluation import delta_p
from tests.conftest import ConstantLoss, tiny_env


def test_selection_score_equals_delta_p_without_a_zero_baseline() -> None:
    env = tiny_env()
    env.reset(seed=0)
    first = {"left": {"acc": 0.4}, "right": {"acc": 0.5}}
    later = {"left": {"acc": 0.46}, "right": {"acc": 0.45}}
    assert env.selection_score(first) == 0.0
    assert env.selection_score(later) == delta_p(later, first, env.bench_spec.higher_is_better)


def test_a_zero_first_metric_scores_its_absolute_change() -> None:
    env = tiny_env()
    env.reset(seed=0)
    assert env.selection_score({"left": {"acc": 0.0}, "right": {"acc": 0.5}}) == 0.0
    # left: 0 -> 0.3 is an absolute change of +0.3; right: 0.5 -> 0.25 is -50 %; mean over tasks
    score = env.selection_score({"left": {"acc": 0.3}, "right": {"acc": 0.25}})
    assert score == pytest.approx(100 * (0.3 + (-0.5)) / 2)
    # better values still score higher, so selection prefers them
    assert env.selection_score({"left": {"acc": 0.4}, "right": {"acc": 0.25}}) > score


def test_a_run_whose_first_validation_metric_is_0_ends_ok() -> None:
    env = tiny_env()
    real = env.evaluate
    calls = {"val": 0}

    def evaluate(split: str = "val") -> dict[str, dict[str, float]]:
        metrics = real(split)
        if split == "val":
            calls["val"] += 1
            if calls["val"] == 1:
                metrics["left"]["acc"] = 0.0  # e.g. a classifier that predicts one wrong class
        return metrics

    env.evaluate = evaluate  # type: ignore[method-assign]
    result = mtlbench.train(env, ConstantLoss(), seed=0)
    assert result.status == "ok", result.message
    assert calls["val"] == 2 and result.evaluations[0].val["left"]["acc"] == 0.0
    assert result.selected is not None

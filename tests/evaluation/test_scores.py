"""delta_p and delta_m against hand-computed values."""

from __future__ import annotations

import pytest

from mtlbench.evaluation import delta_m, delta_p

# Task "a" has one metric, task "b" two (one lower-is-better, one higher-is-better).
HIGHER = {"a": {"acc": True}, "b": {"err": False, "score": True}}
BASE = {"a": {"acc": 50.0}, "b": {"err": 2.0, "score": 10.0}}


def test_delta_p_means_over_metrics_then_tasks() -> None:
    run = {"a": {"acc": 55.0}, "b": {"err": 1.5, "score": 8.0}}
    # relative improvements: a/acc +(55-50)/50 = +0.10; b/err -(1.5-2)/2 = +0.25;
    # b/score +(8-10)/10 = -0.20
    # delta_p = 100 * (0.10 + (0.25 - 0.20) / 2) / 2 = 6.25
    # (a flat mean over the three metrics would give 100 * 0.15 / 3 = 5.0)
    assert delta_p(run, BASE, HIGHER) == pytest.approx(6.25)


def test_delta_p_sign_convention() -> None:
    assert delta_p(BASE, BASE, HIGHER) == 0.0
    # a larger error is worse: -(3 - 2)/2 = -0.5 on b/err -> 100 * (0 + (-0.5 + 0) / 2) / 2
    worse = {"a": {"acc": 50.0}, "b": {"err": 3.0, "score": 10.0}}
    assert delta_p(worse, BASE, HIGHER) == pytest.approx(-12.5)
    # a higher accuracy is better: +(60 - 50)/50 = +0.2 on a/acc -> 100 * 0.2 / 2
    better = {"a": {"acc": 60.0}, "b": {"err": 2.0, "score": 10.0}}
    assert delta_p(better, BASE, HIGHER) == pytest.approx(10.0)


def test_delta_m_is_a_flat_mean_lower_is_better() -> None:
    run = {"a": {"acc": 45.0}, "b": {"err": 3.0, "score": 12.0}}
    # -s (M - S)/S: a/acc -(45-50)/50 = +0.10; b/err +(3-2)/2 = +0.50; b/score -(12-10)/10 = -0.20
    # delta_m = 100 * (0.10 + 0.50 - 0.20) / 3 = 40/3
    assert delta_m(run, BASE, HIGHER) == pytest.approx(40 / 3)
    assert delta_m(BASE, BASE, HIGHER) == 0.0


def test_missing_task_or_metric_is_named() -> None:
    with pytest.raises(ValueError, match=r"baseline: tasks differ.*missing \['b'\]"):
        delta_p(BASE, {"a": {"acc": 50.0}}, HIGHER)
    with pytest.raises(ValueError, match=r"metrics: task 'b' metrics differ.*missing \['score'\]"):
        delta_p({"a": {"acc": 50.0}, "b": {"err": 2.0}}, BASE, HIGHER)
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        delta_m({"a": {"acc": 50.0, "extra": 1.0}, "b": BASE["b"]}, BASE, HIGHER)


def test_zero_reference_is_named() -> None:
    zero = {"a": {"acc": 50.0}, "b": {"err": 0.0, "score": 10.0}}
    with pytest.raises(ValueError, match=r"baseline: b/err is 0\.0"):
        delta_p(BASE, zero, HIGHER)
    with pytest.raises(ValueError, match="reference: b/err"):
        delta_m(BASE, zero, HIGHER)

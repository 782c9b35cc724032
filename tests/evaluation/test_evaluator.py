"""The Evaluator: per-task dispatch, accumulation over batches, reset, errors."""

from __future__ import annotations

import pytest
import torch

from mtlbench import evaluation
from mtlbench.evaluation import EVALUATOR_VERSION, Evaluator, build_metric, delta_p


def make_evaluator() -> Evaluator:
    return Evaluator({"digit": build_metric("accuracy"), "size": build_metric("mae", scale=2.0)})


OUTPUTS = {"digit": torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), "size": torch.tensor([1.0, 2.0, 4.0])}
TARGETS = {"digit": torch.tensor([0, 0, 0]), "size": torch.tensor([1.5, 2.0, 1.0])}


def batch(lo: int, hi: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    return {k: v[lo:hi] for k, v in OUTPUTS.items()}, {k: v[lo:hi] for k, v in TARGETS.items()}


def test_evaluator_accumulates_each_task_over_uneven_batches() -> None:
    ev = make_evaluator()
    ev.update(*batch(0, 1))
    ev.update(*batch(1, 3))
    # digit: argmax [0, 1, 0] vs [0, 0, 0] -> 2/3; size: |diff| 0.5, 0, 3 -> 3.5/3 * 2 = 7/3
    assert ev.compute() == {"digit": {"acc": pytest.approx(200 / 3)}, "size": {"mae": pytest.approx(7 / 3)}}
    assert ev.higher_is_better == {"digit": {"acc": True}, "size": {"mae": False}}
    assert ev.task_names == ("digit", "size")


def test_reset_forgets_previous_split() -> None:
    ev = make_evaluator()
    ev.update(*batch(0, 3))
    ev.reset()
    ev.update(*batch(0, 1))
    # digit: 1/1; size: |1 - 1.5| * 2 = 1
    assert ev.compute() == {"digit": {"acc": 100.0}, "size": {"mae": pytest.approx(1.0)}}


def test_missing_task_is_named() -> None:
    ev = make_evaluator()
    outputs, targets = batch(0, 3)
    del targets["size"]
    with pytest.raises(ValueError, match=r"targets lack tasks \['size'\]"):
        ev.update(outputs, targets)
    with pytest.raises(TypeError, match="not a TaskMetric"):
        Evaluator({"digit": object()})  # type: ignore[dict-item]


def test_results_feed_delta_p() -> None:
    ev = make_evaluator()
    ev.update(*batch(0, 3))
    metrics = ev.compute()
    assert delta_p(metrics, metrics, ev.higher_is_better) == 0.0


def test_public_api() -> None:
    assert EVALUATOR_VERSION == "1"
    assert set(evaluation.__all__) == {
        "EVALUATOR_VERSION",
        "METRICS",
        "Evaluator",
        "TaskMetric",
        "build_metric",
        "delta_m",
        "delta_p",
    }

"""Task specs several env families share."""

from __future__ import annotations

from mtlbench.registration import MetricSpec, TaskSpec

__all__ = ["classification_task"]


def classification_task(name: str) -> TaskSpec:
    """A classification task: cross-entropy loss, accuracy (percent, higher is better)."""
    return TaskSpec(
        name=name,
        type="classification",
        loss="cross_entropy",
        metric="accuracy",
        metrics=(MetricSpec("acc", higher_is_better=True),),
    )

"""The frozen evaluator: one metric accumulator per task, run over a whole split.

:class:`Evaluator` is what ``MTLEnv.evaluate(split)`` feeds, batch by batch, with the model's
outputs and the targets (both ``{task: tensor}``), and reads once at the end of the split as
``{task: {metric: value}}``. Accumulation stays on the device; :meth:`Evaluator.compute`
is the only host synchronisation (docs/design.md, "Performance principles").

``EVALUATOR_VERSION`` is part of every ``BenchmarkSpec`` and of every result file. Bump it
whenever the definition of any metric changes (what counts as a valid pixel, how a median
or an F1 is computed, a unit): results computed under different versions are never mixed
in one comparison or leaderboard, and an env refuses to run under an evaluator whose
version differs from the one it was registered with.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from mtlbench.evaluation.metrics import TaskMetric

__all__ = ["EVALUATOR_VERSION", "Evaluator"]

#: Version of the metric definitions in :mod:`mtlbench.evaluation.metrics`.
EVALUATOR_VERSION = "1"


class Evaluator:
    """Evaluates every task of an env with its own :class:`TaskMetric`."""

    def __init__(self, task_metrics: Mapping[str, TaskMetric]) -> None:
        if not task_metrics:
            raise ValueError("Evaluator needs at least one task metric")
        for task, metric in task_metrics.items():
            if not isinstance(metric, TaskMetric):
                raise TypeError(
                    f"Evaluator: the metric of task {task!r} is a {type(metric).__name__}, not a TaskMetric"
                )
        self.task_metrics: dict[str, TaskMetric] = dict(task_metrics)

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(self.task_metrics)

    @property
    def higher_is_better(self) -> dict[str, dict[str, bool]]:
        """``{task: {metric: bool}}``, in the order the metrics are reported."""
        return {
            task: {name: metric.higher_is_better[name] for name in metric.names}
            for task, metric in self.task_metrics.items()
        }

    def reset(self) -> None:
        for metric in self.task_metrics.values():
            metric.reset()

    def update(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> None:
        """Accumulate one batch; ``outputs`` and ``targets`` map every task to a tensor."""
        for side, values in (("outputs", outputs), ("targets", targets)):
            missing = [t for t in self.task_metrics if t not in values]
            if missing:
                raise ValueError(
                    f"Evaluator.update: {side} lack tasks {missing}; expected {list(self.task_metrics)}"
                )
        for task, metric in self.task_metrics.items():
            if targets[task].shape[0] == 0:
                # multi-input envs: a task whose split is exhausted gets empty sub-batches
                continue
            metric.update(outputs[task], targets[task])

    def compute(self) -> dict[str, dict[str, float]]:
        """``{task: {metric: value}}`` over everything seen since the last reset."""
        return {task: metric.compute() for task, metric in self.task_metrics.items()}

    def __repr__(self) -> str:
        inner = ", ".join(f"{task!r}: {metric!r}" for task, metric in self.task_metrics.items())
        return f"Evaluator({{{inner}}})"

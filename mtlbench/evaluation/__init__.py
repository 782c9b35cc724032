"""The frozen evaluation protocol: per-task metrics, delta_p / delta_m and the evaluator.

See docs/design.md, "The evaluation protocol", and the docstrings of
:mod:`mtlbench.evaluation.metrics` (metric definitions and units),
:mod:`mtlbench.evaluation.scores` (delta_p, delta_m) and
:mod:`mtlbench.evaluation.evaluator` (``EVALUATOR_VERSION``).
"""

from __future__ import annotations

from mtlbench.evaluation.evaluator import EVALUATOR_VERSION, Evaluator
from mtlbench.evaluation.metrics import METRICS, TaskMetric, build_metric
from mtlbench.evaluation.scores import delta_m, delta_p

__all__ = [
    "EVALUATOR_VERSION",
    "METRICS",
    "Evaluator",
    "TaskMetric",
    "build_metric",
    "delta_m",
    "delta_p",
]

"""The model-selection score: validation delta_p against a run-local baseline (LibMTL's convention)."""

from __future__ import annotations

from collections.abc import Mapping

from mtlbench.evaluation import delta_p

__all__ = ["selection_score"]


def selection_score(
    val_metrics: Mapping[str, Mapping[str, float]],
    baseline: Mapping[str, Mapping[str, float]],
    higher_is_better: Mapping[str, Mapping[str, bool]],
) -> float:
    """Validation delta_p of ``val_metrics`` against ``baseline``, defined where a baseline value is 0.

    The rule, per metric ``m`` with baseline value ``b`` and current value ``v``: the change
    is ``s (v - b) / b`` (``s`` = +1 when higher is better, else -1), as in delta_p;
    where ``b`` is 0 (a legal value, e.g. an accuracy of 0 at the first evaluation) it is
    the absolute change ``s (v - b)``, i.e. ``b`` is replaced by 1 in the denominator
    (percentage points for metrics in [0, 1]). The score is 100 x the mean over tasks of
    each task's mean change. Without a zero baseline value it equals
    :func:`~mtlbench.evaluation.delta_p` exactly.
    """
    hib = higher_is_better
    if all(float(v) != 0 for task in hib for v in (baseline[task][m] for m in hib[task])):
        return delta_p(val_metrics, baseline, hib)
    # same order of summation as delta_p (sorted tasks, sorted metric names)
    per_task = []
    for task in sorted(hib):
        changes = []
        for name in sorted(hib[task]):
            ref = float(baseline[task][name])
            sign = 1.0 if hib[task][name] else -1.0
            changes.append(sign * (float(val_metrics[task][name]) - ref) / (ref if ref != 0 else 1.0))
        per_task.append(sum(changes) / len(changes))
    return 100.0 * sum(per_task) / len(per_task)

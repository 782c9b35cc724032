"""Scalar scores that compare a run's metrics with a reference: delta_p and delta_m.

Both take nested mappings ``{task: {metric: value}}`` and ``higher_is_better`` of the same
shape (``BenchmarkSpec.higher_is_better``), with ``s = +1`` where higher is better and ``-1``
where lower is better. All three mappings must name exactly the same tasks and metrics.

* :func:`delta_p` (Lin et al. 2022, "Reasonable Effectiveness of Random Weighting", Sec. 5,
  following Maninis et al. 2019 and Vandenhende et al. 2021), in percent, **higher is
  better**, relative to a baseline ``B`` (EW on the same env version and seed)::

      delta_p = 100 / T * sum_t 1/N_t * sum_i s_ti (M_ti - B_ti) / B_ti

  a mean over each task's metrics, then a mean over tasks, so a task with many metrics
  (NYUv2 normals: 5) weighs as much as a task with one.

* :func:`delta_m` (Maninis et al. 2019, as used by Nash-MTL, Navon et al. 2022, and later
  papers), in percent, **lower is better**, relative to single-task references ``S``::

      delta_m = 100 / K * sum_k -s_k (M_k - S_k) / S_k

  a flat mean over all ``K`` metrics of all tasks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["delta_m", "delta_p"]

Metrics = Mapping[str, Mapping[str, float]]


def _relative_changes(
    metrics: Metrics, reference: Metrics, higher_is_better: Mapping[str, Mapping[str, bool]], ref_name: str
) -> dict[str, list[float]]:
    """``{task: [s (M - R) / R for each metric]}``, after checking that the keys agree."""
    sides = {"metrics": metrics, ref_name: reference, "higher_is_better": higher_is_better}
    tasks = set(higher_is_better)
    for side, values in sides.items():
        missing, extra = tasks - set(values), set(values) - tasks
        if missing or extra:
            raise ValueError(
                f"{side}: tasks differ from higher_is_better's {sorted(tasks)}: "
                f"missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
    changes: dict[str, list[float]] = {}
    for task in sorted(higher_is_better):
        names = set(higher_is_better[task])
        if not names:
            raise ValueError(f"higher_is_better: task {task!r} has no metric")
        for side, values in sides.items():
            missing, extra = names - set(values[task]), set(values[task]) - names
            if missing or extra:
                raise ValueError(
                    f"{side}: task {task!r} metrics differ from {sorted(names)}: "
                    f"missing {sorted(missing)}, unexpected {sorted(extra)}"
                )
        changes[task] = []
        for name in sorted(names):
            ref = float(reference[task][name])
            if ref == 0 or not math.isfinite(ref):
                raise ValueError(
                    f"{ref_name}: {task}/{name} is {ref!r}; a relative change needs a finite, "
                    "non-zero reference value"
                )
            sign = 1.0 if higher_is_better[task][name] else -1.0
            changes[task].append(sign * (float(metrics[task][name]) - ref) / ref)
    return changes


def delta_p(metrics: Metrics, baseline: Metrics, higher_is_better: Mapping[str, Mapping[str, bool]]) -> float:
    """Mean relative improvement over ``baseline`` in percent (higher is better).

    A mean over each task's metrics, then over tasks (Lin et al. 2022). A non-finite metric
    value gives a non-finite result; a zero or non-finite baseline value raises ``ValueError``.
    """
    changes = _relative_changes(metrics, baseline, higher_is_better, "baseline")
    return 100.0 * sum(sum(c) / len(c) for c in changes.values()) / len(changes)


def delta_m(
    metrics: Metrics, reference: Metrics, higher_is_better: Mapping[str, Mapping[str, bool]]
) -> float:
    """Mean relative degradation from the single-task ``reference`` in percent (lower is better).

    A flat mean over all metrics of all tasks (Maninis et al. 2019; Navon et al. 2022).
    """
    changes = _relative_changes(metrics, reference, higher_is_better, "reference")
    flat = [c for task in changes.values() for c in task]
    return -100.0 * sum(flat) / len(flat)

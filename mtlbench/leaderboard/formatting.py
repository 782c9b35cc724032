"""Cell formatting shared by the Markdown and HTML renderers: fixed rules for numbers,
intervals and verdicts, so the same leaderboard always gives the same text.
"""

from __future__ import annotations

import math

from mtlbench.leaderboard import stats
from mtlbench.leaderboard.model import GroupBoard, Leaderboard, MethodRow

__all__ = [
    "DASH",
    "DOCS",
    "MAIN_HEADERS",
    "VERDICT_ORDER",
    "arrow",
    "group_notes",
    "interval",
    "litmus_parts",
    "main_row",
    "metric_headers",
    "metric_pm",
    "ms",
    "num",
    "params",
    "pm",
    "seeds",
    "sig",
    "verdict_counts",
]

DASH = "—"
VERDICT_ORDER = ("pass", "inconclusive", "fail", "insufficient seeds")
DOCS = "docs/leaderboard.md"


def num(x: float | None, digits: int = 2, *, sign: bool = True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    if math.isinf(x):
        return "−∞" if x < 0 else "+∞"
    x = round(x, digits) + 0.0  # no "-0.00"
    text = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return text.replace("-", "−")


def pm(mean_std: tuple[float, float] | None, digits: int = 2, *, sign: bool = True) -> str:
    if mean_std is None:
        return DASH
    mean, std = mean_std
    if math.isnan(mean):
        return DASH
    if math.isnan(std):
        return num(mean, digits, sign=sign)
    return f"{num(mean, digits, sign=sign)} ± {num(std, digits, sign=False)}"


def sig(x: float, digits: int = 4) -> str:
    if math.isnan(x):
        return DASH
    return f"{x:.{digits}g}".replace("-", "−")


def metric_pm(mean_std: tuple[float, float]) -> str:
    mean, std = mean_std
    if math.isnan(mean):
        return DASH
    return sig(mean) if math.isnan(std) else f"{sig(mean)} ± {sig(std, 2)}"


def interval(ci: stats.Interval | None) -> str:
    return DASH if ci is None else f"[{num(ci.low)}, {num(ci.high)}]"


def ms(seconds: float) -> str:
    return DASH if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def arrow(higher_is_better: bool) -> str:
    return "↑" if higher_is_better else "↓"


def seeds(row: MethodRow) -> str:
    return f"{row.n_ok}/{row.n_runs}"


def verdict_counts(counts: dict[str, int]) -> str:
    return " / ".join(str(counts.get(v, 0)) for v in VERDICT_ORDER)


def litmus_parts(row: MethodRow) -> tuple[str, str, str, str]:
    """(reference, mean paired diff, CI, verdict) as text."""
    if row.litmus is None:
        return (DASH, DASH, DASH, row.litmus_note or DASH)
    lit = row.litmus
    return (lit.reference, num(lit.mean_diff), interval(lit.ci), lit.verdict)


def params(lb: Leaderboard) -> list[tuple[str, str]]:
    used = lb.n_files - len(lb.exclusions)
    return [
        ("mtlbench version", lb.mtlbench_version),
        ("result files", f"{lb.n_files} read, {used} used, {len(lb.exclusions)} excluded"),
        (
            "bootstrap",
            f"percentile, {stats.CI_LEVEL:.0%} intervals, n_boot = {lb.n_boot}, "
            f"seed = {lb.seed} (numpy.random.default_rng)",
        ),
        ("registry check", lb.registry_check),
        ("groups", "; ".join(g.key.label for g in lb.groups) or DASH),
    ]


MAIN_HEADERS = [
    "rank",
    "method",
    "level",
    "seeds ok",
    "Δp vs EW (%)",
    "litmus ref",
    "Δp − ref (%)",
    "95% CI",
    "verdict",
    "Δm vs STL (%)",
    "ms / step",
]


def main_row(row: MethodRow) -> list[str]:
    ref, diff, ci, verdict = litmus_parts(row)
    return [
        DASH if row.rank is None else f"{row.rank:g}",
        row.key,
        row.level,
        seeds(row),
        pm(row.delta_p),
        ref,
        diff,
        ci,
        verdict,
        pm(row.delta_m),
        ms(row.time_per_step_s),
    ]


def metric_headers(group: GroupBoard) -> list[str]:
    return [f"{t}/{m} {arrow(group.higher_is_better[t][m])}" for t, m in group.metric_names]


def group_notes(group: GroupBoard) -> list[str]:
    lines: list[str] = []
    for row in group.rows:
        lines.extend(f"{row.key}, {f}" for f in row.failures)
    for row in group.rows:
        if row.litmus is not None and row.litmus_note:
            lines.append(f"{row.key}: {row.litmus_note}")
    lines.extend(group.notes)
    return lines

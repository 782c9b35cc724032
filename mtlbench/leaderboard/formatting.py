"""Cell formatting shared by the Markdown and HTML renderers: fixed rules for numbers,
intervals and verdicts, so the same leaderboard always gives the same text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mtlbench.leaderboard import stats
from mtlbench.leaderboard.model import AggregateRow, GroupBoard, Leaderboard, MethodRow

__all__ = [
    "DASH",
    "DOCS",
    "ROLES",
    "VERDICT_ORDER",
    "VerdictCell",
    "arrow",
    "group_notes",
    "interval",
    "interval_label",
    "interval_n",
    "litmus_parts",
    "main_headers",
    "main_row",
    "metric_headers",
    "metric_pm",
    "ms",
    "num",
    "params",
    "passes",
    "pm",
    "role",
    "seeds",
    "short_authors",
    "sig",
    "verdict_cell",
    "verdict_counts",
    "verdict_matrix",
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


def interval_label(ci: stats.Interval | None = None, *, stratified: bool = False) -> str:
    """How an interval was computed, e.g. ``"95% bootstrap-t"`` (docs/leaderboard.md).

    With ``ci``, its own method and level (and the number of envs it pools); without, the
    method the leaderboard uses: bootstrap-t for litmus intervals, the stratified percentile
    bootstrap for the IQM across envs (``stratified=True``).
    """
    if ci is not None:
        envs = f", {ci.strata} envs" if ci.strata > 1 else ""
        return f"{ci.level:.0%} {ci.method}{envs}"
    kind = stats.STRATIFIED_PERCENTILE if stratified else stats.BOOTSTRAP_T
    return f"{stats.CI_LEVEL:.0%} {kind}"


def interval_n(ci: stats.Interval | None, n: int) -> str:
    """An interval with the number of values it rests on: ``"[+0.95, +2.69], n = 3"``."""
    return f"{interval(ci)}, n = {n}"


def ms(seconds: float) -> str:
    return DASH if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def arrow(higher_is_better: bool) -> str:
    return "↑" if higher_is_better else "↓"


def seeds(row: MethodRow) -> str:
    return f"{row.n_ok}/{row.n_runs}"


def verdict_counts(counts: dict[str, int]) -> str:
    return " / ".join(str(counts.get(v, 0)) for v in VERDICT_ORDER)


ROLES = {"ew": "Δp baseline", "rlw": "loss-level reference", "rgw": "gradient-level reference"}


def role(name: str) -> str:
    """ "loss-level reference" for RLW, "gradient-level reference" for RGW, "Δp baseline" for EW."""
    return ROLES.get(name, "")


@dataclass(frozen=True)
class VerdictCell:
    """One method's litmus test on one env, as text."""

    method: str  # name@version
    env_id: str
    verdict: str  # a stats.Verdict, "reference", or why there is no test
    reference: str
    mean_diff: str
    interval: str
    n: int
    label: str  # how the interval was computed

    @property
    def tested(self) -> bool:
        return self.reference != ""

    @property
    def text(self) -> str:
        """``"+2.04 [+0.95, +2.69], n = 3"`` (the interval is "—" below two pairs)."""
        if not self.tested:
            return ""
        return f"{self.mean_diff} {self.interval}, n = {self.n}"

    @property
    def title(self) -> str:
        if not self.tested:
            return f"{self.method} on {self.env_id}: {self.verdict}"
        pairs = "paired seed" if self.n == 1 else "paired seeds"
        return (
            f"{self.method} on {self.env_id}: {self.verdict}. Mean paired Δp difference vs "
            f"{self.reference}: {self.mean_diff} points; {self.label} interval {self.interval}; "
            f"n = {self.n} {pairs}."
        )


def verdict_cell(row: MethodRow, env_id: str) -> VerdictCell:
    lit = row.litmus
    if lit is None:
        return VerdictCell(row.key, env_id, row.litmus_note or DASH, "", DASH, DASH, 0, "")
    return VerdictCell(
        row.key,
        env_id,
        lit.verdict,
        lit.reference,
        num(lit.mean_diff),
        interval(lit.ci),
        lit.n_pairs,
        interval_label(lit.ci),
    )


def verdict_matrix(lb: Leaderboard) -> list[tuple[AggregateRow, list[VerdictCell | None]]]:
    """One row per method (across-env order), one cell per env of the summary (None: no runs)."""
    rows_by_env = [
        {r.key: r for r in g.rows} for key in lb.aggregate_groups for g in lb.groups if g.key == key
    ]
    return [
        (
            agg,
            [
                verdict_cell(rows[agg.method], key.env_id) if agg.method in rows else None
                for key, rows in zip(lb.aggregate_groups, rows_by_env)
            ],
        )
        for agg in lb.aggregate
    ]


def passes(cells: list[VerdictCell | None]) -> str:
    """``"1 / 2"``: envs passed out of envs tested ("—" for a reference)."""
    tested = [c for c in cells if c is not None and c.tested]
    if not tested:
        return DASH
    return f"{sum(c.verdict == 'pass' for c in tested)} / {len(tested)}"


def short_authors(authors: tuple[str, ...]) -> str:
    """``"Lin et al."``, ``"Sener and Koltun"``, or the one author (last names)."""
    last = [a.split()[-1] if len(a.split()) > 1 and not a.islower() else a for a in authors]
    if len(last) > 2:
        return f"{last[0]} et al."
    return " and ".join(last)


def litmus_parts(row: MethodRow) -> tuple[str, str, str, str]:
    """(reference, mean paired diff, interval with n, verdict) as text."""
    if row.litmus is None:
        return (DASH, DASH, DASH, row.litmus_note or DASH)
    lit = row.litmus
    return (lit.reference, num(lit.mean_diff), interval_n(lit.ci, lit.n_pairs), lit.verdict)


def params(lb: Leaderboard) -> list[tuple[str, str]]:
    used = lb.n_files - len(lb.exclusions)
    return [
        ("mtlbench version", lb.mtlbench_version),
        ("result files", f"{lb.n_files} read, {used} used, {len(lb.exclusions)} excluded"),
        (
            "bootstrap",
            f"bootstrap-t (litmus, Δp) and stratified percentile (IQM), {stats.CI_LEVEL:.0%} intervals, "
            f"n_boot = {lb.n_boot}, "
            f"seed = {lb.seed} (numpy.random.default_rng)",
        ),
        ("registry check", lb.registry_check),
        ("groups", "; ".join(g.key.label for g in lb.groups) or DASH),
    ]


def main_headers(group: GroupBoard) -> list[str]:
    """The per-env table's columns; Δm only where the spec has single-task references."""
    return [
        "method",
        "rank",
        "verdict",
        "Δp − ref (%)",
        f"{interval_label()} interval, n",
        "reference",
        "Δp vs EW (%)",
        "seeds ok",
        "level",
        *(["Δm vs STL (%)"] if group.has_stl_reference else []),
        "ms / step",
    ]


def main_row(row: MethodRow, group: GroupBoard) -> list[str]:
    ref, diff, ci, verdict = litmus_parts(row)
    return [
        row.key,
        DASH if row.rank is None else f"{row.rank:g}",
        verdict,
        diff,
        ci,
        ref,
        pm(row.delta_p),
        seeds(row),
        row.level,
        *([pm(row.delta_m)] if group.has_stl_reference else []),
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

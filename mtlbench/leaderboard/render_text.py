"""Render a computed :class:`~mtlbench.leaderboard.model.Leaderboard` as Markdown and CSV.

Pure functions of the leaderboard returning bytes: no timestamps, no absolute paths,
numbers formatted with fixed rules (:mod:`mtlbench.leaderboard.formatting`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence

from tabulate import tabulate

from mtlbench.leaderboard import stats
from mtlbench.leaderboard.formatting import (
    DASH,
    DOCS,
    VerdictCell,
    group_notes,
    interval_label,
    interval_n,
    main_headers,
    main_row,
    metric_headers,
    metric_pm,
    num,
    params,
    passes,
    role,
    verdict_matrix,
)
from mtlbench.leaderboard.model import GroupBoard, Leaderboard, MethodRow

__all__ = ["csv_table", "markdown"]


# --------------------------------------------------------------------------- Markdown
def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    body = [[_md_cell(str(c)) for c in row] for row in rows]
    return str(
        tabulate(body, headers=[_md_cell(h) for h in headers], tablefmt="github", disable_numparse=True)
    )


def _md_method(key: str, lb: Leaderboard) -> str:
    """``[stch](paper)@1``: the name links to its paper when the submission names one."""
    name, _, version = key.rpartition("@")
    card = lb.methods.get(name)
    label = f"[{name}]({card.paper})" if card and card.paper else name
    tag = role(name)
    return f"{label}@{version}" + (f" ({tag})" if tag else "")


def _md_verdict(cell: VerdictCell | None) -> str:
    if cell is None:
        return DASH
    if not cell.tested:
        return cell.verdict
    return f"**{cell.verdict}** {cell.text}"


def _md_methods(lb: Leaderboard) -> list[str]:
    names = sorted({r.name for g in lb.groups for r in g.rows})
    rows = []
    for name in names:
        card = lb.methods.get(name)
        rows.append(
            [
                name,
                role(name) or DASH,
                ", ".join(card.authors) if card else DASH,
                f"<{card.paper}>" if card and card.paper else DASH,
                card.description if card and card.description else DASH,
            ]
        )
    return [
        "## Methods",
        "",
        "From each method's `submissions/<name>/submission.yaml`.",
        "",
        _md_table(["method", "role", "authors", "paper", "description"], rows),
        "",
    ]


def markdown(lb: Leaderboard) -> bytes:
    out: list[str] = [
        "# mtlbench leaderboard",
        "",
        "Generated from the stored result files by `mtlbench.leaderboard.build_leaderboard`; "
        "do not edit by hand. The same result files always give the same bytes.",
        "",
        "## Who beats random weighting?",
        "",
        "**The litmus test** (Lin et al., TMLR 2022): a loss-level method is compared with random "
        "loss weighting (`rlw`), a gradient-level one (and every `a+b` combination) with random "
        "gradient weighting (`rgw`), paired by seed. It **passes** when the "
        f"{interval_label()} interval of the mean paired Δp difference lies above 0, **fails** "
        "when it lies below 0, and is **inconclusive** otherwise; **insufficient seeds** below "
        f"{stats.MIN_PAIRED_SEEDS} paired seeds. A failed run of the method is a fail. Each cell: "
        "verdict, mean paired difference (Δp points), its interval, and n, the number of paired "
        "seeds. Δp is relative to EW of the same seed (percent, higher is better); Δm is relative "
        f"to single-task references (percent, lower is better). Exact rules: [{DOCS}](../{DOCS}).",
        "",
    ]
    if lb.aggregate:
        matrix = verdict_matrix(lb)
        out += [
            "Over: " + "; ".join(k.label for k in lb.aggregate_groups) + ". Across environments: "
            f"envs passed / tested, mean rank (lower is better), and the IQM of Δp with its "
            f"{interval_label(stratified=True)} interval and n, the number of (env, seed) scores.",
            "",
            _md_table(
                [
                    "method",
                    "level",
                    *(k.env_id for k in lb.aggregate_groups),
                    "passed",
                    "mean rank ↓",
                    "IQM Δp (%)",
                ],
                [
                    [
                        _md_method(a.method, lb),
                        a.level,
                        *(_md_verdict(c) for c in cells),
                        passes(cells),
                        DASH if math.isnan(a.mean_rank) else f"{a.mean_rank:.2f}",
                        f"{num(a.iqm)} {interval_n(a.iqm_ci, a.n_scores)}",
                    ]
                    for a, cells in matrix
                ],
            ),
            "",
        ]
    else:
        out += ["No usable results yet.", ""]
    out += ["## Parameters", "", _md_table(["parameter", "value"], params(lb)), ""]
    for group in lb.groups:
        out += [f"## {group.key.label}", ""]
        refs = ", ".join(r.key for r in group.rows if r.litmus_note == "reference")
        out += [
            f"Baseline for Δp: {group.baseline or 'none'}; litmus references: {refs or 'none'}; "
            f"{group.n_files} result files. Seeds ok counts usable runs out of all runs; n counts "
            "paired seeds.",
            "",
            _md_table(
                main_headers(group),
                [_main_md(r, group, lb) for r in group.rows],
            ),
            "",
            "Selected test metrics (at the best validation score), mean ± std over usable seeds:",
            "",
            _md_table(
                ["method", *metric_headers(group)],
                [[r.key, *(metric_pm(r.metrics[k]) for k in group.metric_names)] for r in group.rows],
            ),
            "",
        ]
        notes = group_notes(group)
        if notes:
            out += ["Failures and notes:", "", *(f"- {n}" for n in notes), ""]
    out += _md_methods(lb)
    out += ["## Exclusions", ""]
    if lb.exclusions:
        out += [
            "Result files that were not used, and why:",
            "",
            _md_table(["file", "reason"], [[f"`{e.path}`", e.reason] for e in lb.exclusions]),
            "",
        ]
    else:
        out += ["None.", ""]
    return ("\n".join(out).rstrip("\n") + "\n").encode()


def _main_md(row: MethodRow, group: GroupBoard, lb: Leaderboard) -> list[str]:
    cells = main_row(row, group)
    cells[0] = _md_method(row.key, lb)
    return cells


# -------------------------------------------------------------------------------- CSV
def _csv_float(x: float | None) -> str:
    """A float as Python's ``repr``; missing (``None`` or NaN) is the empty cell."""
    if x is None or math.isnan(x):
        return ""
    return repr(float(x))


def csv_table(lb: Leaderboard) -> bytes:
    metric_cols = sorted({f"{t}/{m}" for g in lb.groups for t, m in g.metric_names})
    headers = [
        "group",
        "env_id",
        "spec_hash",
        "evaluator_version",
        "method",
        "name",
        "version",
        "level",
        "rank",
        "env_score",
        "n_runs",
        "n_ok",
        "n_failed",
        "failures",
        "delta_p_mean",
        "delta_p_std",
        "delta_p_ci_low",
        "delta_p_ci_high",
        "delta_p_last_mean",
        "delta_m_mean",
        "delta_m_std",
        "litmus_reference",
        "litmus_n_pairs",
        "litmus_mean_diff",
        "litmus_ci_low",
        "litmus_ci_high",
        "litmus_verdict",
        "litmus_note",
        "time_per_step_s",
        "peak_memory_mb",
        *(f"test:{c}:{s}" for c in metric_cols for s in ("mean", "std")),
    ]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    for g in lb.groups:
        for r in g.rows:
            lit = r.litmus
            metric_values = {f"{t}/{m}": r.metrics[(t, m)] for t, m in g.metric_names}
            writer.writerow(
                [
                    g.key.label,
                    g.key.env_id,
                    g.key.spec_hash,
                    g.key.evaluator_version,
                    r.key,
                    r.name,
                    r.version,
                    r.level,
                    _csv_float(r.rank),
                    _csv_float(r.env_score),
                    r.n_runs,
                    r.n_ok,
                    r.n_failed,
                    "; ".join(r.failures),
                    _csv_float(r.delta_p[0]),
                    _csv_float(r.delta_p[1]),
                    _csv_float(r.delta_p_ci.low if r.delta_p_ci else None),
                    _csv_float(r.delta_p_ci.high if r.delta_p_ci else None),
                    _csv_float(r.delta_p_last),
                    _csv_float(r.delta_m[0] if r.delta_m else None),
                    _csv_float(r.delta_m[1] if r.delta_m else None),
                    lit.reference if lit else "",
                    lit.n_pairs if lit else "",
                    _csv_float(lit.mean_diff if lit else None),
                    _csv_float(lit.ci.low if lit and lit.ci else None),
                    _csv_float(lit.ci.high if lit and lit.ci else None),
                    lit.verdict if lit else "",
                    r.litmus_note,
                    _csv_float(r.time_per_step_s),
                    _csv_float(r.peak_memory_mb),
                    *(
                        _csv_float(metric_values[c][i]) if c in metric_values else ""
                        for c in metric_cols
                        for i in (0, 1)
                    ),
                ]
            )
    return buf.getvalue().encode()

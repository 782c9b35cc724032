"""Render a computed :class:`~mtlbench.leaderboard.build.Leaderboard` as Markdown, CSV and HTML.

Every writer returns bytes and is a pure function of the leaderboard, so the same results
give the same bytes: no timestamps, no absolute paths, numbers formatted with fixed rules,
and matplotlib figures drawn with the Agg canvas under matplotlib's default style and
saved as PNG without the ``Software`` metadata entry. The HTML page is self-contained
(inline CSS, plots as inline base64 PNG, no JavaScript).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from tabulate import tabulate

from mtlbench.leaderboard import stats

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mtlbench.leaderboard.build import GroupBoard, Leaderboard, MethodRow

__all__ = ["csv_table", "html_page", "markdown"]

DASH = "—"
VERDICT_ORDER = ("pass", "inconclusive", "fail", "insufficient seeds")
DOCS = "docs/leaderboard.md"


# ------------------------------------------------------------------------ formatting
def _num(x: float | None, digits: int = 2, *, sign: bool = True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    if math.isinf(x):
        return "−∞" if x < 0 else "+∞"
    x = round(x, digits) + 0.0  # no "-0.00"
    text = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return text.replace("-", "−")


def _pm(mean_std: tuple[float, float] | None, digits: int = 2, *, sign: bool = True) -> str:
    if mean_std is None:
        return DASH
    mean, std = mean_std
    if math.isnan(mean):
        return DASH
    if math.isnan(std):
        return _num(mean, digits, sign=sign)
    return f"{_num(mean, digits, sign=sign)} ± {_num(std, digits, sign=False)}"


def _sig(x: float, digits: int = 4) -> str:
    if math.isnan(x):
        return DASH
    return f"{x:.{digits}g}".replace("-", "−")


def _metric_pm(mean_std: tuple[float, float]) -> str:
    mean, std = mean_std
    if math.isnan(mean):
        return DASH
    return _sig(mean) if math.isnan(std) else f"{_sig(mean)} ± {_sig(std, 2)}"


def _interval(ci: stats.Interval | None) -> str:
    return DASH if ci is None else f"[{_num(ci.low)}, {_num(ci.high)}]"


def _ms(seconds: float) -> str:
    return DASH if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def _arrow(higher_is_better: bool) -> str:
    return "↑" if higher_is_better else "↓"


def _seeds(row: MethodRow) -> str:
    return f"{row.n_ok}/{row.n_runs}"


def _verdict_counts(counts: dict[str, int]) -> str:
    return " / ".join(str(counts.get(v, 0)) for v in VERDICT_ORDER)


def _litmus_parts(row: MethodRow) -> tuple[str, str, str, str]:
    """(reference, mean paired diff, CI, verdict) as text."""
    if row.litmus is None:
        return (DASH, DASH, DASH, row.litmus_note or DASH)
    lit = row.litmus
    return (lit.reference, _num(lit.mean_diff), _interval(lit.ci), lit.verdict)


# --------------------------------------------------------------------------- Markdown
def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    body = [[_md_cell(str(c)) for c in row] for row in rows]
    return str(
        tabulate(body, headers=[_md_cell(h) for h in headers], tablefmt="github", disable_numparse=True)
    )


def _params(lb: Leaderboard) -> list[tuple[str, str]]:
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


def _main_row(row: MethodRow) -> list[str]:
    ref, diff, ci, verdict = _litmus_parts(row)
    return [
        DASH if row.rank is None else f"{row.rank:g}",
        row.key,
        row.level,
        _seeds(row),
        _pm(row.delta_p),
        ref,
        diff,
        ci,
        verdict,
        _pm(row.delta_m),
        _ms(row.time_per_step_s),
    ]


def _metric_headers(group: GroupBoard) -> list[str]:
    return [f"{t}/{m} {_arrow(group.higher_is_better[t][m])}" for t, m in group.metric_names]


def _group_notes(group: GroupBoard) -> list[str]:
    lines: list[str] = []
    for row in group.rows:
        lines.extend(f"{row.key}, {f}" for f in row.failures)
    for row in group.rows:
        if row.litmus is not None and row.litmus_note:
            lines.append(f"{row.key}: {row.litmus_note}")
    lines.extend(group.notes)
    return lines


def markdown(lb: Leaderboard) -> bytes:
    out: list[str] = [
        "# mtlbench leaderboard",
        "",
        "Generated from the stored result files by `mtlbench.leaderboard.build_leaderboard`; "
        "do not edit by hand. The same result files always give the same bytes.",
        "",
        _md_table(["parameter", "value"], _params(lb)),
        "",
        "**The litmus test** (Lin et al., TMLR 2022): a loss-level method is compared with random "
        "loss weighting (`rlw`), a gradient-level one (and every `a+b` combination) with random "
        "gradient weighting (`rgw`), paired by seed. It **passes** when the 95% bootstrap interval "
        "of the mean paired Δp difference lies above 0, **fails** when it lies below 0, and is "
        "**inconclusive** otherwise. A failed run counts as a loss (its difference is −∞). "
        f"Δp is relative to EW of the same seed (percent, higher is better); Δm is relative to "
        f"single-task references (percent, lower is better). Exact rules: [{DOCS}](../{DOCS}).",
        "",
        "## Across environments",
        "",
    ]
    if lb.aggregate:
        out += [
            "Over: " + "; ".join(k.label for k in lb.aggregate_groups) + ".",
            "",
            _md_table(
                [
                    "method",
                    "level",
                    "envs",
                    "mean rank ↓",
                    "IQM Δp (%)",
                    "95% CI (stratified)",
                    "litmus pass / inconcl. / fail / insuff.",
                ],
                [
                    [
                        a.method,
                        a.level,
                        str(a.n_envs),
                        DASH if math.isnan(a.mean_rank) else f"{a.mean_rank:.2f}",
                        _num(a.iqm),
                        _interval(a.iqm_ci),
                        _verdict_counts(a.verdicts),
                    ]
                    for a in lb.aggregate
                ],
            ),
            "",
        ]
    else:
        out += ["No usable results yet.", ""]
    for group in lb.groups:
        out += [f"## {group.key.label}", ""]
        refs = ", ".join(r.key for r in group.rows if r.litmus_note == "reference")
        out += [
            f"Baseline for Δp: {group.baseline or 'none'}; litmus references: {refs or 'none'}; "
            f"{group.n_files} result files. Seeds ok counts usable runs out of all runs.",
            "",
            _md_table(MAIN_HEADERS, [_main_row(r) for r in group.rows]),
            "",
            "Selected test metrics (at the best validation score), mean ± std over usable seeds:",
            "",
            _md_table(
                ["method", *_metric_headers(group)],
                [[r.key, *(_metric_pm(r.metrics[k]) for k in group.metric_names)] for r in group.rows],
            ),
            "",
        ]
        notes = _group_notes(group)
        if notes:
            out += ["Failures and notes:", "", *(f"- {n}" for n in notes), ""]
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


# -------------------------------------------------------------------------------- CSV
def _csv_float(x: float | None) -> str:
    if x is None:
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


# ------------------------------------------------------------------------------ plots
LEVEL_COLORS = {"loss": "#1f6fb2", "gradient": "#d9711c"}
REFERENCE_COLOR = "#444444"


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig


def _png(fig: Figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _style() -> AbstractContextManager[None]:
    import matplotlib

    rc = dict(matplotlib.rcParamsDefault)
    rc.update(
        {
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#e6e6e6",
            "grid.linewidth": 0.8,
            "axes.axisbelow": True,
            "axes.titlesize": 10,
            "axes.titleweight": "bold",
            "svg.hashsalt": "mtlbench",
        }
    )
    rc.pop("backend", None)
    return matplotlib.rc_context(rc)


def _finite(x: float) -> bool:
    return not (math.isnan(x) or math.isinf(x))


def plot_delta_p(group: GroupBoard) -> str:
    rows = [r for r in group.rows if _finite(r.delta_p[0])]
    with _style():
        fig = _figure(5.8, 1.1 + 0.3 * max(len(rows), 2))
        ax = fig.add_subplot()
        names = [r.key for r in rows][::-1]
        for y, row in enumerate(rows[::-1]):
            color = LEVEL_COLORS.get(row.level, "#777777")
            lo = hi = row.delta_p[0]
            if row.delta_p_ci is not None:
                lo, hi = row.delta_p_ci.low, row.delta_p_ci.high
            ax.errorbar(
                row.delta_p[0],
                y,
                xerr=[[row.delta_p[0] - lo], [hi - row.delta_p[0]]],
                fmt="o",
                color=color,
                ecolor=color,
                elinewidth=1.6,
                capsize=3,
                markersize=5,
                markerfacecolor="white" if row.n_failed else color,
            )
        ax.axvline(0.0, color=REFERENCE_COLOR, linewidth=1.0)
        for row in rows:
            if row.litmus_note == "reference":
                ax.axvline(
                    row.delta_p[0], color=LEVEL_COLORS.get(row.level, "#777"), linestyle="--", linewidth=1
                )
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(-0.7, len(names) - 0.3)
        ax.set_xlabel("Δp vs EW (%), mean over seeds, 95% bootstrap CI")
        ax.grid(axis="y", visible=False)
        ax.set_title("Δp per method")
        _level_legend(ax, rows)
        ax.margins(x=0.08)
        fig.tight_layout()
        return _png(fig)


def _level_legend(ax: Axes, rows: Sequence[MethodRow], *, references: bool = True) -> None:
    from matplotlib.lines import Line2D

    levels = sorted({r.level for r in rows})
    handles = [
        Line2D([], [], marker="o", linestyle="", color=LEVEL_COLORS.get(lv, "#777"), label=f"{lv} level")
        for lv in levels
    ]
    if references and any(r.litmus_note == "reference" for r in rows):
        handles.append(Line2D([], [], linestyle="--", color="#777", label="rlw / rgw"))
    if any(r.n_failed for r in rows):
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                color="#777",
                markerfacecolor="white",
                label="has failed runs",
            )
        )
    if handles:
        ax.legend(handles=handles, loc="best", fontsize=7, framealpha=0.9, edgecolor="#dddddd")


def plot_curves(group: GroupBoard) -> str:
    import matplotlib

    rows = [r for r in group.rows if r.curve]
    cmap = matplotlib.colormaps["tab20"]
    with _style():
        fig = _figure(11.6, 3.8)
        ax = fig.add_subplot()
        for i, row in enumerate(sorted(rows, key=lambda r: r.key)):
            epochs = [e for e, _ in row.curve]
            values = [v for _, v in row.curve]
            ref = row.litmus_note == "reference" or row.name == "ew"
            ax.plot(
                epochs,
                values,
                label=row.key,
                color="#222222" if row.name == "ew" else cmap(i % 20),
                linewidth=2.2 if ref else 1.2,
                linestyle="--" if row.litmus_note == "reference" else "-",
                marker="o" if len(epochs) <= 12 else None,
                markersize=2.5,
            )
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation Δp vs EW (%), mean over seeds")
        ax.set_title("Validation curves")
        if rows:
            ax.legend(
                fontsize=7.5,
                frameon=False,
                ncols=1 + len(rows) // 16,
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
            )
        fig.tight_layout()
        return _png(fig)


def plot_cost(group: GroupBoard) -> str:
    rows = [r for r in group.rows if _finite(r.delta_p[0]) and _finite(r.time_per_step_s)]
    with _style():
        fig = _figure(5.8, 1.1 + 0.3 * max(len(group.rows), 2))
        ax = fig.add_subplot()
        for row in rows:
            x = row.time_per_step_s * 1000
            color = LEVEL_COLORS.get(row.level, "#777")
            face = "white" if row.n_failed else color
            ax.scatter([x], [row.delta_p[0]], color=face, edgecolors=color, s=24, zorder=3)
            ax.annotate(
                row.key.removesuffix("@1"),
                (x, row.delta_p[0]),
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=7,
                color="#333333",
            )
        xs = [r.time_per_step_s * 1000 for r in rows]
        if xs and min(xs) > 0 and max(xs) / min(xs) > 10:
            ax.set_xscale("log")
        ax.axhline(0.0, color=REFERENCE_COLOR, linewidth=1.0)
        ax.margins(x=0.15, y=0.1)
        ax.set_xlabel("time per step (ms), mean over seeds")
        ax.set_ylabel("Δp vs EW (%)")
        ax.set_title("Cost vs Δp")
        _level_legend(ax, rows, references=False)
        fig.tight_layout()
        return _png(fig)


def plot_aggregate(lb: Leaderboard) -> str:
    rows = [a for a in lb.aggregate if _finite(a.iqm)]
    rows.sort(key=lambda a: (a.iqm, a.method))
    with _style():
        fig = _figure(7.6, 1.1 + 0.3 * max(len(rows), 2))
        ax = fig.add_subplot()
        for y, a in enumerate(rows):
            color = LEVEL_COLORS.get(a.level, "#777")
            lo = hi = a.iqm
            if a.iqm_ci is not None and _finite(a.iqm_ci.low) and _finite(a.iqm_ci.high):
                lo, hi = a.iqm_ci.low, a.iqm_ci.high
            ax.errorbar(
                a.iqm,
                y,
                xerr=[[a.iqm - lo], [hi - a.iqm]],
                fmt="o",
                color=color,
                elinewidth=1.6,
                capsize=3,
                markersize=5,
            )
        ax.axvline(0.0, color=REFERENCE_COLOR, linewidth=1.0)
        ax.set_yticks(range(len(rows)), [a.method for a in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("IQM of per-(env, seed) Δp vs EW (%), 95% stratified bootstrap CI")
        ax.set_title("Across environments")
        fig.tight_layout()
        return _png(fig)


# ------------------------------------------------------------------------------- HTML
CSS = """
:root { --fg:#1d2330; --muted:#5b6478; --line:#e3e6ec; --bg:#ffffff; --soft:#f6f7f9;
        --pass:#1a7f37; --fail:#c62828; --inc:#6b7280; --ins:#b26a00; --accent:#1f6fb2; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--fg); background:var(--bg); }
header { background:#18202e; color:#fff; padding:28px 0 22px; }
header .wrap { display:flex; flex-direction:column; gap:6px; }
header h1 { margin:0; font-size:26px; font-weight:650; letter-spacing:-0.01em; }
header p { margin:0; color:#c7cedb; max-width:900px; }
.wrap { max-width:1240px; margin:0 auto; padding:0 28px; }
main { padding:8px 0 48px; }
h2 { font-size:20px; margin:36px 0 6px; padding-top:8px; border-top:1px solid var(--line); }
h3 { font-size:15px; margin:20px 0 8px; color:var(--muted); font-weight:600; }
p.lead, p.note { color:var(--muted); margin:4px 0 12px; }
nav { margin:14px 0 0; font-size:13px; }
nav a { color:#9cc3ff; margin-right:14px; text-decoration:none; }
nav a:hover { text-decoration:underline; }
.params { display:grid; grid-template-columns:max-content 1fr; gap:2px 18px; font-size:13px;
          background:var(--soft); border:1px solid var(--line); border-radius:8px; padding:12px 16px;
          margin:18px 0 6px; }
.params dt { color:var(--muted); } .params dd { margin:0; }
.scroll { overflow-x:auto; border:1px solid var(--line); border-radius:8px; }
table { border-collapse:collapse; width:100%; font-size:13px; font-variant-numeric:tabular-nums; }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th { background:var(--soft); font-weight:600; color:#333b4d; position:sticky; top:0; }
td.l, th.l { text-align:left; } td.c, th.c { text-align:center; }
tbody tr:last-child td { border-bottom:none; }
tbody tr:hover td { background:#fafbfd; }
tr.ref td { background:#f3f7fc; }
code, .mono { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12px; }
.badge { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px; font-weight:600;
         border:1px solid transparent; }
.b-pass { color:var(--pass); background:#e6f4ea; border-color:#b7dfc2; }
.b-fail { color:var(--fail); background:#fdecea; border-color:#f5c2bd; }
.b-inconclusive { color:var(--inc); background:#f1f2f4; border-color:#dcdfe4; }
.b-insufficient { color:var(--ins); background:#fff4e0; border-color:#f3d7a6; }
.b-ref { color:var(--accent); background:#e8f1fb; border-color:#c3dbf3; }
.lvl { font-size:12px; color:var(--muted); }
.plots { display:grid; grid-template-columns:repeat(auto-fit, minmax(460px, 1fr)); gap:14px; margin:14px 0; }
.plots figure.wide { grid-column:1 / -1; }
.plots.single { grid-template-columns:minmax(0, 780px); }
.plots figure { margin:0; border:1px solid var(--line); border-radius:8px; padding:8px; background:#fff; }
.plots img { width:100%; height:auto; display:block; }
details { margin:10px 0; } summary { cursor:pointer; color:var(--accent); font-weight:600; font-size:13px; }
ul.notes { margin:6px 0; padding-left:20px; color:var(--muted); font-size:13px; }
footer { color:var(--muted); font-size:12px; border-top:1px solid var(--line); padding:18px 0 30px; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(verdict: str) -> str:
    cls = {"pass": "b-pass", "fail": "b-fail", "inconclusive": "b-inconclusive"}.get(
        verdict, "b-insufficient"
    )
    if verdict == "reference":
        cls = "b-ref"
    return f'<span class="badge {cls}">{_e(verdict)}</span>'


def _html_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    left: int = 1,
    center: frozenset[int] = frozenset(),
    row_classes: Sequence[str] | None = None,
) -> str:
    """Cells are HTML already (escaped by the caller); the first ``left`` columns align left."""

    def cls(i: int) -> str:
        return ' class="l"' if i < left else ' class="c"' if i in center else ""

    head = "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(headers))
    body = []
    for n, row in enumerate(rows):
        row_cls = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        cells = "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{row_cls}>{cells}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _img(data: str, alt: str, *, wide: bool = False) -> str:
    cls = ' class="wide"' if wide else ""
    return f'<figure{cls}><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></figure>'


def _html_group(group: GroupBoard) -> str:
    rows_html, classes = [], []
    for r in group.rows:
        ref, diff, ci, verdict = _litmus_parts(r)
        rows_html.append(
            [
                _e(DASH if r.rank is None else f"{r.rank:g}"),
                f'<span class="mono">{_e(r.key)}</span>',
                f'<span class="lvl">{_e(r.level)}</span>',
                _e(_seeds(r)),
                _e(_pm(r.delta_p)),
                _e(ref),
                _e(diff),
                _e(ci),
                _badge(verdict) if (r.litmus is not None or verdict == "reference") else _e(verdict),
                _e(_pm(r.delta_m)),
                _e(_ms(r.time_per_step_s)),
            ]
        )
        classes.append("ref" if r.litmus_note == "reference" or r.name == "ew" else "")
    notes = _group_notes(group)
    refs = ", ".join(r.key for r in group.rows if r.litmus_note == "reference")
    parts = [
        f'<section id="{_e(group.key.anchor)}">',
        f"<h2>{_e(group.key.label)}</h2>",
        f'<p class="lead">Baseline for Δp: <code>{_e(group.baseline or "none")}</code> · litmus references: '
        f"<code>{_e(refs or 'none')}</code> · {group.n_files} result files · spec hash "
        f"<code>{_e(group.key.spec_hash)}</code></p>",
        _html_table(MAIN_HEADERS, rows_html, left=3, center=frozenset({8}), row_classes=classes),
        '<div class="plots">',
        _img(plot_delta_p(group), f"delta_p per method on {group.key.env_id}"),
        _img(plot_cost(group), f"time per step vs delta_p on {group.key.env_id}"),
        _img(plot_curves(group), f"validation curves on {group.key.env_id}", wide=True),
        "</div>",
        "<details><summary>Selected test metrics (mean ± std over usable seeds)</summary>",
        _html_table(
            ["method", *_metric_headers(group)],
            [
                [
                    f'<span class="mono">{_e(r.key)}</span>',
                    *(_e(_metric_pm(r.metrics[k])) for k in group.metric_names),
                ]
                for r in group.rows
            ],
        ),
        "</details>",
    ]
    if notes:
        parts += [
            "<h3>Failures and notes</h3>",
            '<ul class="notes">',
            *(f"<li>{_e(n)}</li>" for n in notes),
            "</ul>",
        ]
    parts.append("</section>")
    return "\n".join(parts)


def html_page(lb: Leaderboard) -> bytes:
    nav = "".join(f'<a href="#{_e(g.key.anchor)}">{_e(g.key.env_id)}</a>' for g in lb.groups)
    params = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _params(lb))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>mtlbench leaderboard</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        '<header><div class="wrap">',
        "<h1>mtlbench leaderboard</h1>",
        "<p>Multi-task weighting methods against the litmus test of Lin et al. (TMLR 2022): a new method "
        "must beat random weighting, <code>rlw</code> for loss-level methods and <code>rgw</code> for "
        "gradient-level ones and combinations, paired by seed.</p>",
        f'<nav><a href="#across">across envs</a>{nav}<a href="#exclusions">exclusions</a></nav>',
        "</div></header>",
        '<main><div class="wrap">',
        f'<dl class="params">{params}</dl>',
        '<p class="note">Verdicts: '
        + _badge("pass")
        + " 95% bootstrap interval of the mean paired Δp difference above 0 · "
        + _badge("fail")
        + " below 0 · "
        + _badge("inconclusive")
        + " contains 0 · "
        + _badge("insufficient seeds")
        + " fewer than 2 paired seeds. A failed run counts as a loss (difference −∞). Δp: percent vs EW "
        f"of the same seed, higher is better; Δm: percent vs single-task references, lower is better. "
        f"Rules: <code>{DOCS}</code>.</p>",
        '<section id="across"><h2>Across environments</h2>',
    ]
    if lb.aggregate:
        parts += [
            '<p class="lead">Over: ' + "; ".join(_e(k.label) for k in lb.aggregate_groups) + "</p>",
            _html_table(
                [
                    "method",
                    "level",
                    "envs",
                    "mean rank ↓",
                    "IQM Δp (%)",
                    "95% CI (stratified)",
                    "pass",
                    "inconclusive",
                    "fail",
                    "insufficient",
                ],
                [
                    [
                        f'<span class="mono">{_e(a.method)}</span>',
                        f'<span class="lvl">{_e(a.level)}</span>',
                        _e(a.n_envs),
                        _e(DASH if math.isnan(a.mean_rank) else f"{a.mean_rank:.2f}"),
                        _e(_num(a.iqm)),
                        _e(_interval(a.iqm_ci)),
                        *(_e(a.verdicts.get(v, 0)) for v in VERDICT_ORDER),
                    ]
                    for a in lb.aggregate
                ],
                left=2,
            ),
            '<div class="plots single">',
            _img(plot_aggregate(lb), "IQM of delta_p across environments"),
            "</div>",
        ]
    else:
        parts.append('<p class="lead">No usable results yet.</p>')
    parts.append("</section>")
    parts += [_html_group(g) for g in lb.groups]
    parts.append('<section id="exclusions"><h2>Exclusions</h2>')
    if lb.exclusions:
        parts += [
            '<p class="lead">Result files that were not used, and why.</p>',
            _html_table(
                ["file", "reason"],
                [[f"<code>{_e(e.path)}</code>", _e(e.reason)] for e in lb.exclusions],
                left=2,
            ),
        ]
    else:
        parts.append('<p class="lead">None.</p>')
    parts += [
        "</section>",
        "</div></main>",
        f'<footer><div class="wrap">Generated by mtlbench {_e(lb.mtlbench_version)} from stored result files; '
        "the same files always give the same page.</div></footer>",
        "</body>",
        "</html>",
    ]
    return ("\n".join(parts) + "\n").encode()

"""Render a computed :class:`~mtlbench.leaderboard.model.Leaderboard` as one HTML page.

The first screen answers "who beats random weighting?": one table, a row per method and a
column per environment with the litmus verdict, the mean paired difference, its interval
and n, then the across-environment summary. The page is self-contained (inline CSS and
script from :mod:`~mtlbench.leaderboard.page_assets`, plots from
:mod:`~mtlbench.leaderboard.plots` as inline PNG), readable without JavaScript, and a pure
function of the leaderboard: the same results give the same bytes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

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
    short_authors,
    verdict_cell,
    verdict_matrix,
)
from mtlbench.leaderboard.model import GroupBoard, Leaderboard, MethodRow
from mtlbench.leaderboard.page_assets import CSS, SCRIPT
from mtlbench.leaderboard.plots import method_styles, plot_aggregate, plot_cost, plot_curves, plot_delta_p

__all__ = ["html_page"]

BADGE_CLASS = {
    "pass": "b-pass",
    "fail": "b-fail",
    "inconclusive": "b-inconclusive",
    "insufficient seeds": "b-insufficient",
    "reference": "b-ref",
}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _v(x: float | None) -> str:
    """A sort key for the script: ``data-v`` (empty for a missing value)."""
    if x is None or math.isnan(x):
        return ""
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(round(x, 6))


def _badge(verdict: str) -> str:
    return f'<span class="badge {BADGE_CLASS.get(verdict, "b-inconclusive")}">{_e(verdict)}</span>'


def _method(key: str, lb: Leaderboard, level: str = "") -> str:
    """The method's cell: its name linked to its paper, the version, its role, level and authors."""
    name, _, version = key.rpartition("@")
    card = lb.methods.get(name)
    label = f'<span class="name">{_e(name)}</span>'
    if card is not None and card.paper:
        label = f'<a href="{_e(card.paper)}">{_e(name)}</a>'
    tag = role(name)
    parts = [label, f'<span class="ver">@{_e(version)}</span>']
    if tag:
        parts.append(f'<span class="tag">{_e(tag)}</span>')
    who = [level] if level else []
    if card is not None and card.authors:
        who.append(short_authors(card.authors))
    if who:
        parts.append(f'<span class="who">{_e(" · ".join(who))}</span>')
    title = f' title="{_e(card.description)}"' if card is not None and card.description else ""
    return f'<th scope="row" class="m"{title}>{"".join(parts)}</th>'


def _verdict_td(cell: VerdictCell | None, *, extra: str = "") -> str:
    if cell is None:
        return f'<td class="v{extra}" data-v="">{DASH}</td>'
    if not cell.tested:
        verdict = (
            _badge(cell.verdict)
            if cell.verdict == "reference"
            else f'<span class="lvl">{_e(cell.verdict)}</span>'
        )
        return f'<td class="v{extra}" data-v="" title="{_e(cell.title)}">{verdict}</td>'
    detail = f'{_e(cell.mean_diff)} <span class="ci">{_e(cell.interval)}, n&nbsp;=&nbsp;{cell.n}</span>'
    mean = cell.mean_diff.replace("−", "-").replace("∞", "Infinity")
    return (
        f'<td class="v{extra}" data-v="{_e(mean if mean != DASH else "")}" title="{_e(cell.title)}">'
        f'{_badge(cell.verdict)}<span class="detail">{detail}</span></td>'
    )


def _table(
    caption: str,
    headers: Sequence[str],
    rows: Iterable[str],
    *,
    classes: str = "",
    head_classes: Sequence[str] = (),
) -> str:
    """``rows`` are ``<tr>`` elements already; every header cell gets ``scope="col"``."""
    head = "".join(
        f'<th scope="col"{f" class={chr(34)}{c}{chr(34)}" if c else ""}>{_e(h)}</th>'
        for h, c in zip(headers, [*head_classes, *[""] * len(headers)])
    )
    cls = f' class="{classes}"' if classes else ""
    return (
        f'<div class="scroll"><table{cls}><caption>{caption}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _tr(cells: str, row_class: str = "") -> str:
    return f'<tr class="{row_class}">{cells}</tr>' if row_class else f"<tr>{cells}</tr>"


def _img(data: str, alt: str, caption: str, *, wide: bool = False) -> str:
    cls = ' class="wide"' if wide else ""
    return (
        f'<figure{cls}><div class="pan"><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></div>'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _verdict_section(lb: Leaderboard) -> list[str]:
    envs = [k.env_id for k in lb.aggregate_groups]
    rows = []
    for agg, cells in verdict_matrix(lb):
        name = agg.method.rpartition("@")[0]
        iqm = f'{_e(num(agg.iqm))} <span class="ci">{_e(interval_n(agg.iqm_ci, agg.n_scores))}</span>'
        rows.append(
            _tr(
                _method(agg.method, lb, agg.level)
                + "".join(_verdict_td(c) for c in cells)
                + f'<td class="across" data-v="{_v(_pass_share(cells))}">{_e(passes(cells))}</td>'
                + f'<td data-v="{_v(agg.mean_rank)}">'
                + _e(DASH if math.isnan(agg.mean_rank) else f"{agg.mean_rank:.2f}")
                + "</td>"
                + f'<td data-v="{_v(agg.iqm)}" title="{_e(interval_label(stratified=True))} interval of the '
                f'IQM over n = {agg.n_scores} (env, seed) scores">{iqm}</td>',
                "ref" if role(name) else "",
            )
        )
    explanation = (
        "Each method against random weighting of its level (<code>rlw</code> for loss-level methods, "
        "<code>rgw</code> for gradient-level ones and combinations), paired by seed: verdict, mean "
        f"paired Δp difference (points), {_e(interval_label())} interval, n paired seeds. Then, across "
        "environments: envs passed / tested, mean rank, IQM of Δp vs EW (%) with its "
        f"{_e(interval_label(stratified=True))} interval and n (env, seed) scores."
    )
    table = _table(
        "Litmus verdicts, then the across-env summary",
        ["method", *envs, "passed", "mean rank ↓", "IQM Δp (%)"],
        rows,
        classes="sortable filterable verdicts",
        head_classes=["l", *["l"] * len(envs), "across"],
    )
    legend = (
        f"{explanation} {_badge('pass')} interval above 0 · {_badge('fail')} below 0 · {_badge('inconclusive')} "
        f"contains 0 · {_badge('insufficient seeds')} fewer than {stats.MIN_PAIRED_SEEDS} paired seeds · {_badge('reference')} "
        "the random-weighting reference itself. A failed run of the method is a fail. "
        "Hover a cell for the full statement; names link to the papers."
    )
    plot = _img(
        plot_aggregate(lb, method_styles(lb)),
        "IQM of delta_p vs EW across environments, per method, with intervals",
        f"IQM of Δp vs EW across environments; bars: {interval_label(stratified=True)} intervals.",
    )
    return [
        '<section id="verdict"><h2>Who beats random weighting?</h2>',
        '<p class="tools" hidden><label>Filter methods: <input type="search" id="filter" '
        'placeholder="e.g. grad"></label> · click a column header to sort</p>',
        f'<div class="first"><div>{table}<p class="note">{legend}</p></div>{plot}</div>',
        "</section>",
    ]


def _pass_share(cells: list[VerdictCell | None]) -> float:
    tested = [c for c in cells if c is not None and c.tested]
    return sum(c.verdict == "pass" for c in tested) / len(tested) if tested else math.nan


VERDICT_SORT = {"fail": 0.0, "insufficient seeds": 1.0, "inconclusive": 2.0, "pass": 3.0}


def _group_row(row: MethodRow, group: GroupBoard, lb: Leaderboard) -> str:
    rank, verdict, diff, ci, ref, dp, seeds_ok, level, *rest = main_row(row, group)[1:]
    lit = row.litmus
    cell = verdict_cell(row, group.key.env_id)
    badge = (
        _badge(verdict)
        if lit is not None or verdict == "reference"
        else f'<span class="lvl">{_e(verdict)}</span>'
    )
    tds = [
        f'<td data-v="{_v(row.rank)}">{_e(rank)}</td>',
        f'<td class="l" data-v="{_v(VERDICT_SORT.get(verdict))}" title="{_e(cell.title)}">{badge}</td>',
        f'<td data-v="{_v(lit.mean_diff if lit else None)}">{_e(diff)}</td>',
        f'<td data-v="{_v(lit.ci.low if lit and lit.ci else None)}">{_e(ci)}</td>',
        f'<td class="l">{_e(ref)}</td>',
        f'<td data-v="{_v(row.delta_p[0])}">{_e(dp)}</td>',
        f'<td data-v="{row.n_ok}">{_e(seeds_ok)}</td>',
        f'<td class="l"><span class="lvl">{_e(level)}</span></td>',
    ]
    if group.has_stl_reference:
        tds.append(f'<td data-v="{_v(row.delta_m[0] if row.delta_m else None)}">{_e(rest.pop(0))}</td>')
    tds.append(f'<td data-v="{_v(row.time_per_step_s * 1000)}">{_e(rest.pop(0))}</td>')
    return _tr(_method(row.key, lb) + "".join(tds), "ref" if role(row.name) else "")


def _group_section(group: GroupBoard, lb: Leaderboard) -> str:
    styles = method_styles(lb)
    refs = ", ".join(r.key for r in group.rows if r.litmus_note == "reference")
    caption = f"{_e(group.key.env_id)}: every method, best mean Δp vs EW first"
    explanation = (
        "A failed seed counts as −∞ in the ranking. Verdict, Δp − ref and interval: the litmus test "
        f"against the reference ({_e(interval_label())} interval, n paired seeds); seeds ok: usable "
        "runs / runs."
    )
    n = sorted({len(r.delta_p_by_seed) for r in group.rows if r.delta_p_by_seed})
    n_text = ", ".join(map(str, n)) or DASH
    parts = [
        f'<section id="{_e(group.key.anchor)}">',
        f"<h2>{_e(group.key.label)}</h2>",
        f'<p class="lead">Baseline for Δp: <code>{_e(group.baseline or "none")}</code> · litmus references: '
        f"<code>{_e(refs or 'none')}</code> · {group.n_files} result files · spec hash "
        f"<code>{_e(group.key.spec_hash)}</code></p>",
        _table(
            caption,
            main_headers(group),
            [_group_row(r, group, lb) for r in group.rows],
            classes="sortable filterable",
            head_classes=["l", "", "l", "", "", "l", "", "", "l"],
        ),
        f'<p class="note">{explanation}</p>',
        '<div class="plots">',
        _img(
            plot_delta_p(group, styles),
            f"delta_p per method on {group.key.env_id}",
            f"Δp vs EW per method; bars: {interval_label()} intervals over n = {n_text} seeds.",
        ),
        _img(
            plot_cost(group, styles),
            f"time per step vs delta_p on {group.key.env_id}",
            "Cost against Δp vs EW; hollow markers: methods with failed runs.",
        ),
        _img(
            plot_curves(group, styles),
            f"validation curves on {group.key.env_id}",
            "Validation Δp vs EW of the same seed at the same epoch, mean over seeds; EW, rlw "
            "and rgw in black and grey. Where a few curves stretch the axis, the right panel "
            "zooms on the range of most points.",
            wide=True,
        ),
        "</div>",
        "<details><summary>Selected test metrics (mean ± std over usable seeds)</summary>",
        _table(
            f"{_e(group.key.env_id)}: selected test metrics (at the best validation score).",
            ["method", *metric_headers(group)],
            [
                _tr(
                    _method(r.key, lb)
                    + "".join(f"<td>{_e(metric_pm(r.metrics[k]))}</td>" for k in group.metric_names)
                )
                for r in group.rows
            ],
            classes="filterable",
            head_classes=["l"],
        ),
        "</details>",
    ]
    notes = group_notes(group)
    if notes:
        parts += [
            "<h3>Failures and notes</h3>",
            '<ul class="notes">',
            *(f"<li>{_e(n)}</li>" for n in notes),
            "</ul>",
        ]
    parts.append("</section>")
    return "\n".join(parts)


def _methods_section(lb: Leaderboard) -> list[str]:
    names = sorted({r.name for g in lb.groups for r in g.rows})
    rows = []
    for name in names:
        card = lb.methods.get(name)
        authors = ", ".join(card.authors) if card else DASH
        paper = f'<a href="{_e(card.paper)}">{_e(card.paper)}</a>' if card and card.paper else DASH
        description = _e(card.description) if card and card.description else DASH
        th = _method(f"{name}@", lb).replace('<span class="ver">@</span>', "")
        rows.append(
            _tr(
                th
                + f'<td class="wrap">{_e(authors)}</td><td class="l">{paper}</td><td class="wrap">{description}</td>'
            )
        )
    return [
        '<section id="methods"><h2>Methods</h2>',
        _table(
            "Every method on this page, from its <code>submissions/&lt;name&gt;/submission.yaml</code>.",
            ["method", "authors", "paper", "description"],
            rows,
            classes="filterable",
            head_classes=["l", "l", "l", "l"],
        ),
        "</section>",
    ]


def html_page(lb: Leaderboard) -> bytes:
    nav = "".join(f'<a href="#{_e(g.key.anchor)}">{_e(g.key.env_id)}</a>' for g in lb.groups)
    param_list = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in params(lb))
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
        "<p>Multi-task weighting methods against the litmus test of Lin et al. (TMLR 2022): a method "
        "must beat random weighting of its level, paired by seed.</p>",
        f'<nav><a href="#verdict">verdicts</a>{nav}<a href="#methods">methods</a>'
        '<a href="#build">build</a><a href="#exclusions">exclusions</a></nav>',
        "</div></header>",
        '<main><div class="wrap">',
    ]
    if lb.aggregate:
        parts += _verdict_section(lb)
    else:
        parts.append(
            '<section id="verdict"><h2>Who beats random weighting?</h2><p class="lead">No usable results yet.</p></section>'
        )
    parts += [_group_section(g, lb) for g in lb.groups]
    if lb.groups:
        parts += _methods_section(lb)
    parts += [
        '<section id="build"><h2>How this page was built</h2>',
        f'<dl class="params">{param_list}</dl>',
        f'<p class="note">Δp: percent vs EW of the same seed, higher is better; Δm: percent vs single-task '
        f"references, lower is better. Exact rules: <code>{DOCS}</code>.</p>",
        "</section>",
        '<section id="exclusions"><h2>Exclusions</h2>',
    ]
    if lb.exclusions:
        parts += [
            _table(
                "Result files that were not used, and why.",
                ["file", "reason"],
                [
                    _tr(f'<td class="l"><code>{_e(e.path)}</code></td><td class="wrap">{_e(e.reason)}</td>')
                    for e in lb.exclusions
                ],
                head_classes=["l", "l"],
            )
        ]
    else:
        parts.append('<p class="lead">None.</p>')
    parts += [
        "</section>",
        "</div></main>",
        f'<footer><div class="wrap">Generated by mtlbench {_e(lb.mtlbench_version)} from stored result files; '
        "the same files always give the same page.</div></footer>",
        f"<script>{SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return ("\n".join(parts) + "\n").encode()

"""Render a computed :class:`~mtlbench.leaderboard.model.Leaderboard` as one HTML page.

The page is self-contained (inline CSS, plots from :mod:`mtlbench.leaderboard.plots` as
inline base64 PNG, no JavaScript) and a pure function of the leaderboard: the same results
give the same bytes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

from mtlbench.leaderboard.formatting import (
    DASH,
    DOCS,
    MAIN_HEADERS,
    VERDICT_ORDER,
    group_notes,
    interval,
    litmus_parts,
    metric_headers,
    metric_pm,
    ms,
    num,
    params,
    pm,
    seeds,
)
from mtlbench.leaderboard.model import GroupBoard, Leaderboard
from mtlbench.leaderboard.plots import plot_aggregate, plot_cost, plot_curves, plot_delta_p

__all__ = ["html_page"]

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
        ref, diff, ci, verdict = litmus_parts(r)
        rows_html.append(
            [
                _e(DASH if r.rank is None else f"{r.rank:g}"),
                f'<span class="mono">{_e(r.key)}</span>',
                f'<span class="lvl">{_e(r.level)}</span>',
                _e(seeds(r)),
                _e(pm(r.delta_p)),
                _e(ref),
                _e(diff),
                _e(ci),
                _badge(verdict) if (r.litmus is not None or verdict == "reference") else _e(verdict),
                _e(pm(r.delta_m)),
                _e(ms(r.time_per_step_s)),
            ]
        )
        classes.append("ref" if r.litmus_note == "reference" or r.name == "ew" else "")
    notes = group_notes(group)
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
            ["method", *metric_headers(group)],
            [
                [
                    f'<span class="mono">{_e(r.key)}</span>',
                    *(_e(metric_pm(r.metrics[k])) for k in group.metric_names),
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
        "<p>Multi-task weighting methods against the litmus test of Lin et al. (TMLR 2022): a new method "
        "must beat random weighting, <code>rlw</code> for loss-level methods and <code>rgw</code> for "
        "gradient-level ones and combinations, paired by seed.</p>",
        f'<nav><a href="#across">across envs</a>{nav}<a href="#exclusions">exclusions</a></nav>',
        "</div></header>",
        '<main><div class="wrap">',
        f'<dl class="params">{param_list}</dl>',
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
                        _e(num(a.iqm)),
                        _e(interval(a.iqm_ci)),
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

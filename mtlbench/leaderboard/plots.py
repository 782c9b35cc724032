"""The leaderboard's plots, as base64 PNG for the HTML page.

Drawn with matplotlib's Agg canvas under matplotlib's default style and saved as PNG
without the ``Software`` metadata entry, so the same leaderboard gives the same bytes.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mtlbench.leaderboard.model import GroupBoard, Leaderboard, MethodRow

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Style", "method_styles", "plot_aggregate", "plot_cost", "plot_curves", "plot_delta_p"]

LEVEL_COLORS = {"loss": "#1f6fb2", "gradient": "#d9711c"}
REFERENCE_COLOR = "#444444"
#: 9 colours x 10 markers x 3 line styles: every method of a board gets its own combination
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
MARKERS = ("o", "^", "v", "<", ">", "P", "X", "*", "h", "p")
LINESTYLES: tuple[Any, ...] = ("-", "-.", (0, (5, 1.5)))


@dataclass(frozen=True)
class Style:
    color: str
    marker: str
    linestyle: Any
    linewidth: float
    reference: bool  # EW, RLW or RGW: drawn in black and grey, thicker


#: EW (the Δp baseline) and the two litmus references, drawn apart from the methods
REFERENCE_STYLES = {
    "ew": Style("#000000", "s", "-", 2.4, True),
    "rlw": Style("#4d4d4d", "D", "--", 2.4, True),
    "rgw": Style("#8a8a8a", "d", ":", 2.6, True),
}


def method_styles(lb: Leaderboard) -> dict[str, Style]:
    """One style per ``name@version`` on the board, the same in every plot (sorted ids)."""
    keys = sorted({r.key for g in lb.groups for r in g.rows})
    styles: dict[str, Style] = {}
    i = 0
    for key in keys:
        name = key.rpartition("@")[0]
        if name in REFERENCE_STYLES:
            styles[key] = REFERENCE_STYLES[name]
            continue
        styles[key] = Style(
            PALETTE[i % len(PALETTE)],
            MARKERS[i % len(MARKERS)],
            LINESTYLES[(i // len(PALETTE)) % 3],
            1.3,
            False,
        )
        i += 1
    return styles


def _role(key: str) -> str:
    return "Δp baseline" if key.rpartition("@")[0] == "ew" else "reference"


def _style_of(styles: Mapping[str, Style], key: str) -> Style:
    return styles.get(key) or Style("#777777", "o", "-", 1.2, False)


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


def _n_label(ns: Sequence[int]) -> str:
    values = sorted(set(ns))
    return "n = " + (str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}")


def plot_delta_p(group: GroupBoard, styles: Mapping[str, Style]) -> str:
    """Δp vs EW per method with its bootstrap interval; references in black and grey."""
    rows = [r for r in group.rows if _finite(r.delta_p[0])]
    with _style():
        fig = _figure(5.8, 1.3 + 0.3 * max(len(rows), 2))
        ax = fig.add_subplot()
        names = [r.key for r in rows][::-1]
        for y, row in enumerate(rows[::-1]):
            st = _style_of(styles, row.key)
            color = st.color if st.reference else LEVEL_COLORS.get(row.level, "#777777")
            lo = hi = row.delta_p[0]
            if row.delta_p_ci is not None:
                lo, hi = row.delta_p_ci.low, row.delta_p_ci.high
            ax.errorbar(
                row.delta_p[0],
                y,
                xerr=[[row.delta_p[0] - lo], [hi - row.delta_p[0]]],
                fmt=st.marker if st.reference else "o",
                color=color,
                ecolor=color,
                elinewidth=1.6,
                capsize=3,
                markersize=6 if st.reference else 5,
                markerfacecolor="white" if row.n_failed else color,
            )
        ax.axvline(0.0, color=REFERENCE_COLOR, linewidth=1.0)
        for row in rows:
            if row.litmus_note == "reference":
                st = _style_of(styles, row.key)
                ax.axvline(row.delta_p[0], color=st.color, linestyle=st.linestyle, linewidth=1.2)
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(-0.7, len(names) - 0.3)
        n = _n_label([len(r.delta_p_by_seed) for r in rows]) if rows else "n = 0"
        ax.set_xlabel(f"Δp vs EW (%): mean, 95% bootstrap interval, {n} seeds")
        ax.grid(axis="y", visible=False)
        ax.set_title("Δp per method")
        _level_legend(ax, rows, styles)
        ax.margins(x=0.08)
        fig.tight_layout()
        return _png(fig)


def _level_legend(
    ax: Axes,
    rows: Sequence[MethodRow],
    styles: Mapping[str, Style],
    *,
    loc: Literal["best", "lower right"] = "best",
) -> None:
    from matplotlib.lines import Line2D

    levels = sorted({r.level for r in rows if not _style_of(styles, r.key).reference})
    handles = [
        Line2D([], [], marker="o", linestyle="", color=LEVEL_COLORS.get(lv, "#777"), label=f"{lv} level")
        for lv in levels
    ]
    for row in rows:
        st = _style_of(styles, row.key)
        if st.reference:
            handles.append(
                Line2D([], [], marker=st.marker, linestyle=st.linestyle, color=st.color, label=row.key)
            )
    if any(r.n_failed for r in rows):
        handles.append(
            Line2D(
                [], [], marker="o", linestyle="", color="#777", markerfacecolor="white", label="failed runs"
            )
        )
    if handles:
        ax.legend(handles=handles, loc=loc, fontsize=7, framealpha=0.95, edgecolor="#dddddd")


def _zoom_range(values: Sequence[float]) -> tuple[float, float] | None:
    """Where most curve points lie (10th percentile to the maximum, padded), or None when
    that is most of the full range anyway (no zoom panel needed)."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    lo, hi = float(np.percentile(x, 10)), float(x.max())
    full = float(x.max() - x.min())
    if full == 0 or (hi - lo) > full / 3:
        return None
    pad = max(0.1 * (hi - lo), 0.05)
    return lo - pad, hi + pad


def plot_curves(group: GroupBoard, styles: Mapping[str, Style]) -> str:
    """Validation Δp vs EW per epoch; every method its own colour, marker and line style.

    When a few curves stretch the y-axis (e.g. one that drops to −25 while most stay within
    ±2), a second panel shows the same curves on the range where most points lie.
    """
    from matplotlib.ticker import MaxNLocator

    rows = [r for r in group.rows if r.curve]
    rows.sort(key=lambda r: (not _style_of(styles, r.key).reference, r.key))
    zoom = _zoom_range([v for r in rows for _, v in r.curve])
    with _style():
        fig = _figure(11.6, 4.4)
        axes = fig.subplots(1, 2) if zoom else [fig.add_subplot()]
        for i, ax in enumerate(axes):
            for row in rows:
                st = _style_of(styles, row.key)
                epochs = [e for e, _ in row.curve]
                ax.plot(
                    epochs,
                    [v for _, v in row.curve],
                    label=row.key + (" (reference)" if row.litmus_note == "reference" else ""),
                    color=st.color,
                    linewidth=st.linewidth,
                    linestyle=st.linestyle,
                    marker=st.marker,
                    markevery=max(1, len(epochs) // 8),
                    markersize=4.5,
                    zorder=3 if st.reference else 2,
                )
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            if i == 0:
                ax.set_ylabel("validation Δp vs EW (%), mean over seeds")
                ax.set_title("Validation curves")
            elif zoom is not None:
                ax.set_ylim(*zoom)
                ax.set_title(f"Zoom: Δp from {zoom[0]:.1f} to {zoom[1]:.1f}".replace("-", "−"))
        if rows:
            axes[-1].legend(
                fontsize=7.5,
                frameon=False,
                ncols=1 + len(rows) // 14,
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                handlelength=3.2,
            )
        fig.tight_layout()
        return _png(fig)


def _place_labels(
    ax: Axes, points: list[tuple[float, float, str]], *, fontsize: float = 7.0, dpi: float = 100.0
) -> None:
    """Label points without overlaps: each label takes the first free spot on growing rings
    around its point (display coordinates, estimated text boxes), with a leader line when moved.
    Deterministic: points in the given order, candidate spots in a fixed order.
    """
    ax.autoscale_view()
    to_px = ax.transData.transform
    box = ax.get_window_extent()
    char_w, text_h = fontsize * 0.58 * dpi / 72, fontsize * 1.25 * dpi / 72
    pts = [tuple(to_px((x, y))) for x, y, _ in points]
    taken = [(px - 4, py - 4, px + 4, py + 4) for px, py in pts]  # the markers themselves
    directions = [(1, 0), (1, 1), (1, -1), (-1, 0), (-1, 1), (-1, -1), (0, 1), (0, -1)]
    for (x, y, text), (px, py) in zip(points, pts):
        w = char_w * len(text)
        chosen = None
        for radius in (5, 12, 20, 30, 42, 56, 72, 90):
            for dx, dy in directions:
                cx, cy = px + dx * radius, py + dy * radius * 0.8
                x0 = cx if dx > 0 else cx - w if dx < 0 else cx - w / 2
                y0 = cy - text_h / 2
                cand = (x0, y0, x0 + w, y0 + text_h)
                inside = cand[0] >= box.x0 and cand[2] <= box.x1 and cand[1] >= box.y0 and cand[3] <= box.y1
                if inside and not any(
                    cand[0] < b[2] and b[0] < cand[2] and cand[1] < b[3] and b[1] < cand[3] for b in taken
                ):
                    chosen = (cand, x0 - px, y0 + text_h / 2 - py, radius)
                    break
            if chosen:
                break
        if chosen is None:  # no free spot: right of the point, overlapping
            chosen = ((px + 5, py, px + 5 + w, py + text_h), 5.0, 0.0, 5)
        cand, ox, oy, radius = chosen
        taken.append(cand)
        ax.annotate(
            text,
            (x, y),
            xytext=(ox * 72 / dpi, oy * 72 / dpi),
            textcoords="offset points",
            fontsize=fontsize,
            color="#222222",
            ha="left",
            va="center",
            arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.6} if radius > 12 else None,
        )


def plot_cost(group: GroupBoard, styles: Mapping[str, Style]) -> str:
    """Time per step against Δp vs EW; labels placed without overlaps."""
    rows = [r for r in group.rows if _finite(r.delta_p[0]) and _finite(r.time_per_step_s)]
    with _style():
        fig = _figure(5.8, 1.6 + 0.3 * max(len(group.rows), 2))
        ax = fig.add_subplot()
        for row in rows:
            st = _style_of(styles, row.key)
            color = st.color if st.reference else LEVEL_COLORS.get(row.level, "#777")
            face = "white" if row.n_failed else color
            ax.scatter(
                [row.time_per_step_s * 1000],
                [row.delta_p[0]],
                color=face,
                edgecolors=color,
                marker=st.marker if st.reference else "o",
                s=40 if st.reference else 24,
                zorder=3,
            )
        xs = [r.time_per_step_s * 1000 for r in rows]
        if xs and min(xs) > 0 and max(xs) / min(xs) > 10:
            ax.set_xscale("log")
        ax.axhline(0.0, color=REFERENCE_COLOR, linewidth=1.0)
        ax.margins(x=0.2, y=0.12)
        ax.set_xlabel("time per step (ms), mean over seeds")
        ax.set_ylabel("Δp vs EW (%)")
        ax.set_title("Cost vs Δp")
        _level_legend(ax, rows, styles, loc="lower right")
        fig.tight_layout()
        ordered = sorted(rows, key=lambda r: (r.time_per_step_s, -r.delta_p[0], r.key))
        _place_labels(
            ax, [(r.time_per_step_s * 1000, r.delta_p[0], r.key.removesuffix("@1")) for r in ordered]
        )
        return _png(fig)


def plot_aggregate(lb: Leaderboard, styles: Mapping[str, Style]) -> str:
    """IQM of Δp vs EW across environments per method, with its stratified bootstrap interval."""
    from matplotlib.lines import Line2D

    rows = [a for a in lb.aggregate if _finite(a.iqm)]
    rows.sort(key=lambda a: (a.iqm, a.method))
    with _style():
        fig = _figure(6.4, 1.6 + 0.3 * max(len(rows), 2))
        ax = fig.add_subplot()
        for y, a in enumerate(rows):
            st = _style_of(styles, a.method)
            color = st.color if st.reference else LEVEL_COLORS.get(a.level, "#777")
            lo = hi = a.iqm
            if a.iqm_ci is not None and _finite(a.iqm_ci.low) and _finite(a.iqm_ci.high):
                lo, hi = a.iqm_ci.low, a.iqm_ci.high
            ax.errorbar(
                a.iqm,
                y,
                xerr=[[a.iqm - lo], [hi - a.iqm]],
                fmt=st.marker if st.reference else "o",
                color=color,
                elinewidth=1.6,
                capsize=3,
                markersize=6 if st.reference else 5,
            )
        ax.axvline(0.0, color=REFERENCE_COLOR, linewidth=1.0)
        ax.set_yticks(range(len(rows)), [a.method for a in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.grid(axis="y", visible=False)
        n = _n_label([a.n_scores for a in rows]) if rows else "n = 0"
        ax.set_xlabel(f"IQM of per-(env, seed) Δp vs EW (%)\n95% stratified bootstrap interval, {n} scores")
        ax.set_title("Across environments")
        levels = sorted({a.level for a in rows if not _style_of(styles, a.method).reference})
        handles = [
            Line2D([], [], marker="o", linestyle="", color=LEVEL_COLORS.get(lv, "#777"), label=f"{lv} level")
            for lv in levels
        ] + [
            Line2D(
                [],
                [],
                marker=st.marker,
                linestyle="",
                color=st.color,
                label=f"{a.method} ({_role(a.method)})",
            )
            for a in rows
            if (st := _style_of(styles, a.method)).reference
        ]
        if handles:
            ax.legend(handles=handles, loc="best", fontsize=7, framealpha=0.95, edgecolor="#dddddd")
        fig.tight_layout()
        return _png(fig)

"""The leaderboard's plots, as base64 PNG for the HTML page.

Drawn with matplotlib's Agg canvas under matplotlib's default style and saved as PNG
without the ``Software`` metadata entry, so the same leaderboard gives the same bytes.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mtlbench.leaderboard.model import GroupBoard, Leaderboard, MethodRow

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_aggregate", "plot_cost", "plot_curves", "plot_delta_p"]

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

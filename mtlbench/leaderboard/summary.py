"""The results table printed after ``mtlbench run`` / ``benchmark``: one env, from stored files.

It reuses the leaderboard's computation (:func:`mtlbench.leaderboard.build_leaderboard`
with no output formats), so the terminal and the published leaderboard never disagree.
"""

from __future__ import annotations

import os

from tabulate import tabulate

from mtlbench.leaderboard.build import build_leaderboard


def _pm(pair: tuple[float, float] | None, digits: int = 2) -> str:
    if pair is None:
        return "-"
    mean, std = pair
    return f"{mean:+.{digits}f} ± {std:.{digits}f}" if std == std else f"{mean:+.{digits}f}"


def summary_table(results_dir: str | os.PathLike[str], env_id: str, *, n_boot: int = 2000) -> str:
    """A plain-text table of every method stored for ``env_id`` (all spec versions seen)."""
    board = build_leaderboard(results_dir, results_dir, n_boot=n_boot, formats=()).leaderboard
    blocks = []
    for group in board.groups:
        if group.key.env_id != env_id:
            continue
        headers = ["method", "level", "seeds ok/run", "Δp vs EW (%)", "litmus"]
        headers += [f"{t}/{m}" for t, m in group.metric_names]
        rows = []
        for row in group.rows:
            verdict = "reference" if row.litmus is None else row.litmus.verdict
            metrics = [
                f"{row.metrics[k][0]:.4g} ± {row.metrics[k][1]:.2g}" if k in row.metrics else "-"
                for k in group.metric_names
            ]
            rows.append([row.key, row.level, f"{row.n_ok}/{row.n_runs}", _pm(row.delta_p), verdict, *metrics])
        blocks.append(f"{group.key.label}\n" + tabulate(rows, headers=headers, tablefmt="github"))
    if not blocks:
        return (
            f"no official results for {env_id} under {results_dir} (runs made with --override are "
            "unofficial: their files are stored, but tables leave them out)"
        )
    return "\n\n".join(blocks)

"""The results table printed after ``mtlbench run`` / ``benchmark``: one env, from stored files.

It reuses the leaderboard's computation (:func:`mtlbench.leaderboard.build_leaderboard`
with no output formats) and its cell formatting, so the terminal and the published leaderboard
never disagree; an undefined value (no EW run, one seed) is "—".
"""

from __future__ import annotations

import os
from typing import Literal

from tabulate import tabulate

from mtlbench.leaderboard.build import build_leaderboard
from mtlbench.leaderboard.formatting import DASH, metric_pm, pm
from mtlbench.leaderboard.model import RegistryLookup


def summary_table(
    results_dir: str | os.PathLike[str],
    env_id: str,
    *,
    n_boot: int = 2000,
    registry: RegistryLookup | Literal["default"] | None = "default",
) -> str:
    """A plain-text table of every method stored for ``env_id`` (all spec versions seen)."""
    board = build_leaderboard(
        results_dir, results_dir, n_boot=n_boot, registry=registry, formats=()
    ).leaderboard
    blocks = []
    for group in board.groups:
        if group.key.env_id != env_id:
            continue
        headers = ["method", "level", "seeds ok/run", "Δp vs EW (%)", "litmus"]
        headers += [f"{t}/{m}" for t, m in group.metric_names]
        rows = []
        for row in group.rows:
            verdict = "reference" if row.litmus is None else row.litmus.verdict
            metrics = [metric_pm(row.metrics[k]) if k in row.metrics else DASH for k in group.metric_names]
            rows.append([row.key, row.level, f"{row.n_ok}/{row.n_runs}", pm(row.delta_p), verdict, *metrics])
        blocks.append(f"{group.key.label}\n" + tabulate(rows, headers=headers, tablefmt="github"))
    if not blocks:
        return (
            f"no official results for {env_id} under {results_dir} (runs made with --override are "
            "unofficial: their files are stored, but tables leave them out)"
        )
    return "\n\n".join(blocks)

"""The leaderboard: statistics over stored result files, rendered as Markdown, CSV and HTML.

>>> from mtlbench.leaderboard import build_leaderboard
>>> report = build_leaderboard("leaderboard/results", "leaderboard")   # doctest: +SKIP
>>> print(report.summary())                                             # doctest: +SKIP

See docs/leaderboard.md for the statistics and their exact rules.
"""

from __future__ import annotations

from mtlbench.leaderboard.build import (
    BuildReport,
    Exclusion,
    Leaderboard,
    build_leaderboard,
    compute_leaderboard,
)

__all__ = ["BuildReport", "Exclusion", "Leaderboard", "build_leaderboard", "compute_leaderboard"]

"""The leaderboard: statistics over stored result files, rendered as Markdown, CSV and HTML.

>>> from mtlbench.leaderboard import build_leaderboard
>>> report = build_leaderboard("leaderboard/results", "leaderboard")   # doctest: +SKIP
>>> print(report.summary())                                             # doctest: +SKIP

See docs/leaderboard.md for the statistics and their exact rules. Modules, in the order of
the data flow (each imports only those before it):

* :mod:`~mtlbench.leaderboard.stats`: the statistics (pure functions of arrays);
* :mod:`~mtlbench.leaderboard.model`: the dataclasses (rows, groups, the leaderboard);
* :mod:`~mtlbench.leaderboard.read`: which result files are used, and why others are not;
* :mod:`~mtlbench.leaderboard.formatting`, :mod:`~mtlbench.leaderboard.plots`,
  :mod:`~mtlbench.leaderboard.render_text` (Markdown, CSV),
  :mod:`~mtlbench.leaderboard.render_html` (the page): the outputs;
* :mod:`~mtlbench.leaderboard.build`: grouping, the numbers, and writing the files;
* :mod:`~mtlbench.leaderboard.summary`: the table printed after a run.
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

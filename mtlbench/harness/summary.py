"""Moved to :mod:`mtlbench.leaderboard.summary`; this name stays for ``mtlbench.cli``."""

from mtlbench.leaderboard.summary import summary_table

__all__ = ["summary_table"]

"""The offline tier: the registered environments ``mtlbench litmus`` screens a method on.

Each runs with no download (its data ships inside a PyPI package) and each is a different
regime of multi-task learning (issue 12): two balanced classification tasks, many binary
tasks, several input domains sharing one label set, and regression targets on very
different scales. Their numbers are not comparable with published tables: the tier is a
screen, not the paper's benchmark. Every budget is chosen by one rule (EW converged: its
selected validation metrics at the budget within 1% of those at 3x the budget), checked by
``benchmarks/budget_rule.py``; docs/envs/<env>.md give the figures.
"""

from __future__ import annotations

__all__ = ["OFFLINE_TIER"]

#: env ids (with their version) of the offline tier, in display order
OFFLINE_TIER: tuple[str, ...] = (
    "multimnist-hps-v2",
    "digit-attributes-hps-v1",
    "digit-domains-hps-v1",
    "qm9-small-hps-v1",
)

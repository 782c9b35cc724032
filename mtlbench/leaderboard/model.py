"""The leaderboard's data model: what :mod:`mtlbench.leaderboard.build` computes and the
renderers (:mod:`~mtlbench.leaderboard.render_text`, :mod:`~mtlbench.leaderboard.render_html`,
:mod:`~mtlbench.leaderboard.plots`) write. Plain dataclasses, no computation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mtlbench.harness.results import RunResult
from mtlbench.leaderboard import stats

__all__ = [
    "BASELINE",
    "GRADIENT_REFERENCE",
    "LOSS_REFERENCE",
    "AggregateRow",
    "BuildReport",
    "Exclusion",
    "GroupBoard",
    "GroupKey",
    "Leaderboard",
    "MethodCard",
    "MethodRow",
    "RegistryLookup",
    "Run",
    "reference_for",
]

#: env id -> the registered spec's hash, or None when the id is not registered
RegistryLookup = Callable[[str], "str | None"]
BASELINE = "ew"
LOSS_REFERENCE = "rlw"
GRADIENT_REFERENCE = "rgw"


def reference_for(name: str, level: str) -> str:
    """The litmus reference of a method: RGW for gradient level and composites, RLW for loss level."""
    return GRADIENT_REFERENCE if level == "gradient" or "+" in name else LOSS_REFERENCE


@dataclass(frozen=True)
class Exclusion:
    path: str  # relative to the results folder, POSIX separators
    reason: str


@dataclass(frozen=True, order=True)
class GroupKey:
    env_id: str
    evaluator_version: str
    spec_hash: str

    @property
    def label(self) -> str:
        return f"{self.env_id} (spec {self.spec_hash[:8]}, evaluator {self.evaluator_version})"

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in f"{self.env_id}-{self.spec_hash[:8]}").lower()


@dataclass(frozen=True)
class Run:
    path: str
    result: RunResult
    failure: str | None  # None when the run is usable (status ok, finite selected metrics)

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass
class MethodRow:
    """One method (``name@version``) on one env group."""

    name: str
    version: str
    level: str  # the level used for the litmus test ("+" composites are gradient level)
    n_runs: int
    n_ok: int
    failures: list[str]  # "seed 2: diverged (message)"
    metrics: dict[tuple[str, str], tuple[float, float]]  # (task, metric) -> (mean, std) over ok seeds
    delta_p_by_seed: dict[int, float]  # ok seeds with an EW run of the same seed
    delta_p: tuple[float, float]  # mean, std over delta_p_by_seed
    delta_p_ci: stats.Interval | None  # bootstrap-t interval of the mean over delta_p_by_seed (n >= 2)
    delta_p_last: float  # mean over seeds of delta_p of the last evaluation
    delta_m: tuple[float, float] | None  # vs the spec's stl_reference, when it has one
    litmus: stats.LitmusResult | None  # None for the reference itself
    litmus_note: str  # why pairs were dropped, or why there is no test
    time_per_step_s: float
    peak_memory_mb: float
    curve: list[tuple[int, float]]  # (epoch, mean val_score over ok seeds)
    scores: list[float]  # per seed: delta_p, or -inf for a failed run (ranks and IQM)
    env_score: float  # mean of scores (the ranking score); NaN when there is none
    rank: float | None = None

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def n_failed(self) -> int:
        return self.n_runs - self.n_ok


@dataclass
class GroupBoard:
    key: GroupKey
    metric_names: list[tuple[str, str]]
    higher_is_better: dict[str, dict[str, bool]]
    rows: list[MethodRow]
    baseline: str | None  # "ew@<version>" used for delta_p
    notes: list[str]
    n_files: int
    has_stl_reference: bool


@dataclass
class AggregateRow:
    method: str  # name@version
    level: str
    n_envs: int
    mean_rank: float
    iqm: float
    iqm_ci: stats.Interval | None
    n_scores: int
    verdicts: dict[str, int]
    # one verdict across the envs where the method has a litmus test: the stratified
    # bootstrap-t interval of the mean over envs of the per-env mean paired difference
    litmus: stats.LitmusResult | None = None


@dataclass(frozen=True)
class MethodCard:
    """Who made a method and where it is described: ``submissions/<name>/submission.yaml``.

    Presentation only: no number on the leaderboard depends on it.
    """

    name: str
    authors: tuple[str, ...]
    paper: str | None  # an http(s) URL
    description: str | None


@dataclass
class Leaderboard:
    groups: list[GroupBoard]
    aggregate: list[AggregateRow]
    aggregate_groups: list[GroupKey]
    exclusions: list[Exclusion]
    n_files: int
    n_boot: int
    seed: int
    mtlbench_version: str
    registry_check: str
    methods: dict[str, MethodCard] = field(default_factory=dict)  # method name -> card


@dataclass
class BuildReport:
    """What :func:`build_leaderboard` did: the files written and what was left out, and why."""

    leaderboard: Leaderboard
    outputs: list[Path] = field(default_factory=list)

    @property
    def exclusions(self) -> list[Exclusion]:
        return self.leaderboard.exclusions

    @property
    def groups(self) -> list[str]:
        return [g.key.label for g in self.leaderboard.groups]

    def summary(self) -> str:
        lb = self.leaderboard
        used = lb.n_files - len(lb.exclusions)
        lines = [
            f"read {lb.n_files} result file(s): {used} used, {len(lb.exclusions)} excluded; "
            f"{len(lb.groups)} leaderboard group(s)",
            *(f"  excluded {e.path}: {e.reason}" for e in lb.exclusions),
            *(f"  wrote {p}" for p in self.outputs),
        ]
        return "\n".join(lines)

    __str__ = summary

"""Build the leaderboard from stored result files, deterministically.

``build_leaderboard()`` reads every ``<results_dir>/<env-id>/<method>@<version>/seed-<k>.json``
(AlgoPerf's "scoring reads only logs": nothing else is consulted, so any past leaderboard
can be rebuilt), sets aside the files it cannot use with the reason (the **Exclusions**),
groups the rest by ``(env_id, spec_hash, evaluator_version)`` (one *leaderboard version*
per group, never mixed) and computes, per group and method, the numbers that
:mod:`~mtlbench.leaderboard.render_text` writes to ``README.md`` and ``leaderboard.csv``
and :mod:`~mtlbench.leaderboard.render_html` to ``index.html``. The rules are in :mod:`mtlbench.leaderboard.stats` and docs/leaderboard.md.

The same result files give the same bytes out: files are sorted by path after discovery,
every bootstrap draws from a fresh ``numpy.random.default_rng(seed)``, and no output holds a
timestamp or an absolute path.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mtlbench.harness.results import RunResult
from mtlbench.leaderboard import render_html, render_text, stats
from mtlbench.leaderboard.model import (
    BASELINE,
    GRADIENT_REFERENCE,
    LOSS_REFERENCE,
    AggregateRow,
    BuildReport,
    Exclusion,
    GroupBoard,
    GroupKey,
    Leaderboard,
    MethodRow,
    RegistryLookup,
    Run,
    reference_for,
)
from mtlbench.leaderboard.read import (
    higher_is_better,
    method_cards,
    read_all,
    registry_lookup,
    submissions_folder,
)

__all__ = [
    "AggregateRow",
    "BuildReport",
    "Exclusion",
    "GroupBoard",
    "GroupKey",
    "Leaderboard",
    "MethodRow",
    "RegistryLookup",
    "build_leaderboard",
    "compute_leaderboard",
    "registry_lookup",
]


# --------------------------------------------------------------------------- reading
def _discover(results_dir: Path) -> list[Path]:
    return sorted(results_dir.rglob("seed-*.json"))


# ------------------------------------------------------------------------- computing
def _pick(methods: dict[str, dict[int, Run]], name: str, notes: list[str], role: str) -> str | None:
    """The ``name@version`` playing ``role``: the version with the most usable seeds."""
    keys = [k for k in methods if k.rpartition("@")[0] == name]
    if not keys:
        return None
    keys.sort(key=lambda k: (-sum(r.ok for r in methods[k].values()), k))
    if len(keys) > 1:
        notes.append(f"several versions of {name!r}; {keys[0]} is the {role} (most usable seeds)")
    return keys[0]


def _curve(
    runs: list[Run], baseline: Mapping[int, RunResult], delta_p: Any, hib: dict[str, dict[str, bool]]
) -> list[tuple[int, float]]:
    """Validation delta_p vs EW over training: per seed and epoch against EW's validation
    metrics at the same seed and epoch (paired), then the mean over seeds at each epoch.

    Each run's own ``val_score`` is relative to a run-local baseline (its first evaluation),
    so it cannot be compared across methods; this can.
    """
    by_epoch: dict[int, list[float]] = defaultdict(list)
    for run in runs:
        base = baseline.get(run.result.seed)
        if base is None:
            continue
        base_val = {ev.epoch: ev.val for ev in base.evaluations}
        for ev in run.result.evaluations:
            if ev.epoch in base_val:
                value = delta_p(ev.val, base_val[ev.epoch], hib)
                if math.isfinite(value):
                    by_epoch[ev.epoch].append(value)
    return [(epoch, float(np.mean(v))) for epoch, v in sorted(by_epoch.items())]


def _group_board(
    key: GroupKey, runs: list[Run], *, n_boot: int, seed: int, delta_p: Any, delta_m: Any
) -> GroupBoard:
    spec = runs[0].result.spec
    hib = higher_is_better(spec)
    metric_names = [(t, m) for t, ms in hib.items() for m in ms]
    notes: list[str] = []
    methods: dict[str, dict[int, Run]] = defaultdict(dict)
    for run in runs:
        methods[f"{run.result.method.name}@{run.result.method.version}"][run.result.seed] = run

    baseline_key = _pick(methods, BASELINE, notes, "delta_p baseline")
    baseline: dict[int, Any] = {}
    if baseline_key is None:
        notes.append(f"no {BASELINE!r} runs: delta_p (and the litmus test) cannot be computed")
    else:
        for s, run in sorted(methods[baseline_key].items()):
            if run.ok:
                baseline[s] = run.result
            else:
                notes.append(
                    f"seed {s}: the baseline {baseline_key} failed ({run.failure}); no delta_p at this seed"
                )

    def dp(result: RunResult, s: int, which: str = "selected") -> float | None:
        if s not in baseline:
            return None
        sel = getattr(result, which)
        base = getattr(baseline[s], which)
        if sel is None or base is None:
            return None
        try:
            return float(delta_p(sel.test, base.test, hib))
        except ValueError as err:
            msg = f"seed {s}: delta_p undefined ({err})"
            if msg not in notes:
                notes.append(msg)
            return None

    ref_keys = {
        ref: _pick(methods, ref, notes, "litmus reference") for ref in (LOSS_REFERENCE, GRADIENT_REFERENCE)
    }
    stl = spec.get("stl_reference")
    rows: list[MethodRow] = []
    per_seed_dp: dict[str, dict[int, float]] = {}
    for mkey in sorted(methods):
        by_seed = methods[mkey]
        per_seed_dp[mkey] = {
            s: v for s, r in sorted(by_seed.items()) if r.ok and (v := dp(r.result, s)) is not None
        }

    for mkey in sorted(methods):
        by_seed = methods[mkey]
        ok_runs = [r for _, r in sorted(by_seed.items()) if r.ok]
        name, _, version = mkey.rpartition("@")
        levels = sorted({r.result.method.level for r in by_seed.values()})
        if len(levels) > 1:
            notes.append(f"{mkey}: runs disagree on the level {levels}; using {levels[0]!r}")
        level = "gradient" if "+" in name else levels[0]
        metrics = {
            (t, m): stats.mean_std([r.result.selected.test[t][m] for r in ok_runs])  # type: ignore[union-attr]
            for t, m in metric_names
        }
        dps = per_seed_dp[mkey]
        dp_values = np.array(list(dps.values()), dtype=float)
        last_values = [
            v for s, r in sorted(by_seed.items()) if r.ok and (v := dp(r.result, s, "last")) is not None
        ]
        dm: tuple[float, float] | None = None
        if stl:
            try:
                dm = stats.mean_std([delta_m(r.result.selected.test, stl, hib) for r in ok_runs])  # type: ignore[union-attr]
            except ValueError as err:
                notes.append(f"delta_m undefined: {err}")
                stl = None
        # per-seed scores for ranks and the IQM: delta_p, or -inf for a failed run; seeds
        # without a baseline are left out, and a group without any EW run has no scores
        scored = (
            [-math.inf if not r.ok else dps[s] for s, r in sorted(by_seed.items()) if (not r.ok) or s in dps]
            if baseline_key is not None
            else []
        )
        # the litmus test
        reference = reference_for(name, level)
        ref_key = ref_keys[reference]
        litmus_result: stats.LitmusResult | None = None
        note = ""
        if name == reference:
            note = "reference"
        elif ref_key is None:
            note = f"no {reference} runs"
        else:
            ref_dp = per_seed_dp[ref_key]
            diffs: list[float] = []
            dropped: list[str] = []
            for s, run in sorted(by_seed.items()):
                if not run.ok:
                    diffs.append(-math.inf)
                elif s in dps and s in ref_dp:
                    diffs.append(dps[s] - ref_dp[s])
                else:
                    why = "no baseline" if s not in dps else f"{reference} has no usable run"
                    dropped.append(f"seed {s} ({why})")
            litmus_result = stats.litmus(diffs, reference=ref_key, n_boot=n_boot, seed=seed)
            if dropped:
                note = "unpaired: " + ", ".join(dropped)
        rows.append(
            MethodRow(
                name=name,
                version=version,
                level=level,
                n_runs=len(by_seed),
                n_ok=len(ok_runs),
                failures=[f"seed {s}: {r.failure}" for s, r in sorted(by_seed.items()) if not r.ok],
                metrics=metrics,
                delta_p_by_seed=dps,
                delta_p=stats.mean_std(dp_values),
                delta_p_ci=stats.mean_interval(dp_values, n_boot=n_boot, seed=seed)
                if dp_values.size >= 2
                else None,
                delta_p_last=float(np.mean(last_values)) if last_values else math.nan,
                delta_m=dm,
                litmus=litmus_result,
                litmus_note=note,
                time_per_step_s=_mean([r.result.cost.time_per_step_s for r in ok_runs]),
                peak_memory_mb=_mean([r.result.cost.peak_memory_mb for r in ok_runs]),
                curve=_curve(ok_runs, baseline, delta_p, hib),
                scores=scored,
                env_score=float(np.mean(scored)) if scored else math.nan,
            )
        )
    ranked = [r for r in rows if not math.isnan(r.env_score)]
    for row, rank in zip(ranked, stats.average_ranks([r.env_score for r in ranked])):
        row.rank = float(rank)
    rows.sort(key=_row_order)
    return GroupBoard(
        key=key,
        metric_names=metric_names,
        higher_is_better=hib,
        rows=rows,
        baseline=baseline_key,
        notes=notes,
        n_files=len(runs),
        has_stl_reference=bool(spec.get("stl_reference")),
    )


def _mean(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else math.nan


def _row_order(row: MethodRow) -> tuple[float, float, str]:
    # best first by the ranking score, then by delta_p over usable seeds, then by id
    score = -row.env_score if not math.isnan(row.env_score) else math.inf
    dp = -row.delta_p[0] if not math.isnan(row.delta_p[0]) else math.inf
    return (score, dp, row.key)


def _aggregate_groups(groups: list[GroupBoard]) -> list[GroupBoard]:
    """One group per environment (namespace/name): its highest version, then most runs."""
    from mtlbench.registration import parse_env_id

    best: dict[tuple[str | None, str], tuple[tuple[int, int, str, str], GroupBoard]] = {}
    for g in groups:
        try:
            namespace, name, version = parse_env_id(g.key.env_id)
        except Exception:
            namespace, name, version = None, g.key.env_id, None
        rank = (version or 0, g.n_files, g.key.evaluator_version, g.key.spec_hash)
        k = (namespace, name)
        if k not in best or rank > best[k][0]:
            best[k] = (rank, g)
    return sorted((g for _, g in best.values()), key=lambda g: g.key)


def _aggregate(groups: list[GroupBoard], *, n_boot: int, seed: int) -> list[AggregateRow]:
    per_method: dict[str, list[tuple[GroupBoard, MethodRow]]] = defaultdict(list)
    for g in groups:
        for row in g.rows:
            per_method[row.key].append((g, row))
    out = []
    for mkey, entries in sorted(per_method.items()):
        ranks = [row.rank for _, row in entries if row.rank is not None]
        strata = []
        for _, row in entries:
            if row.scores:
                strata.append(np.array(row.scores, dtype=float))
        pooled = np.concatenate(strata) if strata else np.array([])
        verdicts: dict[str, int] = defaultdict(int)
        tested = [row.litmus for _, row in entries if row.litmus is not None]
        for lit in tested:
            verdicts[lit.verdict] += 1
        across = (
            stats.litmus_across(
                [lit.differences for lit in tested],
                reference=", ".join(sorted({lit.reference for lit in tested})),
                n_boot=n_boot,
                seed=seed,
            )
            if tested
            else None
        )
        out.append(
            AggregateRow(
                method=mkey,
                level=entries[0][1].level,
                n_envs=len(ranks),
                mean_rank=float(np.mean(ranks)) if ranks else math.nan,
                iqm=float(stats.iqm(pooled)) if pooled.size else math.nan,
                iqm_ci=stats.stratified_bootstrap_iqm_ci(strata, n_boot=n_boot, seed=seed)
                if strata
                else None,
                n_scores=int(pooled.size),
                verdicts=dict(verdicts),
                litmus=across,
            )
        )
    out.sort(key=lambda a: (math.inf if math.isnan(a.mean_rank) else a.mean_rank, a.method))
    return out


def compute_leaderboard(
    runs: list[Run],
    exclusions: list[Exclusion],
    *,
    n_files: int,
    n_boot: int = 10_000,
    seed: int = 0,
    registry_check: str = "off",
) -> Leaderboard:
    """Group usable runs and compute every table (pure: no file access)."""
    from mtlbench._version import __version__
    from mtlbench.evaluation import delta_m, delta_p

    by_group: dict[GroupKey, list[Run]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r.path):
        r = run.result
        by_group[GroupKey(r.env_id, r.evaluator_version, r.spec_hash)].append(run)
    groups = [
        _group_board(key, by_group[key], n_boot=n_boot, seed=seed, delta_p=delta_p, delta_m=delta_m)
        for key in sorted(by_group)
    ]
    agg_groups = _aggregate_groups(groups)
    return Leaderboard(
        groups=groups,
        aggregate=_aggregate(agg_groups, n_boot=n_boot, seed=seed),
        aggregate_groups=[g.key for g in agg_groups],
        exclusions=sorted(exclusions, key=lambda e: e.path),
        n_files=n_files,
        n_boot=n_boot,
        seed=seed,
        mtlbench_version=__version__,
        registry_check=registry_check,
    )


def _write_atomic(path: Path, data: bytes) -> None:
    from mtlbench.harness.results import atomic_write

    atomic_write(path, data)  # mode 0666 less the umask, like a normal file write


def build_leaderboard(
    results_dir: str | os.PathLike[str] = "leaderboard/results",
    out_dir: str | os.PathLike[str] = "leaderboard",
    *,
    n_boot: int = 10_000,
    seed: int = 0,
    registry: RegistryLookup | Literal["default"] | None = "default",
    formats: tuple[str, ...] = ("md", "csv", "html"),
    submissions: str | os.PathLike[str] | Literal["default"] | None = "default",
) -> BuildReport:
    """Read every result file under ``results_dir`` and write the leaderboard to ``out_dir``.

    ``registry`` maps an env id to its registered spec hash (``None`` when not registered):
    files of unknown envs or of another spec hash are excluded. ``"default"`` asks
    mtlbench's registry and turns the check off when it cannot be loaded; ``None`` turns
    it off (every stored env version then stays buildable on its own). Writes
    ``README.md``, ``leaderboard.csv`` and ``index.html`` (``formats`` picks).

    ``submissions`` is the folder whose ``<name>/submission.yaml`` give each method's
    authors, paper and description on the page (``"default"``: ``./submissions``, else the
    clone's; ``None``: none). They change no number.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    results = Path(results_dir)
    if not results.is_dir():
        raise FileNotFoundError(
            f"results folder {results} does not exist; run `mtlbench benchmark` first or pass results_dir"
        )
    if registry == "default":
        lookup, check = registry_lookup()
    elif registry is None:
        lookup, check = None, "off"
    else:
        lookup, check = registry, "on (custom lookup)"
    paths = _discover(results)
    runs, exclusions = read_all(results, paths, lookup)
    board = compute_leaderboard(
        runs, exclusions, n_files=len(paths), n_boot=n_boot, seed=seed, registry_check=check
    )
    folder = submissions_folder() if submissions == "default" else submissions
    board.methods = method_cards(None if folder is None else Path(folder))
    out = Path(out_dir)
    report = BuildReport(board)
    writers: dict[str, tuple[str, Callable[[Leaderboard], bytes]]] = {
        "md": ("README.md", render_text.markdown),
        "csv": ("leaderboard.csv", render_text.csv_table),
        "html": ("index.html", render_html.html_page),
    }
    unknown = set(formats) - set(writers)
    if unknown:
        raise ValueError(f"unknown formats {sorted(unknown)}; expected some of {sorted(writers)}")
    for fmt in ("md", "csv", "html"):
        if fmt in formats:
            filename, writer = writers[fmt]
            _write_atomic(out / filename, writer(board))
            report.outputs.append(out / filename)
    return report

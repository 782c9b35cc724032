"""``mtlbench litmus``: screen one method against random weighting on the offline tier.

The litmus test of Lin et al. (TMLR 2022): a loss-level method must beat random loss
weighting (RLW), a gradient-level one (or a composite ``a+b``) random gradient weighting
(RGW). :func:`run_litmus` trains the method on every env of the offline tier
(:data:`mtlbench.envs.tier.OFFLINE_TIER`) over :data:`DEFAULT_SEEDS`, pairs each seed with
the stored EW (the delta_p baseline) and reference runs of the same spec hash, training any
reference run that is stored nowhere, and computes the verdicts with exactly the rules of
the leaderboard (:func:`mtlbench.leaderboard.build.compute_leaderboard`): per env the
bootstrap-t interval of the mean paired delta_p difference, across envs the stratified
bootstrap-t interval of the mean of per-env means (:mod:`mtlbench.leaderboard.stats`).

References are read from the results folder first, then from the published results
(:data:`PUBLISHED_RESULTS`); new runs are written to the results folder only. It lives in
:mod:`mtlbench.leaderboard` because it is the leaderboard's statistics applied to a fresh
grid: it imports the harness, never the other way round. docs/litmus.md says what a verdict
means and what it does not.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mtlbench.harness.grid import run_grid
from mtlbench.harness.results import ResultFileError, RunResult, read_result
from mtlbench.harness.runner import MethodRef, RunRequest
from mtlbench.harness.storage import is_done
from mtlbench.leaderboard import stats
from mtlbench.leaderboard.build import (
    BASELINE,
    GRADIENT_REFERENCE,
    LOSS_REFERENCE,
    AggregateRow,
    MethodRow,
    Run,
    compute_leaderboard,
)
from mtlbench.leaderboard.model import reference_for
from mtlbench.leaderboard.read import run_failure

__all__ = [
    "DEFAULT_SEEDS",
    "PUBLISHED_RESULTS",
    "EnvVerdict",
    "LitmusError",
    "LitmusReport",
    "resolve_method",
    "run_litmus",
]

#: Seeds of a litmus run: the fewest that can give a verdict (stats.MIN_PAIRED_SEEDS).
#: With the references stored, the method alone is trained: 4 envs x 5 seeds x about 45 s
#: is the 15 minutes on 2 CPU cores that issue 12 budgets; more seeds narrow the intervals
#: (`--seeds`), fewer can only give "insufficient seeds".
DEFAULT_SEEDS: tuple[int, ...] = tuple(range(stats.MIN_PAIRED_SEEDS))
#: the results published with mtlbench (a clone's leaderboard/results), read for references
PUBLISHED_RESULTS = Path(__file__).resolve().parents[2] / "leaderboard" / "results"
#: time per run assumed for the progress bar's ETA when no run of an env is stored (s)
DEFAULT_RUN_SECONDS = 45.0
N_BOOT = 10_000


class LitmusError(ValueError):
    """Bad input to ``mtlbench litmus`` (one line naming what is wrong and how to fix it)."""


@dataclass(frozen=True)
class EnvVerdict:
    """The litmus result on one env (``result`` is None when the test could not be run)."""

    env_id: str
    result: stats.LitmusResult | None
    note: str  # unpaired seeds, or why there is no test


@dataclass
class LitmusReport:
    method: str  # name@version
    level: str
    reference: str  # rlw or rgw
    seeds: tuple[int, ...]
    envs: list[EnvVerdict]
    overall: stats.LitmusResult | None
    results_dir: Path
    reference_dirs: list[Path]
    trained: int = 0  # runs trained by this call
    reused: dict[str, int] = field(default_factory=dict)  # folder -> stored runs used
    failed: list[str] = field(default_factory=list)  # "path: status: message"

    def table(self) -> str:
        """The verdicts as plain text: one line per env and one overall, with interval and n."""
        head = (
            f"litmus: {self.method} ({self.level} level) vs {self.reference}, paired by seed; "
            f"d = delta_p({self.method.rpartition('@')[0]}) - delta_p({self.reference}), "
            f"delta_p in % vs {BASELINE}; seeds {','.join(map(str, self.seeds))}"
        )
        rows: list[tuple[str, ...]] = [("env", "n", "mean d", "95% interval", "verdict", "interval")]
        for ev in self.envs:
            rows.append(_row(ev.env_id, ev.result, ev.note))
        n_envs = len(self.envs)
        rows.append(_row(f"across {n_envs} env{'s' if n_envs != 1 else ''}", self.overall, ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [head, ""]
        for i, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if i == 0 or i == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
        notes = [f"{ev.env_id}: {ev.note}" for ev in self.envs if ev.note]
        if notes:
            lines += ["", *notes]
        stored = ", ".join(f"{n} from {d}" for d, n in self.reused.items() if n) or "none"
        lines += [
            "",
            f"runs: {self.trained} trained into {self.results_dir}; stored runs used: {stored}",
            "pass: the interval lies above 0; fail: below 0; inconclusive: it contains 0; "
            f"insufficient seeds: fewer than {stats.MIN_PAIRED_SEEDS} paired seeds in an env. "
            "A screen on small offline envs, not the paper's benchmark (docs/litmus.md).",
        ]
        return "\n".join(lines)


def _fmt(x: float) -> str:
    return "-inf" if x == -math.inf else "+inf" if x == math.inf else f"{x:+.2f}"


def _row(label: str, result: stats.LitmusResult | None, note: str) -> tuple[str, ...]:
    if result is None:
        return (label, "0", "—", "—", "no test", note)
    ci = result.ci
    interval = f"[{_fmt(ci.low)}, {_fmt(ci.high)}]" if ci else "—"
    how = ci.describe() if ci else f"{stats.CI_LEVEL:.0%} interval needs 2 pairs, n={result.n_pairs}"
    return (label, str(result.n_pairs), _fmt(result.mean_diff), interval, result.verdict, how)


# ---------------------------------------------------------------------------- the method
def resolve_method(target: str | os.PathLike[str]) -> tuple[MethodRef, str]:
    """``(MethodRef, level)`` for a submission folder or a built-in method id."""
    from mtlbench import policies

    path = Path(target)
    if path.is_dir() or path.name == "submission.yaml":
        from mtlbench.harness.submission import load_submission

        sub = load_submission(path)
        sub.make_policy()  # the class's name and level must match the YAML (one clear error)
        ref, level = sub.method_ref(), sub.level
    else:
        name = str(target)
        if os.sep in name or name.endswith((".yaml", ".yml")):
            raise LitmusError(f"{name!r} is not a submission folder (no such directory)")
        try:
            classes = [policies.load(part) for part in name.split("+")]
        except policies.UnknownPolicy as err:
            raise LitmusError(
                f"{name!r} is neither a submission folder nor a built-in method: {err.args[0]} "
                "(`mtlbench methods` lists them)"
            ) from None
        ref = MethodRef.builtin(name)
        level = "gradient" if len(classes) > 1 else classes[0].level
    if ref.name in (LOSS_REFERENCE, GRADIENT_REFERENCE):
        raise LitmusError(
            f"{ref.name!r} is a litmus reference itself; the test compares another method with it"
        )
    return ref, level


# ------------------------------------------------------------------------------- running
def _stored(request: RunRequest, folders: Sequence[Path]) -> tuple[Path, RunResult] | None:
    """The first folder holding a final result of ``request`` (same spec hash and version)."""
    for folder in folders:
        candidate = replace(request, results_dir=str(folder))
        if is_done(candidate):
            try:
                return folder, read_result(candidate.path)
            except ResultFileError:  # pragma: no cover (is_done has just read it)
                continue
    return None


def _estimate_seconds(env_id: str, folders: Sequence[Path]) -> float:
    """Mean wall time of the runs stored for ``env_id`` (the ETA's unit), or the default."""
    from mtlbench.registration import spec

    times: list[float] = []
    for folder in folders:
        env_dir = folder / spec(env_id).id
        for path in sorted(env_dir.glob("*/seed-*.json"))[:50] if env_dir.is_dir() else []:
            try:
                result = read_result(path)
            except ResultFileError:
                continue
            if result.status == "ok" and result.cost.wall_time_s > 0:
                times.append(result.cost.wall_time_s)
    return sum(times) / len(times) if times else DEFAULT_RUN_SECONDS


def run_litmus(
    target: str | os.PathLike[str],
    *,
    results_dir: str | os.PathLike[str],
    envs: Sequence[str] | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    reference_dirs: Sequence[str | os.PathLike[str]] | None = None,
    workers: int | None = None,
    threads: int | None = None,
    device: str | None = None,
    backend: str = "local",
    progress: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> LitmusReport:
    """Train ``target`` on ``envs`` (default: the offline tier) and compute its litmus verdicts.

    ``reference_dirs`` (default: the published results) are read, never written; new runs
    go to ``results_dir``, whose stored runs are reused first. ``overrides`` change protocol
    fields (smoke tests: the runs are unofficial and match only references with the same
    overrides).
    """
    from mtlbench.envs.tier import OFFLINE_TIER
    from mtlbench.registration import spec

    method, level = resolve_method(target)
    env_ids = list(envs) if envs is not None else list(OFFLINE_TIER)
    if not env_ids:
        raise LitmusError("no envs given")
    if not seeds:
        raise LitmusError("no seeds given")
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise LitmusError(f"seeds must be distinct and >= 0, got {list(seeds)}")
    env_ids = [spec(e).id for e in env_ids]  # unknown ids fail here, before anything runs
    if len(set(env_ids)) != len(env_ids):
        raise LitmusError(f"an env is given twice: {env_ids}")
    out = Path(results_dir)
    read_only = [Path(d) for d in (reference_dirs if reference_dirs is not None else [PUBLISHED_RESULTS])]
    read_only = [d for d in read_only if d.resolve() != out.resolve()]
    reference = reference_for(method.name, level)

    def request(env_id: str, m: MethodRef, seed: int) -> RunRequest:
        return RunRequest(
            env_id=env_id,
            method=m,
            seed=seed,
            results_dir=str(out),
            device=device,
            threads=threads,
            overrides=dict(overrides or {}),
        )

    refs = [MethodRef.builtin(n) for n in (BASELINE, reference) if n != method.name]
    report = LitmusReport(
        method=f"{method.name}@{method.version}",
        level=level,
        reference=f"{reference}@1",
        seeds=tuple(seeds),
        envs=[],
        overall=None,
        results_dir=out,
        reference_dirs=read_only,
        reused={str(d): 0 for d in (out, *read_only)},
    )
    todo: list[RunRequest] = []
    found: dict[tuple[str, str, int], tuple[Path, RunResult]] = {}
    for env_id in env_ids:
        for seed in seeds:
            req = request(env_id, method, seed)
            stored = _stored(req, [out])  # the method's own runs: only this call's folder
            if stored is None:
                todo.append(req)
            else:
                found[(env_id, method.name, seed)] = stored
            for ref in refs:
                req = request(env_id, ref, seed)
                stored = _stored(req, [out, *read_only])
                if stored is None:
                    todo.append(req)
                else:
                    found[(env_id, ref.name, seed)] = stored
    for folder, _ in found.values():
        report.reused[str(folder)] += 1

    estimate = {e: _estimate_seconds(e, [out, *read_only]) for e in env_ids}
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=sum(estimate[r.env_id] for r in todo),
            desc=f"litmus {report.method}: {len(todo)} runs",
            unit="s",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| est. {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]",
        )

    def on_result(req: RunRequest, result: RunResult) -> None:
        found[(req.env_id, req.method.name, req.seed)] = (out, result)
        if result.status != "ok":
            report.failed.append(f"{req.path}: {result.status}: {result.message}")
        if bar is not None:
            bar.update(estimate[req.env_id])

    try:
        if todo:
            run_grid(todo, backend=backend, workers=workers, progress=False, on_result=on_result)
    finally:
        if bar is not None:
            bar.close()
    report.trained = len(todo)
    for (env_id, name, seed), (folder, result) in found.items():
        if name == method.name and result.status != "ok" and folder == out:
            line = f"{request(env_id, method, seed).path}: {result.status}: {result.message}"
            if line not in report.failed:
                report.failed.append(line)

    runs = [
        Run(f"{folder}/{r.env_id}/{name}/seed-{seed}", r, run_failure(r))
        for (_, name, seed), (folder, r) in sorted(found.items(), key=lambda kv: kv[0])
    ]
    board = compute_leaderboard(runs, [], n_files=len(runs), n_boot=N_BOOT, seed=0)
    key = report.method
    for env_id in env_ids:
        rows = [r for g in board.groups if g.key.env_id == env_id for r in g.rows if r.key == key]
        row: MethodRow | None = rows[0] if rows else None
        if row is None:
            report.envs.append(EnvVerdict(env_id, None, "no runs"))
        else:
            report.envs.append(EnvVerdict(env_id, row.litmus, row.litmus_note))
    agg: list[AggregateRow] = [a for a in board.aggregate if a.method == key]
    # one verdict over every env asked for, or none (never over the envs that happened to work)
    complete = all(ev.result is not None for ev in report.envs)
    report.overall = agg[0].litmus if agg and complete else None
    return report

"""Δp against another env's baseline: the paper's architecture table (Lin et al. 2022, Table 4).

The leaderboard compares every env with its own EW (``ew`` on the same env, same seed), so
on ``nyuv2-mtan-v1`` EW's Δp is 0 by construction and a number says how much a weighting
method adds *on top of* the architecture. Table 4 of the paper instead reports every
(architecture, method) pair against **EW with hard parameter sharing**, so that the gain of
the architecture itself shows. :func:`cross_env_delta_p` computes that second number from
the stored result files:

    Δp(method on nyuv2-<arch>) = delta_p(test metrics at the selected epoch,
                                         test metrics of EW on nyuv2-hps, same seed)

with the same ``delta_p`` (:func:`mtlbench.evaluation.scores.delta_p`) and the same run
filter as the leaderboard (official runs with status ``ok`` and a selected evaluation).
The two envs must differ only in the model (architecture / backbone and their kwargs): any
other difference (data, split, tasks, metrics, optimiser, budget, evaluator) is an error
that names the differing fields, since a relative change across protocols would be
meaningless. :func:`architecture_baseline_env` names the paper's baseline env for an env of
an architecture family (``nyuv2-<arch>-v<k>`` -> ``nyuv2-hps-v<k>``).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtlbench.evaluation.scores import delta_p
from mtlbench.harness.results import ResultFileError, RunResult, read_result
from mtlbench.leaderboard import stats

__all__ = [
    "ARCHITECTURE_FAMILIES",
    "CrossEnvDeltaP",
    "architecture_baseline_env",
    "cross_env_delta_p",
    "read_env_results",
]

#: dataset prefix -> the architecture whose EW is the paper's baseline for the family
ARCHITECTURE_FAMILIES: dict[str, str] = {"nyuv2": "hps"}

#: spec fields that may differ between an env and its cross-env baseline
_MODEL_FIELDS = frozenset({"id", "description", "model", "superseded_by"})

_ENV_ID = re.compile(r"^(?P<family>[a-z0-9]+)-(?P<arch>[a-z0-9_-]+)-v(?P<version>\d+)$")


def architecture_baseline_env(env_id: str) -> str | None:
    """The env whose EW is the paper's baseline for ``env_id``; ``None`` if it has no family.

    ``nyuv2-mtan-v1`` -> ``nyuv2-hps-v1`` (Table 4: Δp against EW with HPS), and
    ``nyuv2-hps-v1`` -> ``nyuv2-hps-v1`` (there the two baselines coincide).
    """
    match = _ENV_ID.match(env_id)
    if match is None or match["family"] not in ARCHITECTURE_FAMILIES:
        return None
    return f"{match['family']}-{ARCHITECTURE_FAMILIES[match['family']]}-v{match['version']}"


@dataclass(frozen=True)
class CrossEnvDeltaP:
    """Δp of one method on ``env_id`` against ``baseline`` on ``baseline_env``, per seed."""

    env_id: str
    method: str  # name@version
    baseline_env: str
    baseline: str  # name@version
    by_seed: dict[int, float]
    mean_std: tuple[float, float]
    unpaired_seeds: list[int] = field(default_factory=list)  # runs without a baseline run


def _usable(result: RunResult) -> bool:
    if not result.official or result.status != "ok" or result.selected is None:
        return False
    return all(math.isfinite(v) for ms in result.selected.test.values() for v in ms.values())


def read_env_results(results_dir: str | Path, env_id: str) -> dict[str, dict[int, RunResult]]:
    """``{name@version: {seed: result}}`` of the usable runs under ``<results_dir>/<env_id>/``.

    Usable as on the leaderboard: official, status ``ok``, a selected evaluation with finite
    test metrics. Unreadable files are skipped. Raises ``ValueError`` when the runs were
    made under more than one spec (hash): a Δp across protocols is not defined.
    """
    runs: dict[str, dict[int, RunResult]] = defaultdict(dict)
    hashes: set[str] = set()
    for path in sorted((Path(results_dir) / env_id).glob("*@*/seed-*.json")):
        try:
            result = read_result(path)
        except ResultFileError:
            continue
        if result.env_id != env_id or not _usable(result):
            continue
        hashes.add(result.spec_hash)
        runs[f"{result.method.name}@{result.method.version}"][result.seed] = result
    if len(hashes) > 1:
        raise ValueError(
            f"{env_id}: results were made under {len(hashes)} specs ({', '.join(sorted(hashes))}); "
            "keep the runs of one spec in the results folder"
        )
    return dict(runs)


def _spec_differences(spec: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    keys = (set(spec) | set(other)) - _MODEL_FIELDS
    return sorted(k for k in keys if spec.get(k) != other.get(k))


def _higher_is_better(spec: Mapping[str, Any]) -> dict[str, dict[str, bool]]:
    return {
        str(t["name"]): {str(m["name"]): bool(m["higher_is_better"]) for m in t["metrics"]}
        for t in spec["tasks"]
    }


def _pick_baseline(runs: Mapping[str, Mapping[int, RunResult]], name: str) -> str | None:
    keys = sorted((k for k in runs if k.rpartition("@")[0] == name), key=lambda k: (-len(runs[k]), k))
    return keys[0] if keys else None


def cross_env_delta_p(
    results_dir: str | Path,
    env_id: str,
    baseline_env: str | None = None,
    *,
    baseline_method: str = "ew",
) -> list[CrossEnvDeltaP]:
    """Δp of every method on ``env_id`` against ``baseline_method`` on ``baseline_env``.

    ``baseline_env`` defaults to :func:`architecture_baseline_env` (the paper's Table 4
    baseline). Seeds are paired (seed ``s`` of the method against seed ``s`` of the
    baseline); a seed without a baseline run is listed in ``unpaired_seeds``. When several
    versions of the baseline method exist, the one with the most seeds is used (as on the
    leaderboard). Raises ``ValueError`` when ``env_id`` has no architecture family and no
    ``baseline_env`` is given, when the baseline env has no usable ``baseline_method``
    run, or when the two envs' specs differ in anything but the model.
    """
    if baseline_env is None:
        baseline_env = architecture_baseline_env(env_id)
        if baseline_env is None:
            families = ", ".join(f"{f}-<arch>-v<k>" for f in ARCHITECTURE_FAMILIES)
            raise ValueError(f"{env_id!r} has no architecture family ({families}); pass baseline_env")
    runs = read_env_results(results_dir, env_id)
    base_runs = read_env_results(results_dir, baseline_env)
    base_key = _pick_baseline(base_runs, baseline_method)
    if base_key is None:
        raise ValueError(
            f"no usable {baseline_method!r} run of {baseline_env} under {results_dir}; "
            f"run it first (mtlbench run --env {baseline_env} --method {baseline_method} --seeds 0,1,2)"
        )
    baseline = base_runs[base_key]
    if not runs:
        return []
    some_run = next(iter(next(iter(runs.values())).values()))
    some_base = next(iter(baseline.values()))
    differences = _spec_differences(some_run.spec, some_base.spec)
    if differences:
        raise ValueError(
            f"{env_id} and {baseline_env} differ in {', '.join(differences)}, not only in the model; "
            "a Δp across them would compare different protocols"
        )
    hib = _higher_is_better(some_run.spec)
    out: list[CrossEnvDeltaP] = []
    for key in sorted(runs):
        by_seed: dict[int, float] = {}
        unpaired: list[int] = []
        for seed, result in sorted(runs[key].items()):
            if seed not in baseline:
                unpaired.append(seed)
                continue
            selected, base = result.selected, baseline[seed].selected
            assert selected is not None and base is not None  # _usable
            by_seed[seed] = float(delta_p(selected.test, base.test, hib))
        out.append(
            CrossEnvDeltaP(
                env_id=env_id,
                method=key,
                baseline_env=baseline_env,
                baseline=base_key,
                by_seed=by_seed,
                mean_std=stats.mean_std(np.array(list(by_seed.values()), dtype=float)),
                unpaired_seeds=unpaired,
            )
        )
    return out

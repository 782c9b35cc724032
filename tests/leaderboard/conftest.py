"""Hand-built result files for a fake two-task env, with known delta_p values per seed.

Every metric of a method is EW's metric of the same seed scaled by ``1 + x/100`` (higher is
better) or ``1 - x/100`` (lower is better), so its delta_p vs EW is exactly ``x`` percent
(up to rounding). The methods, by delta_p at seeds 0, 1, 2:

========================  ============  =====================================================
method                    level         delta_p per seed
========================  ============  =====================================================
ew                        loss          0, 0, 0 (the baseline)
rlw                       loss          1.0, 1.5, 0.5 (loss-level reference)
rgw                       gradient      0.8, 1.2, 1.0 (gradient-level reference)
good                      loss          6.0, 6.4, 5.6 -> clearly passes vs rlw
bad                       loss          -4.0, -3.6, -4.4 -> clearly fails
tie                       loss          identical to rlw -> differences all 0 -> inconclusive
rlw+cagrad                gradient      2.0, 2.4, 2.2 -> passes vs rgw
flaky                     loss          6.0, 6.4, then diverged at seed 2
lonely                    loss          seed 0 only -> insufficient seeds
========================  ============  =====================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mtlbench.harness.results import (
    Cost,
    Evaluation,
    MethodInfo,
    RunResult,
    Selected,
    SoftwareEnvironment,
    result_path,
    write_result,
)

ENV_ID = "toy-hps-v1"
SPEC_HASH = "a1b2c3d4e5f60718"
SEEDS = (0, 1, 2)
SPEC: dict[str, Any] = {
    "id": ENV_ID,
    "evaluator_version": "1",
    "tasks": [
        {"name": "left", "metrics": [{"name": "acc", "higher_is_better": True}]},
        {
            "name": "right",
            "metrics": [
                {"name": "acc", "higher_is_better": True},
                {"name": "err", "higher_is_better": False},
            ],
        },
    ],
    "stl_reference": {"left": {"acc": 0.9}, "right": {"acc": 0.8, "err": 0.2}},
}
METHODS: dict[str, tuple[str, list[float | None]]] = {
    "ew": ("loss", [0.0, 0.0, 0.0]),
    "rlw": ("loss", [1.0, 1.5, 0.5]),
    "rgw": ("gradient", [0.8, 1.2, 1.0]),
    "good": ("loss", [6.0, 6.4, 5.6]),
    "bad": ("loss", [-4.0, -3.6, -4.4]),
    "tie": ("loss", [1.0, 1.5, 0.5]),
    "rlw+cagrad": ("gradient", [2.0, 2.4, 2.2]),
    "flaky": ("loss", [6.0, 6.4, None]),  # None: the run diverged
    "lonely": ("loss", [3.0]),
}


def ew_metrics(seed: int) -> dict[str, dict[str, float]]:
    return {
        "left": {"acc": 0.80 + 0.01 * seed},
        "right": {"acc": 0.70 + 0.02 * seed, "err": 0.30 - 0.01 * seed},
    }


def scaled(seed: int, x: float) -> dict[str, dict[str, float]]:
    """EW's metrics at ``seed`` moved so that delta_p vs EW is ``x`` percent."""
    hib = {("left", "acc"): True, ("right", "acc"): True, ("right", "err"): False}
    return {
        task: {m: v * (1 + x / 100) if hib[(task, m)] else v * (1 - x / 100) for m, v in ms.items()}
        for task, ms in ew_metrics(seed).items()
    }


ENVIRONMENT = SoftwareEnvironment(mtlbench="0.1.0", python="3.11", torch="2.x", platform="test")


def make_result(
    method: str,
    level: str,
    seed: int,
    x: float | None,
    *,
    env_id: str = ENV_ID,
    spec_hash: str = SPEC_HASH,
    official: bool = True,
    version: str = "1",
    spec: dict[str, Any] | None = None,
) -> RunResult:
    spec = dict(spec or SPEC, id=env_id)
    cost = Cost(steps=100, wall_time_s=1.0, time_per_step_s=0.01 * (1 + len(method) % 4), device="cpu")
    common: dict[str, Any] = dict(
        env_id=env_id,
        spec=spec,
        spec_hash=spec_hash,
        evaluator_version=str(spec.get("evaluator_version", "1")),
        official=official,
        method=MethodInfo(name=method, version=version, level=level),  # type: ignore[arg-type]
        seed=seed,
        cost=cost,
        environment=ENVIRONMENT,
        created_at=f"2024-01-0{seed + 1}T00:00:00+00:00",
    )
    if x is None:
        return RunResult(status="diverged", message="loss became NaN at step 17", **common)
    evaluations = [
        Evaluation(
            epoch=e,
            step=10 * (e + 1),
            val=scaled(seed, x * e / 2),
            test=scaled(seed, x * e / 2),
            val_score=x * e / 2 + 0.1 * seed,
        )
        for e in range(3)
    ]
    best = Selected(epoch=2, val=evaluations[-1].val, test=evaluations[-1].test)
    return RunResult(status="ok", evaluations=evaluations, selected=best, last=best, **common)


def write_fixture(root: Path, methods: dict[str, tuple[str, list[float | None]]] = METHODS) -> Path:
    for method, (level, values) in methods.items():
        for seed, x in enumerate(values):
            result = make_result(method, level, seed, x)
            write_result(result_path(root, ENV_ID, method, "1", seed), result)
    return root


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    return write_fixture(tmp_path / "results")


@pytest.fixture
def add_result(results_dir: Path) -> Callable[..., Path]:
    """Write one extra result file (arguments as :func:`make_result`) in its standard place."""

    def add(method: str, level: str, seed: int, x: float | None, **kw: Any) -> Path:
        result = make_result(method, level, seed, x, **kw)
        path = result_path(results_dir, result.env_id, method, result.method.version, seed)
        return write_result(path, result)

    return add

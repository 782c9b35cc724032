"""Δp against EW on the HPS env of an architecture family (the paper's Table 4 baseline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mtlbench.harness.results import result_path, write_result
from mtlbench.leaderboard.baselines import architecture_baseline_env, cross_env_delta_p
from mtlbench.leaderboard.build import build_leaderboard
from tests.leaderboard.conftest import SPEC, make_result


def spec_for(architecture: str, **changes: Any) -> dict[str, Any]:
    return {**SPEC, "model": {"architecture": architecture, "backbone": "resnet"}, **changes}


def write(root: Path, env_id: str, method: str, seed: int, x: float, **kw: Any) -> None:
    arch = env_id.split("-")[1]
    result = make_result(method, "loss", seed, x, env_id=env_id, spec=kw.pop("spec", spec_for(arch)), **kw)
    write_result(result_path(root, env_id, method, result.method.version, seed), result)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    # EW with MTAN is 3% better than EW with HPS at every seed; "good" with MTAN 5%.
    root = tmp_path / "results"
    for seed in (0, 1, 2):
        write(root, "nyuv2-hps-v1", "ew", seed, 0.0)
        write(root, "nyuv2-mtan-v1", "ew", seed, 3.0)
        write(root, "nyuv2-mtan-v1", "good", seed, 5.0)
    return root


def test_baseline_env_of_the_architecture_family() -> None:
    assert architecture_baseline_env("nyuv2-mtan-v1") == "nyuv2-hps-v1"
    assert architecture_baseline_env("nyuv2-cross_stitch-v2") == "nyuv2-hps-v2"
    assert architecture_baseline_env("nyuv2-hps-v1") == "nyuv2-hps-v1"
    assert architecture_baseline_env("multimnist-hps-v1") is None


def test_architecture_runs_are_compared_with_ew_on_hps(results: Path) -> None:
    # Issue 14, item 21: on the leaderboard EW+MTAN is 0 by construction (its own baseline);
    # against the paper's baseline it shows the architecture's gain.
    rows = {r.method: r for r in cross_env_delta_p(results, "nyuv2-mtan-v1")}
    assert set(rows) == {"ew@1", "good@1"}
    assert rows["ew@1"].baseline_env == "nyuv2-hps-v1" and rows["ew@1"].baseline == "ew@1"
    for seed in (0, 1, 2):
        assert rows["ew@1"].by_seed[seed] == pytest.approx(3.0, abs=1e-9)
        assert rows["good@1"].by_seed[seed] == pytest.approx(5.0, abs=1e-9)
    assert rows["good@1"].mean_std[0] == pytest.approx(5.0, abs=1e-9)
    board = build_leaderboard(results, results.parent / "out", n_boot=10, registry=None, formats=("csv",))
    (mtan,) = [g for g in board.leaderboard.groups if g.key.env_id == "nyuv2-mtan-v1"]
    (ew_row,) = [r for r in mtan.rows if r.name == "ew"]
    assert ew_row.delta_p[0] == pytest.approx(0.0, abs=1e-12)  # the per-env baseline, unchanged


def test_unpaired_seeds_and_unofficial_runs(results: Path) -> None:
    write(results, "nyuv2-mtan-v1", "late", 7, 1.0)  # no EW-HPS run at seed 7
    write(results, "nyuv2-hps-v1", "ew", 8, 50.0, official=False)
    write(results, "nyuv2-mtan-v1", "late", 8, 1.0)
    (late,) = [r for r in cross_env_delta_p(results, "nyuv2-mtan-v1") if r.method == "late@1"]
    assert late.by_seed == {} and late.unpaired_seeds == [7, 8]


def test_protocol_differences_other_than_the_model_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write(root, "nyuv2-hps-v1", "ew", 0, 0.0, spec=spec_for("hps", budget={"epochs": 100}))
    write(root, "nyuv2-mtan-v1", "ew", 0, 3.0, spec=spec_for("mtan", budget={"epochs": 200}))
    with pytest.raises(ValueError, match="differ in budget"):
        cross_env_delta_p(root, "nyuv2-mtan-v1")


def test_missing_baseline_runs_name_the_command(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write(root, "nyuv2-mtan-v1", "ew", 0, 3.0)
    with pytest.raises(ValueError, match="mtlbench run --env nyuv2-hps-v1 --method ew"):
        cross_env_delta_p(root, "nyuv2-mtan-v1")
    with pytest.raises(ValueError, match="no architecture family"):
        cross_env_delta_p(root, "multimnist-hps-v1")

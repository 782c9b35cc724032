"""Building the leaderboard from hand-built result files: numbers, verdicts, groups, exclusions."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mtlbench.evaluation import delta_m
from mtlbench.leaderboard import build_leaderboard, stats
from mtlbench.leaderboard.model import GroupBoard, Leaderboard, MethodRow
from tests.leaderboard.conftest import ENV_ID, METHODS, SPEC, SPEC_HASH, scaled

N_BOOT = 2000


def _build(results_dir: Path, tmp_path: Path, **kw: object) -> Leaderboard:
    kw.setdefault("registry", None)
    kw.setdefault("formats", ("md", "csv"))
    return build_leaderboard(results_dir, tmp_path / "out", n_boot=N_BOOT, seed=0, **kw).leaderboard  # type: ignore[arg-type]


def _group(
    lb: Leaderboard, spec_hash: str = SPEC_HASH, env_id: str = ENV_ID, evaluator: str = "1"
) -> GroupBoard:
    (group,) = [
        g
        for g in lb.groups
        if (g.key.env_id, g.key.spec_hash, g.key.evaluator_version) == (env_id, spec_hash, evaluator)
    ]
    return group


def _rows(group: GroupBoard) -> dict[str, MethodRow]:
    return {r.name: r for r in group.rows}


def test_delta_p_per_seed_is_paired_with_ew(results_dir: Path, tmp_path: Path) -> None:
    rows = _rows(_group(_build(results_dir, tmp_path)))
    for name, (_, values) in METHODS.items():
        expected = {s: x for s, x in enumerate(values) if x is not None}
        got = rows[name].delta_p_by_seed
        assert got.keys() == expected.keys()
        assert all(got[s] == pytest.approx(expected[s], abs=1e-9) for s in expected), name
    assert rows["ew"].delta_p_by_seed == {0: 0.0, 1: 0.0, 2: 0.0}
    mean, std = rows["good"].delta_p
    assert mean == pytest.approx(6.0) and std == pytest.approx(0.4)


def test_litmus_verdicts_with_three_seeds_are_insufficient(results_dir: Path, tmp_path: Path) -> None:
    rows = _rows(_group(_build(results_dir, tmp_path)))
    verdicts = {n: (r.litmus.verdict if r.litmus else r.litmus_note) for n, r in rows.items()}
    # 3 paired seeds are below stats.MIN_PAIRED_SEEDS: never a pass; a failed run is a fail
    assert verdicts == {
        "ew": "insufficient seeds",
        "rlw": "reference",
        "rgw": "reference",
        "good": "insufficient seeds",
        "bad": "insufficient seeds",
        "tie": "insufficient seeds",
        "rlw+cagrad": "insufficient seeds",
        "flaky": "fail",
        "lonely": "insufficient seeds",
    }
    assert rows["good"].litmus.ci.n == 3  # type: ignore[union-attr]


# seeds 3 and 4 for the fixture's methods, keeping their mean delta_p
EXTRA_SEEDS = {
    "ew": [0.0, 0.0],
    "rlw": [1.2, 0.8],
    "rgw": [0.9, 1.1],
    "good": [6.2, 5.8],
    "bad": [-4.2, -3.8],
    "tie": [1.2, 0.8],
    "rlw+cagrad": [2.1, 2.3],
}


def _five_seeds(add_result: Callable[..., Path]) -> None:
    for name, values in EXTRA_SEEDS.items():
        for seed, x in enumerate(values, start=3):
            add_result(name, METHODS[name][0], seed, x)


def test_litmus_verdicts(results_dir: Path, tmp_path: Path, add_result: Callable[..., Path]) -> None:
    _five_seeds(add_result)
    lb = _build(results_dir, tmp_path)
    rows = _rows(_group(lb))
    verdicts = {n: (r.litmus.verdict if r.litmus else r.litmus_note) for n, r in rows.items()}
    assert verdicts == {
        "ew": "fail",  # EW is below RLW on every seed of this fixture
        "rlw": "reference",
        "rgw": "reference",
        "good": "pass",
        "bad": "fail",
        "tie": "inconclusive",
        "rlw+cagrad": "pass",
        "flaky": "fail",
        "lonely": "insufficient seeds",
    }
    assert rows["rlw+cagrad"].litmus.reference == "rgw@1"  # type: ignore[union-attr]
    assert rows["good"].litmus.reference == "rlw@1"  # type: ignore[union-attr]
    # identical to rlw: every paired difference is exactly 0, so the interval is exactly [0, 0]
    assert rows["tie"].litmus.ci == stats.Interval(0.0, 0.0, method="bootstrap-t", n=5)  # type: ignore[union-attr]
    # the across-env verdict (one env here) is the per-env one
    agg = {a.method: a for a in lb.aggregate}
    assert agg["good@1"].litmus is not None and agg["good@1"].litmus.verdict == "pass"
    assert agg["good@1"].litmus.ci == rows["good"].litmus.ci  # type: ignore[union-attr]


def test_litmus_interval_is_the_bootstrap_t_of_the_paired_differences(
    results_dir: Path, tmp_path: Path, add_result: Callable[..., Path]
) -> None:
    _five_seeds(add_result)
    rows = _rows(_group(_build(results_dir, tmp_path)))
    d = np.array([rows["good"].delta_p_by_seed[s] - rows["rlw"].delta_p_by_seed[s] for s in range(5)])
    expected = stats.mean_interval(d, n_boot=N_BOOT, seed=0)
    lit = rows["good"].litmus
    assert lit is not None and lit.n_pairs == 5
    assert lit.ci == expected and lit.ci.describe() == "95% bootstrap-t, n=5"
    assert lit.mean_diff == pytest.approx(5.0)
    assert rows["good"].delta_p_ci == stats.mean_interval(
        list(rows["good"].delta_p_by_seed.values()), n_boot=N_BOOT, seed=0
    )


def test_across_env_litmus_is_stratified(
    results_dir: Path, tmp_path: Path, add_result: Callable[..., Path]
) -> None:
    _five_seeds(add_result)
    for name, x in {"ew": 0.0, "rlw": 1.0, "good": 3.0}.items():
        for seed in range(5):
            add_result(name, "loss", seed, x + 0.1 * seed if name != "ew" else 0.0, env_id="other-hps-v1")
    lb = _build(results_dir, tmp_path)
    # envs in the order of the across-env groups (sorted by key)
    per_env = [_rows(_group(lb, env_id=k.env_id))["good"].litmus for k in lb.aggregate_groups]
    across = {a.method: a for a in lb.aggregate}["good@1"].litmus
    assert across is not None and across.n_envs == 2 and across.n_pairs == 10
    assert across.mean_diff == pytest.approx(np.mean([lit.mean_diff for lit in per_env]))  # type: ignore[union-attr]
    assert across.ci == stats.stratified_mean_interval(
        [lit.differences for lit in per_env],  # type: ignore[union-attr]
        n_boot=N_BOOT,
        seed=0,
    )
    assert across.verdict == "pass"


def test_failed_runs_count_and_cannot_pass(results_dir: Path, tmp_path: Path) -> None:
    lb = _build(results_dir, tmp_path)
    flaky = _rows(_group(lb))["flaky"]
    assert (flaky.n_runs, flaky.n_ok, flaky.n_failed) == (3, 2, 1)
    assert flaky.failures == ["seed 2: diverged (loss became NaN at step 17)"]
    assert flaky.litmus is not None and flaky.litmus.n_pairs == 3
    assert flaky.litmus.mean_diff == -math.inf and flaky.litmus.ci.low == -math.inf  # type: ignore[union-attr]
    assert flaky.env_score == -math.inf and flaky.rank == len(METHODS)  # ranked last
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "flaky@1, seed 2: diverged (loss became NaN at step 17)" in readme
    agg = {a.method: a for a in lb.aggregate}
    # with 3 scores the IQM trims nothing (int(0.25 * 3) == 0), so the failure stays in: -inf
    assert agg["flaky@1"].n_scores == 3 and agg["flaky@1"].iqm == -math.inf
    assert agg["flaky@1"].iqm_ci.low == -math.inf  # type: ignore[union-attr]


def test_delta_m_against_the_stl_reference(results_dir: Path, tmp_path: Path) -> None:
    rows = _rows(_group(_build(results_dir, tmp_path)))
    hib = {"left": {"acc": True}, "right": {"acc": True, "err": False}}
    per_seed = [delta_m(scaled(s, x), SPEC["stl_reference"], hib) for s, x in enumerate(METHODS["good"][1])]
    assert rows["good"].delta_m == pytest.approx(stats.mean_std(per_seed))


def test_ranks_and_aggregate(results_dir: Path, tmp_path: Path) -> None:
    lb = _build(results_dir, tmp_path)
    rows = _rows(_group(lb))
    assert rows["good"].rank == 1.0
    assert rows["rlw"].rank == rows["tie"].rank == 5.5  # ties share the average rank
    agg = {a.method: a for a in lb.aggregate}
    assert agg["good@1"].mean_rank == 1.0 and agg["good@1"].n_envs == 1
    assert agg["good@1"].iqm == pytest.approx(6.0)
    assert agg["good@1"].verdicts == {"insufficient seeds": 1}  # 3 seeds
    assert [g.label for g in lb.aggregate_groups] == [f"{ENV_ID} (spec {SPEC_HASH[:8]}, evaluator 1)"]


def test_mean_rank_over_two_envs(results_dir: Path, tmp_path: Path, add_result: Callable[..., Path]) -> None:
    # a second environment where "bad" is best and "good" is worst
    for name, x in {"ew": 0.0, "rlw": 1.0, "good": -2.0, "bad": 3.0}.items():
        for seed in range(3):
            add_result(name, "loss", seed, x + 0.1 * seed if name != "ew" else 0.0, env_id="other-hps-v1")
    lb = _build(results_dir, tmp_path)
    agg = {a.method: a for a in lb.aggregate}
    assert agg["good@1"].n_envs == 2
    assert agg["good@1"].mean_rank == pytest.approx((1 + 4) / 2)
    assert agg["bad@1"].mean_rank == pytest.approx((8 + 1) / 2)
    other = _rows(_group(lb, env_id="other-hps-v1"))
    # stratified: good's IQM pools 3 seeds from each env
    assert agg["good@1"].n_scores == 6
    pooled = [*_rows(_group(lb))["good"].delta_p_by_seed.values(), *other["good"].delta_p_by_seed.values()]
    assert agg["good@1"].iqm == pytest.approx(float(stats.iqm(pooled)))


def test_exclusions(results_dir: Path, tmp_path: Path, add_result: Callable[..., Path]) -> None:
    truncated = add_result("trunc", "loss", 0, 1.0)
    truncated.write_text(truncated.read_text()[:80])
    broken = add_result("schema", "loss", 0, 1.0)
    data = json.loads(broken.read_text())
    data["status"] = "great"
    broken.write_text(json.dumps(data))
    add_result("ghost", "loss", 0, 1.0, env_id="ghost-hps-v1")
    add_result("stale", "loss", 0, 1.0, spec_hash="ffffffffffffffff")
    add_result("tweaked", "loss", 0, 1.0, official=False)
    moved = add_result("moved", "loss", 0, 1.0)
    moved.rename(moved.with_name("seed-7.json"))

    registry = {ENV_ID: SPEC_HASH}.get
    lb = _build(results_dir, tmp_path, registry=registry)
    reasons = {e.path: e.reason for e in lb.exclusions}
    assert set(reasons) == {
        f"{ENV_ID}/trunc@1/seed-0.json",
        f"{ENV_ID}/schema@1/seed-0.json",
        "ghost-hps-v1/ghost@1/seed-0.json",
        f"{ENV_ID}/stale@1/seed-0.json",
        f"{ENV_ID}/tweaked@1/seed-0.json",
        f"{ENV_ID}/moved@1/seed-7.json",
    }
    assert "not valid JSON" in reasons[f"{ENV_ID}/trunc@1/seed-0.json"]
    assert "field 'status'" in reasons[f"{ENV_ID}/schema@1/seed-0.json"]
    assert "'ghost-hps-v1' is not registered" in reasons["ghost-hps-v1/ghost@1/seed-0.json"]
    assert "differs from the registered" in reasons[f"{ENV_ID}/stale@1/seed-0.json"]
    assert "unofficial" in reasons[f"{ENV_ID}/tweaked@1/seed-0.json"]
    assert "but the file describes" in reasons[f"{ENV_ID}/moved@1/seed-7.json"]
    # the build still succeeded, with every usable file
    assert len(lb.groups) == 1 and lb.n_files == 25 + 6
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "## Exclusions" in readme and "`ghost-hps-v1/ghost@1/seed-0.json`" in readme
    assert str(tmp_path) not in readme  # paths are relative to the results folder


def test_spec_hashes_and_evaluator_versions_are_never_mixed(
    results_dir: Path, tmp_path: Path, add_result: Callable[..., Path]
) -> None:
    for seed in range(2):
        add_result("ew", "loss", seed, 0.0, spec_hash="0123456789abcdef", version="2")
        add_result("rlw", "loss", seed, 2.0, spec_hash="0123456789abcdef", version="2")
    add_result("ew", "loss", 0, 0.0, spec={**SPEC, "evaluator_version": "2"}, version="3")
    lb = _build(results_dir, tmp_path)  # no registry: every version stays buildable
    labels = [g.key.label for g in lb.groups]
    assert labels == [
        f"{ENV_ID} (spec 01234567, evaluator 1)",
        f"{ENV_ID} (spec {SPEC_HASH[:8]}, evaluator 1)",
        f"{ENV_ID} (spec {SPEC_HASH[:8]}, evaluator 2)",
    ]
    assert sorted(_rows(_group(lb)).keys()) == sorted(METHODS)
    other = _group(lb, "0123456789abcdef")
    assert [r.key for r in other.rows] == ["rlw@2", "ew@2"]
    assert other.baseline == "ew@2"
    assert _rows(other)["rlw"].delta_p_by_seed == {0: pytest.approx(2.0), 1: pytest.approx(2.0)}
    assert [r.key for r in _group(lb, evaluator="2").rows] == ["ew@3"]
    # the across-env summary takes one group per environment
    assert len(lb.aggregate_groups) == 1


def test_a_failed_baseline_seed_leaves_that_seed_unpaired(
    results_dir: Path, tmp_path: Path, add_result: Callable[..., Path]
) -> None:
    add_result("ew", "loss", 1, None)  # overwrite: EW diverged at seed 1
    group = _group(_build(results_dir, tmp_path))
    rows = _rows(group)
    assert set(rows["good"].delta_p_by_seed) == {0, 2}
    assert rows["good"].litmus.n_pairs == 2  # type: ignore[union-attr]
    assert "seed 1 (no baseline)" in rows["good"].litmus_note
    assert any("baseline ew@1 failed" in n for n in group.notes)
    assert rows["ew"].litmus.mean_diff == -math.inf  # type: ignore[union-attr]


def test_no_reference_and_no_baseline(tmp_path: Path) -> None:
    from tests.leaderboard.conftest import write_fixture

    results = write_fixture(tmp_path / "results", {"good": ("loss", [1.0, 2.0])})
    group = _group(_build(results, tmp_path))
    row = group.rows[0]
    assert row.delta_p_by_seed == {} and row.litmus is None and row.litmus_note == "no rlw runs"
    assert row.rank is None
    assert any("no 'ew' runs" in n for n in group.notes)


def test_csv_has_one_row_per_group_and_method(results_dir: Path, tmp_path: Path) -> None:
    _build(results_dir, tmp_path)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "leaderboard.csv").read_text())))
    assert sorted(r["name"] for r in rows) == sorted(METHODS)
    good = next(r for r in rows if r["name"] == "good")
    assert good["litmus_verdict"] == "insufficient seeds" and good["spec_hash"] == SPEC_HASH
    assert float(good["delta_p_mean"]) == pytest.approx(6.0)
    assert float(good["test:left/acc:mean"]) == pytest.approx(
        np.mean([scaled(s, x)["left"]["acc"] for s, x in enumerate([6.0, 6.4, 5.6])])
    )
    flaky = next(r for r in rows if r["name"] == "flaky")
    assert flaky["n_failed"] == "1" and flaky["litmus_ci_low"] == "-inf"


def test_missing_results_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_leaderboard(tmp_path / "nothing", tmp_path / "out")


def test_empty_results_folder_builds(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    report = build_leaderboard(tmp_path / "results", tmp_path / "out", registry=None, n_boot=10)
    assert report.groups == [] and "No usable results yet." in (tmp_path / "out" / "README.md").read_text()
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.count("<section") == 3 and "No usable results yet." in page  # verdicts, build, exclusions


def test_validation_curves_are_paired_delta_p_vs_ew(results_dir: Path, tmp_path: Path) -> None:
    """Epoch e of the fixture holds EW's metrics moved by x*e/2 percent: the curve is that, averaged."""
    rows = _rows(_group(_build(results_dir, tmp_path)))
    assert rows["ew"].curve == [(0, 0.0), (1, 0.0), (2, 0.0)]
    good = dict(rows["good"].curve)  # x = 6.0, 6.4, 5.6 over seeds: mean 6.0
    assert [good[e] for e in (0, 1, 2)] == pytest.approx([0.0, 3.0, 6.0], abs=1e-9)
    flaky = dict(rows["flaky"].curve)  # its diverged seed has no evaluations
    assert flaky[2] == pytest.approx((6.0 + 6.4) / 2, abs=1e-9)

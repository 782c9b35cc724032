"""``mtlbench litmus`` end to end on a one-env tier (tiny MultiMNIST protocol, inline runs).

One module-scoped litmus run trains ``dwa`` over 2 seeds; the "published" folder holds EW
and RLW for seed 0 only, so seed 1's references must be trained, into the user's folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mtlbench.cli import main
from mtlbench.harness.grid import run_grid
from mtlbench.harness.runner import MethodRef, RunRequest, failure_result
from mtlbench.harness.storage import store
from mtlbench.leaderboard import litmus, stats
from tests.conftest import TINY

ENV = "multimnist-hps-v1"
OVERRIDES = {**TINY, "budget.epochs": 1}
TIER = (ENV,)


def _request(root: Path, method: str, seed: int) -> RunRequest:
    return RunRequest(
        env_id=ENV,
        method=MethodRef.builtin(method),
        seed=seed,
        results_dir=str(root),
        device="cpu",
        threads=1,
        overrides=dict(OVERRIDES),
    )


def _files(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def litmus_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[litmus.LitmusReport, Path, Path, dict]:
    root = tmp_path_factory.mktemp("litmus")
    published, user = root / "published", root / "user"
    run_grid([_request(published, m, 0) for m in ("ew", "rlw")], backend="inline", progress=False)
    before = _files(published)
    mp = pytest.MonkeyPatch()
    mp.setattr("mtlbench.envs.tier.OFFLINE_TIER", TIER)  # the tier, injected
    try:
        report = litmus.run_litmus(
            "dwa",
            results_dir=user,
            seeds=(0, 1),
            reference_dirs=[published],
            backend="inline",
            threads=1,
            device="cpu",
            progress=False,
            overrides=OVERRIDES,
        )
    finally:
        mp.undo()
    return report, published, user, before


def test_missing_references_are_trained_into_the_user_folder_only(litmus_run: tuple) -> None:
    report, published, user, before = litmus_run
    assert _files(published) == before  # nothing written to, or touched in, the published folder
    stored = sorted(str(p.relative_to(user)) for p in user.rglob("seed-*.json"))
    # unofficial runs (tiny overrides) live in <method>@<version>+unofficial-<hash>/ folders
    expected = [("dwa", 0), ("dwa", 1), ("ew", 1), ("rlw", 1)]  # seed 0 of EW and RLW: published
    assert stored == sorted(str(_request(user, m, s).path.relative_to(user)) for m, s in expected)
    assert report.trained == 4
    assert report.reused == {str(user): 0, str(published): 2}
    assert report.failed == []


def test_verdicts_per_env_and_overall_carry_interval_and_n(litmus_run: tuple) -> None:
    report, *_ = litmus_run
    assert (report.method, report.level, report.reference) == ("dwa@1", "loss", "rlw@1")
    (env,) = report.envs
    assert env.env_id == ENV and env.result is not None and env.note == ""
    # 2 paired seeds < MIN_PAIRED_SEEDS: never a verdict from the interval, but it is shown
    assert env.result.verdict == "insufficient seeds" and env.result.n_pairs == 2
    assert env.result.ci is not None and env.result.ci.describe() == "95% bootstrap-t, n=2"
    assert report.overall is not None and report.overall.verdict == "insufficient seeds"
    assert report.overall.n_envs == 1 and report.overall.n_pairs == 2
    table = report.table()
    assert f"{ENV}  2" in table and "across 1 env " in table
    assert table.count("insufficient seeds") >= 2 and table.count("95% bootstrap-t, n=2") == 2


def test_the_differences_are_the_paired_delta_p(litmus_run: tuple) -> None:
    from mtlbench.evaluation import delta_p
    from mtlbench.harness.results import read_result
    from mtlbench.registration import spec

    report, published, user, _ = litmus_run
    hib = spec(ENV).higher_is_better

    def test_metrics(root: Path, method: str, seed: int) -> dict:
        result = read_result(_request(root, method, seed).path)
        assert result.selected is not None
        return result.selected.test

    expected = []
    for seed in (0, 1):
        refs = published if seed == 0 else user
        ew = test_metrics(refs, "ew", seed)
        expected.append(
            delta_p(test_metrics(user, "dwa", seed), ew, hib)
            - delta_p(test_metrics(refs, "rlw", seed), ew, hib)
        )
    result = report.envs[0].result
    assert result is not None
    assert result.differences == pytest.approx(tuple(expected))


def _cli(mine: Path) -> list[str]:
    overrides = [a for k, v in OVERRIDES.items() for a in ("--override", f"{k}={v}")]
    return ["litmus", "dwa", "--seeds", "0,1", "--results-dir", str(mine), "--no-progress", *overrides]


def test_cli_prints_per_env_and_overall_verdicts(
    litmus_run: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, published, user, _ = litmus_run
    mine = tmp_path / "mine"
    shutil.copytree(user, mine)
    shutil.copytree(published, mine, dirs_exist_ok=True)  # every run stored: nothing to train
    monkeypatch.setattr("mtlbench.envs.tier.OFFLINE_TIER", TIER)
    assert main(_cli(mine)) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    env_line = next(line for line in lines if line.startswith(ENV))
    overall = next(line for line in lines if line.startswith("across 1 env"))
    for line in (env_line, overall):
        assert "insufficient seeds" in line and "95% bootstrap-t, n=2" in line and "[" in line
    assert "runs: 0 trained" in out and f"6 from {mine}" in out


@pytest.mark.slow
def test_cli_trains_missing_references_in_child_processes(
    litmus_run: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, user, _ = litmus_run
    mine = tmp_path / "mine"
    shutil.copytree(user, mine)
    published_before = _files(litmus.PUBLISHED_RESULTS) if litmus.PUBLISHED_RESULTS.is_dir() else {}
    monkeypatch.setattr("mtlbench.envs.tier.OFFLINE_TIER", TIER)
    rc = main([*_cli(mine), "--workers", "1", "--threads", "1"])
    out = capsys.readouterr().out
    # seed 0's references are neither in `mine` nor (with these overrides) in the published
    # results: they are trained, one child process each, into `mine`
    assert rc == 0, out
    assert "across 1 env" in out and "insufficient seeds" in out and "n=2" in out
    assert "runs: 2 trained" in out
    assert (mine / ENV / "ew@1" / "seed-0.json").exists()
    if litmus.PUBLISHED_RESULTS.is_dir():
        assert _files(litmus.PUBLISHED_RESULTS) == published_before


def test_a_failed_run_fails_the_method_and_the_exit_code(
    litmus_run: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    report, published, user, _ = litmus_run
    mine = tmp_path / "mine"
    shutil.copytree(user, mine)
    shutil.copytree(published, mine, dirs_exist_ok=True)  # every reference stored: nothing to train
    request = _request(mine, "dwa", 1)
    store(request, failure_result(request, "diverged", "loss became NaN"))
    monkeypatch.setattr("mtlbench.envs.tier.OFFLINE_TIER", TIER)
    rc = main(_cli(mine))
    captured = capsys.readouterr()
    assert rc == 1
    assert "runs: 0 trained" in captured.out
    assert "-inf" in captured.out and "fail" in captured.out
    assert "FAILED" in captured.err and "diverged: loss became NaN" in captured.err


def test_bad_targets_are_one_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["litmus", "dwaa", "--results-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Did you mean 'dwa'" in err and "mtlbench methods" in err
    assert main(["litmus", "rlw", "--results-dir", str(tmp_path)]) == 1
    assert "is a litmus reference itself" in capsys.readouterr().err
    assert main(["litmus", "dwa", "--envs", "multimnst-hps", "--results-dir", str(tmp_path)]) == 1
    assert "Did you mean 'multimnist-hps'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_resolve_method_levels_and_submissions() -> None:
    assert litmus.resolve_method("dwa")[1] == "loss"
    assert litmus.resolve_method("cagrad")[1] == "gradient"
    ref, level = litmus.resolve_method("rlw+cagrad")
    assert (ref.name, level) == ("rlw+cagrad", "gradient")
    root = Path(__file__).resolve().parents[2]
    ref, level = litmus.resolve_method(root / "submissions" / "example-loss-softmax")
    assert (ref.name, level) == ("example-loss-softmax", "loss") and ref.entry.endswith(
        "policy.py:LossProgressSoftmax"
    )
    assert ref.code_hash is not None


def test_default_seeds_are_the_minimum_for_a_verdict() -> None:
    assert litmus.DEFAULT_SEEDS == tuple(range(stats.MIN_PAIRED_SEEDS))

"""The training loop and the grid: statuses, selection, failures recorded, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mtlbench.harness.grid import run_grid
from mtlbench.harness.results import read_result
from mtlbench.harness.runner import MethodRef, RunRequest
from mtlbench.harness.train import env_kwargs_for, train
from mtlbench.policies.base import Observation, Policy
from tests.conftest import TINY, ConstantLoss, MeanGradient, RecordingRandom, tiny_env


def test_train_returns_a_complete_ok_result() -> None:
    result = train(tiny_env(), ConstantLoss(), seed=0)
    assert result.status == "ok" and result.message is None
    assert [e.epoch for e in result.evaluations] == [1, 2]
    assert result.selected is not None and result.last is not None
    best = max(result.evaluations, key=lambda e: e.val_score)
    assert result.selected.epoch == best.epoch and result.selected.test == best.test
    assert result.last.epoch == 2
    assert result.cost.steps == 8 and result.official is False
    assert set(result.selected.test) == {"left", "right"}


def test_gradient_policy_runs() -> None:
    policy = MeanGradient()
    result = train(tiny_env(**env_kwargs_for(policy)), policy, seed=0)
    assert result.status == "ok", result.message


def test_env_must_match_policy_needs() -> None:
    with pytest.raises(ValueError, match="needs \\['gramian'\\]"):
        train(tiny_env(), MeanGradient(), seed=0)


class _NaNAt(Policy):
    name = "nan-at-3"
    level = "loss"

    def act(self, observation: Observation) -> torch.Tensor:
        w = torch.ones_like(observation["losses"])
        return w * float("nan") if int(observation["step"]) == 3 else w


class _Raises(Policy):
    name = "raiser"
    level = "loss"

    def act(self, observation: Observation) -> torch.Tensor:
        raise RuntimeError("solver exploded")


def test_nan_action_is_invalid_action_naming_policy_and_step() -> None:
    result = train(tiny_env(), _NaNAt(), seed=0)
    assert result.status == "invalid_action"
    assert "policy 'nan-at-3'" in result.message and "step 3" in result.message


def test_policy_exception_is_recorded() -> None:
    result = train(tiny_env(), _Raises(), seed=0)
    assert result.status == "error" and "raiser" in result.message and "solver exploded" in result.message


def test_diverged_run_is_recorded() -> None:
    result = train(tiny_env(), ConstantLoss([1e30, 1e30]), seed=0)
    # huge weights blow Adam-normalised updates up only slowly; force NaN through the loss instead
    assert result.status in {"ok", "diverged"}
    env = tiny_env(overrides={**TINY, "optimizer.lr": 1e12})
    result = train(env, ConstantLoss(), seed=0)
    assert result.status == "diverged" and "NaN or infinite" in result.message


def test_same_seed_policies_are_paired() -> None:
    a, b = RecordingRandom(), RecordingRandom()
    train(tiny_env(), a, seed=1)
    train(tiny_env(), b, seed=1)
    assert torch.equal(torch.stack(a.seen), torch.stack(b.seen))


def _tiny_request(tmp_path: Path, method: MethodRef, seed: int) -> RunRequest:
    return RunRequest(
        env_id="multimnist-hps",
        method=method,
        seed=seed,
        results_dir=str(tmp_path),
        device="cpu",
        overrides=dict(TINY),
    )


def test_grid_writes_one_file_per_run_and_skips_done_runs(tmp_path: Path) -> None:
    ref = MethodRef(name="constant", version="1", entry="tests.conftest:ConstantLoss")
    reqs = [_tiny_request(tmp_path, ref, s) for s in (0, 1)]
    report = run_grid(reqs, backend="inline", progress=False)
    assert len(report.written) == 2 and not report.failed
    files = sorted(r.path for r in reqs)
    assert [f.name for f in files] == ["seed-0.json", "seed-1.json"]
    assert all(read_result(f).status == "ok" for f in files)
    again = run_grid(reqs, backend="inline", progress=False)
    assert len(again.skipped) == 2 and not again.written


def test_failing_run_does_not_stop_the_grid(tmp_path: Path) -> None:
    bad = MethodRef(name="nan", version="1", entry="tests.harness.test_train:_NaNAt")
    good = MethodRef(name="constant", version="1", entry="tests.conftest:ConstantLoss")
    report = run_grid(
        [_tiny_request(tmp_path, bad, 0), _tiny_request(tmp_path, good, 0)], backend="inline", progress=False
    )
    assert len(report.written) == 2 and len(report.failed) == 1
    assert read_result(_tiny_request(tmp_path, bad, 0).path).status == "invalid_action"


def test_corrupt_existing_result_is_kept_aside_not_lost(tmp_path: Path) -> None:
    ref = MethodRef(name="constant", version="1", entry="tests.conftest:ConstantLoss")
    req = _tiny_request(tmp_path, ref, 0)
    req.path.parent.mkdir(parents=True)
    req.path.write_text("{ truncated")
    run_grid([req], backend="inline", progress=False)
    assert read_result(req.path).status == "ok"
    assert req.path.with_suffix(".json.unreadable").read_text() == "{ truncated"


def test_unwritable_results_dir_fails_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ref = MethodRef(name="constant", version="1", entry="tests.conftest:ConstantLoss")
    with pytest.raises(PermissionError, match="cannot write result files"):
        run_grid([_tiny_request(blocker, ref, 0)], backend="inline", progress=False)


def test_local_backend_runs_in_child_processes_with_time_limit(tmp_path: Path) -> None:
    ref = MethodRef(name="constant", version="1", entry="tests.conftest:ConstantLoss")
    ok = _tiny_request(tmp_path, ref, 0)
    slow = RunRequest(**{**ok.__dict__, "seed": 1, "timeout_s": 0.5})
    report = run_grid([ok, slow], backend="local", workers=2, progress=False)
    assert read_result(ok.path).status == "ok"
    timed_out = read_result(slow.path)
    assert timed_out.status == "timeout" and "time limit" in timed_out.message
    assert len(report.failed) == 1

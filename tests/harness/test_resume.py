"""Resumability: an interrupted grid completes only its missing runs, a killed driver loses
nothing already stored, and a run resumed from its checkpoint equals an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import mtlbench
from mtlbench.harness.grid import run_grid
from mtlbench.harness.results import Evaluation, read_result
from mtlbench.harness.runner import RunRequest
from mtlbench.harness.train import env_kwargs_for, train
from tests.conftest import TINY, tiny_grid

REPO = Path(__file__).resolve().parents[2]
ENV = "multimnist-hps"


# ------------------------------------------------------------------ (a) interrupted grid
def test_rerun_executes_only_the_missing_run(tmp_path: Path) -> None:
    requests = tiny_grid(tmp_path)
    first = run_grid(requests, backend="inline", progress=False)
    assert (
        sorted(first.written) == sorted(r.path for r in requests) and not first.skipped and not first.failed
    )
    kept = {r.path: r.path.stat().st_mtime_ns for r in requests}

    missing = requests[1].path
    missing.unlink()
    ran: list[RunRequest] = []
    second = run_grid(requests, backend="inline", progress=False, on_result=lambda req, _: ran.append(req))

    assert ran == [requests[1]]
    assert second.written == [missing] and not second.failed
    assert sorted(second.skipped) == sorted(p for p in kept if p != missing)
    for path, mtime in kept.items():
        if path != missing:
            assert path.stat().st_mtime_ns == mtime, f"{path} was rewritten"
    assert read_result(missing).status == "ok"


def test_unreadable_result_is_rerun_and_kept_aside(tmp_path: Path) -> None:
    requests = tiny_grid(tmp_path, methods=("ew",), seeds=(0,))
    path = requests[0].path
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": 1, "env_id": "trunc')  # a torn write from an older tool
    report = run_grid(requests, backend="inline", progress=False)
    assert report.written == [path] and read_result(path).status == "ok"
    assert path.with_suffix(".json.unreadable").exists()


# ------------------------------------------------------------------ (b) killed driver
DRIVER = """
import json, sys
from mtlbench.harness.runner import MethodRef, RunRequest
from mtlbench.harness.grid import run_grid

requests = [
    RunRequest(env_id={env!r}, method=MethodRef.builtin("ew"), seed=seed, results_dir=sys.argv[1],
               device="cpu", threads=1, overrides={tiny!r})
    for seed in (0, 1)
]
report = run_grid(requests, backend="local", workers=1, progress=False)
print(json.dumps({{"written": [str(p) for p in report.written], "skipped": [str(p) for p in report.skipped],
                  "failed": [f"{{p}}: {{why}}" for p, why in report.failed]}}))
"""


def _start_driver(script: Path, results: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    # a session of its own, so that killing the driver's group also kills its run's child process
    return subprocess.Popen(
        [sys.executable, str(script), str(results)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_killed_driver_resumes_and_every_file_is_valid(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER.format(env=ENV, tiny=dict(TINY))))
    results = tmp_path / "results"

    driver = _start_driver(script, results)
    try:
        deadline = time.monotonic() + 240
        while not list(results.rglob("seed-*.json")):
            if driver.poll() is not None:
                pytest.fail(f"the driver ended before being killed: {driver.communicate()}")
            if time.monotonic() > deadline:
                pytest.fail("no result file appeared within 240 s")
            time.sleep(0.05)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.communicate()
    stored_before = sorted(results.rglob("seed-*.json"))
    assert len(stored_before) == 1, "the driver should have been killed between its two runs"

    restarted = _start_driver(script, results)
    out, err = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["skipped"] == [str(stored_before[0])]
    assert len(report["written"]) == 1 and not report["failed"]

    files = sorted(results.rglob("seed-*.json"))
    assert [f.name for f in files] == ["seed-0.json", "seed-1.json"]
    for f in files:
        result = read_result(f)
        assert result.status == "ok" and [e.epoch for e in result.evaluations] == [1, 2]
    assert not [p for p in results.rglob("*") if p.is_file() and p.suffix != ".json"], "temporary files left"


# ------------------------------------------------------------------ (c) checkpoint resume
class _Killed(BaseException):
    """Stands for a kill: not an ``Exception``, so the training loop does not record it."""


def _run(method: str, seed: int, **kwargs: object) -> tuple[list[Evaluation], dict[str, torch.Tensor]]:
    """Train a 3-epoch tiny run; return its evaluations and its final weights."""
    policy = mtlbench.policies.make(method)
    env = mtlbench.make(ENV, device="cpu", overrides={**TINY, "budget.epochs": 3}, **env_kwargs_for(policy))
    try:
        result = train(env, policy, seed, **kwargs)  # type: ignore[arg-type]
        assert env.model is not None
        weights = {k: v.detach().clone() for k, v in env.model.state_dict().items()}
    finally:
        env.close()
    assert result.status == "ok", result.message
    return result.evaluations, weights


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs by up to {(a[key] - b[key]).abs().max():.3g}"


# The metrics of a 64-image tiny run are too coarse to reveal a changed data order (a
# checkpoint that stored the RNG states after the next epoch's shuffle once passed them), so
# the final weights are compared too.
@pytest.mark.parametrize("method", ["ew", "rlw"])
def test_resumed_run_equals_uninterrupted_run(tmp_path: Path, method: str) -> None:
    # a checkpoint is taken after every evaluation but the last: kill the run at epoch 2 of 3,
    # after the checkpoint of epoch 1 was written
    checkpoint = tmp_path / "run.pt"

    def kill_at_epoch_2(ev: Evaluation) -> None:
        if ev.epoch == 2:
            raise _Killed

    with pytest.raises(_Killed):
        _run(method, 3, checkpoint_path=checkpoint, on_evaluation=kill_at_epoch_2)
    assert checkpoint.exists()

    seen: list[int] = []
    resumed, resumed_weights = _run(
        method, 3, checkpoint_path=checkpoint, on_evaluation=lambda ev: seen.append(ev.epoch)
    )
    assert seen == [2, 3], "the second run should have resumed after epoch 1"
    assert not checkpoint.exists(), "a finished run removes its checkpoint"

    uninterrupted, weights = _run(method, 3)
    assert [e.epoch for e in resumed] == [1, 2, 3]
    assert resumed == uninterrupted  # same step, val and test metrics and val score at every evaluation
    _assert_same_weights(resumed_weights, weights)


def test_torn_checkpoint_starts_over(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.pt"
    checkpoint.write_bytes(b"PK\x03\x04 torn by a kill")
    seen: list[int] = []
    evaluations, weights = _run(
        "ew", 0, checkpoint_path=checkpoint, on_evaluation=lambda ev: seen.append(ev.epoch)
    )
    assert seen == [1, 2, 3]
    again, again_weights = _run("ew", 0)
    assert evaluations == again
    _assert_same_weights(weights, again_weights)

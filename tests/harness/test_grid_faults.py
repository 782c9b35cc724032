"""Faults around a grid (issue 14, items 4, 5, 7, 8; issue 11's progress bar).

Ctrl-C stores every finished run and says what was stored; ``kill -9`` of the grid ends its
child runs and leaves no temp folder; two grids on one results folder never train the same
run twice; every run has a time limit, honoured by the inline backend too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mtlbench.harness.grid import run_grid
from mtlbench.harness.results import read_result
from mtlbench.harness.runner import MethodRef, RunRequest
from tests.conftest import TINY, tiny_grid

REPO = Path(__file__).resolve().parents[2]

SLOW_POLICY = """
import time
import torch
from mtlbench.policies.base import Policy

class Slow(Policy):
    name = "slow"
    level = "loss"
    needs = frozenset({"losses"})

    def act(self, observation):
        time.sleep(1.0)
        return torch.ones_like(observation["losses"])

class Sleeper(Policy):
    name = "sleeper"
    level = "loss"
    needs = frozenset({"losses"})

    def act(self, observation):
        while True:
            time.sleep(3600)

class Stuck(Policy):
    '''Blocks SIGALRM, then sleeps: no Python-level watchdog can interrupt it.'''
    name = "stuck"
    level = "loss"
    needs = frozenset({"losses"})

    def act(self, observation):
        import signal
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)
"""


def _policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "toy_policies.py"
    path.write_text(SLOW_POLICY)
    return path


def _request(results: Path, entry: str, name: str, seed: int = 0, **kw: object) -> RunRequest:
    return RunRequest(
        env_id="multimnist-hps",
        method=MethodRef(name=name, version="1", entry=entry),
        seed=seed,
        results_dir=str(results),
        device="cpu",
        threads=1,
        overrides=dict(TINY),
        **kw,  # type: ignore[arg-type]
    )


def _env(tmp: Path | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return env


def _children(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is ``pid``, from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(condition, timeout: float, what: str, proc: subprocess.Popen[str] | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the driver ended before {what}: {proc.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _leftovers(results: Path) -> list[Path]:
    return [p for p in results.rglob("*") if p.is_file() and p.suffix != ".json"]


# ------------------------------------------------------------------ item 4: Ctrl-C
def test_ctrl_c_stops_launching_stores_finished_runs_and_says_which(tmp_path: Path) -> None:
    results, tmp = tmp_path / "results", tmp_path / "tmp"
    tmp.mkdir()
    overrides = [f"--override={k}={v}" for k, v in TINY.items()]
    cmd = [
        sys.executable,
        "-m",
        "mtlbench.cli",
        "benchmark",
        "--methods",
        "ew,rlw",
        "--envs",
        "multimnist-hps",
        "--seeds",
        "0,1,2",
        "--workers",
        "2",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--results-dir",
        str(results),
        "--no-progress",
        *overrides,
    ]
    # a session of its own, so that the test can send SIGINT to its process group as a terminal does
    driver = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: list(results.rglob("seed-*.json")), 300, "a first result file", driver)
        os.killpg(driver.pid, signal.SIGINT)
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.communicate()
    assert driver.returncode == 130, err
    stored_on_disk = sorted(str(p) for p in results.rglob("seed-*.json"))
    # "stored N run(s)" followed by exactly the files that exist; the rest named as not stored
    lines = err.splitlines()
    head = next(line for line in lines if line.startswith("interrupted: stored"))
    assert f"stored {len(stored_on_disk)} run(s)" in head, err
    listed = sorted(line.split(maxsplit=1)[1] for line in lines if line.startswith("  stored "))
    assert listed == stored_on_disk, err
    not_stored = [line for line in lines if line.startswith(("  stopped ", "  not started "))]
    assert len(stored_on_disk) + len(not_stored) == 6, err
    # launching stopped: with 2 workers, at most 4 runs can have started by the time the
    # driver saw SIGINT after the first result; the others are reported as never started
    assert sum(line.startswith("  not started ") for line in lines) >= 2, err
    assert "completed runs are stored" not in err
    for path in stored_on_disk:
        assert read_result(Path(path)).status == "ok"
    assert not _leftovers(results), "claim or temporary files left in the results folder"
    assert not [p for p in tmp.iterdir() if p.name.startswith("mtlbench")], "temp folders left"
    assert not _children(driver.pid)


def test_ctrl_c_on_an_inline_grid_reports_what_was_stored(tmp_path: Path) -> None:
    from mtlbench.harness.grid import GridInterrupted

    requests = tiny_grid(tmp_path, methods=("ew",))

    def interrupt(request: RunRequest, result: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C right after the first run was stored

    with pytest.raises(GridInterrupted) as caught:
        run_grid(requests, backend="inline", progress=False, on_result=interrupt)
    report = caught.value.report
    assert report.written == [requests[0].path] and read_result(requests[0].path).status == "ok"
    assert report.not_started == [requests[1].path] and not report.stopped
    assert not requests[1].path.exists() and not _leftovers(tmp_path)
    assert "stored 1 run(s)" in report.interruption_summary()


# ------------------------------------------------------------------ item 5: kill -9
KILLED_DRIVER = """
import sys
from mtlbench.harness.runner import MethodRef, RunRequest
from mtlbench.harness.grid import run_grid

requests = [
    RunRequest(env_id="multimnist-hps", method=MethodRef(name="slow", entry=sys.argv[2] + ":Slow"),
               seed=seed, results_dir=sys.argv[1], device="cpu", threads=1, overrides={tiny!r})
    for seed in (0, 1)
]
run_grid(requests, backend="local", workers=2, progress=False)
"""


def test_kill_9_of_the_grid_ends_its_children_and_leaves_no_temp_folder(tmp_path: Path) -> None:
    results, tmp = tmp_path / "results", tmp_path / "tmp"
    tmp.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(KILLED_DRIVER.format(tiny=dict(TINY))))
    driver = subprocess.Popen(
        [sys.executable, str(script), str(results), str(_policy_file(tmp_path))],
        cwd=REPO,
        env=_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    children: list[int] = []
    try:
        _wait_for(lambda: len(_children(driver.pid)) == 2, 120, "two child runs", driver)
        children = _children(driver.pid)
        time.sleep(3)  # let the children get into their training loops
        assert all(_alive(c) for c in children), "the child runs ended on their own"
        os.kill(driver.pid, signal.SIGKILL)
        driver.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        orphans = [c for c in children if _alive(c)]
        assert not orphans, f"child runs {orphans} outlived their killed grid"
        _wait_for(
            lambda: not [p for p in tmp.iterdir() if p.name.startswith("mtlbench")],
            10,
            "temp folders removed",
        )
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.communicate()
        for child in children:  # orphans of the unfixed code
            if _alive(child):
                os.kill(child, signal.SIGKILL)


# ------------------------------------------------------------------ item 7: claims
TWO_GRIDS_DRIVER = """
import json, sys
from mtlbench.harness.runner import MethodRef, RunRequest
from mtlbench.harness.grid import run_grid

requests = [
    RunRequest(env_id="multimnist-hps", method=MethodRef.builtin("ew"), seed=seed, results_dir=sys.argv[1],
               device="cpu", threads=1, overrides={tiny!r})
    for seed in range(4)
]
report = run_grid(requests, backend=sys.argv[2], workers=1, progress=False)
print(json.dumps({{"written": [str(p) for p in report.written], "skipped": [str(p) for p in report.skipped],
                  "claimed": [[str(p), why] for p, why in getattr(report, "claimed", [])]}}))
"""


@pytest.mark.parametrize("backend", ["inline", pytest.param("local", marks=pytest.mark.slow)])
def test_two_grids_on_one_folder_never_run_the_same_run_twice(tmp_path: Path, backend: str) -> None:
    results = tmp_path / "results"
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(TWO_GRIDS_DRIVER.format(tiny=dict(TINY))))
    drivers = [
        subprocess.Popen(
            [sys.executable, str(script), str(results), backend],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    reports = []
    for driver in drivers:
        out, err = driver.communicate(timeout=600)
        assert driver.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    a, b = (set(r["written"]) for r in reports)
    assert not a & b, f"both grids trained {sorted(a & b)}"
    assert len(a | b) == 4
    for report, other in zip(reports, drivers[::-1]):
        for _path, why in report["claimed"]:
            assert f"claimed by pid {other.pid} on {socket.gethostname()}" in why
        assert len(report["written"]) + len(report["skipped"]) + len(report["claimed"]) == 4
    assert not _leftovers(results), "claim files left behind"
    for path in results.rglob("seed-*.json"):
        assert read_result(path).status == "ok"


def test_a_live_claim_is_respected_and_released(tmp_path: Path) -> None:
    from mtlbench.harness import claims

    target = tmp_path / "seed-0.json"
    mine = claims.acquire(target)
    assert isinstance(mine, claims.Claim)
    other = claims.acquire(target)  # a second open file: the lock conflicts as with another grid
    assert isinstance(other, claims.Holder) and other.pid == os.getpid()
    assert f"claimed by pid {os.getpid()} on {socket.gethostname()}" in str(other)
    mine.release()
    assert not claims.claim_path(target).exists()
    again = claims.acquire(target)
    assert isinstance(again, claims.Claim)
    again.release()
    assert not list(tmp_path.iterdir())


def test_a_claim_of_a_killed_grid_is_recovered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from mtlbench.harness import claims

    target = tmp_path / "seed-0.json"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; from mtlbench.harness import claims; "
            "c = claims.acquire(sys.argv[1]); print(os.getpid()); os.kill(os.getpid(), 9)",
            str(target),
        ],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -9, killed.stderr
    dead_pid = int(killed.stdout.split()[0])
    assert json.loads(claims.claim_path(target).read_text())["pid"] == dead_pid
    claim = claims.acquire(target)
    assert isinstance(claim, claims.Claim), claim
    assert f"claimed by pid {dead_pid}" in caplog.text and "recovered a stale claim" in caplog.text
    assert json.loads(claims.claim_path(target).read_text())["pid"] == os.getpid()
    claim.release()


def test_a_run_claimed_by_another_grid_is_skipped_and_reported(tmp_path: Path) -> None:
    from mtlbench.harness import claims

    (request,) = tiny_grid(tmp_path, methods=("ew",), seeds=(0,))
    request.path.parent.mkdir(parents=True)
    held = claims.acquire(request.path)
    assert isinstance(held, claims.Claim)
    try:
        report = run_grid([request], backend="inline", progress=False)
    finally:
        held.release()
    assert not report.written and not request.path.exists()
    assert [(p, why.split(" since")[0]) for p, why in report.claimed] == [
        (request.path, f"claimed by pid {os.getpid()} on {socket.gethostname()}")
    ]


# ------------------------------------------------------------------ item 8: time limits
INLINE_DRIVER = """
import json, sys
from mtlbench.harness.runner import MethodRef, RunRequest
from mtlbench.harness.grid import run_grid
from mtlbench.harness.results import read_result

request = RunRequest(env_id="multimnist-hps", method=MethodRef(name="sleeper", entry=sys.argv[2] + ":Sleeper"),
                     seed=0, results_dir=sys.argv[1], device="cpu", threads=1, overrides={tiny!r},
                     timeout_s=3)
run_grid([request], backend="inline", progress=False)
result = read_result(request.path)
print(json.dumps({{"status": result.status, "message": result.message}}))
"""


def test_inline_run_honours_timeout_on_a_policy_that_sleeps_forever(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(INLINE_DRIVER.format(tiny=dict(TINY))))
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "results"), str(_policy_file(tmp_path))],
            cwd=REPO,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the inline run ignored its 3 s time limit")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "timeout"
    assert "policy 'sleeper'" in result["message"] and "time limit of 3" in result["message"]
    assert time.monotonic() - start < 90


def test_default_time_limit_applies_when_no_timeout_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mtlbench.harness import train

    monkeypatch.setattr(train, "SETUP_ALLOWANCE_S", 1.0)
    monkeypatch.setattr(train, "STEP_ALLOWANCE_S", 0.05)
    request = _request(tmp_path / "results", f"{_policy_file(tmp_path)}:Sleeper", "sleeper")
    assert request.timeout_s is None
    run_grid([request], backend="inline", progress=False)
    result = read_result(request.path)
    assert result.status == "timeout", result.message
    assert "policy 'sleeper'" in result.message and "default" in result.message


def test_default_time_limit_rule() -> None:
    from mtlbench.harness.train import SETUP_ALLOWANCE_S, STEP_ALLOWANCE_S, default_time_limit_s

    assert default_time_limit_s(0) == SETUP_ALLOWANCE_S
    assert default_time_limit_s(20_000) == SETUP_ALLOWANCE_S + 20_000 * STEP_ALLOWANCE_S


def test_local_run_stuck_where_python_cannot_interrupt_it_ends_as_timeout(tmp_path: Path) -> None:
    request = _request(tmp_path / "results", f"{_policy_file(tmp_path)}:Stuck", "stuck", timeout_s=2)
    start = time.monotonic()
    report = run_grid([request], backend="local", workers=1, progress=False)
    assert report.written == [request.path]
    result = read_result(request.path)
    assert result.status == "timeout"
    assert "policy 'stuck'" in (result.message or "") and "time limit of 2" in (result.message or "")
    assert time.monotonic() - start < 90
    assert not _leftovers(tmp_path / "results")


# ------------------------------------------------------------------ issue 11: progress bars
def test_run_progress_bar_shows_epoch_and_validation_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (request,) = tiny_grid(tmp_path, methods=("ew",), seeds=(0,))
    run_grid([request], backend="inline", progress=True)
    err = capsys.readouterr().err
    assert "epoch=2/2, val Δp=" in err and "best=" in err, err
    assert "grid (inline)" not in err, "a one-run inline grid needs no grid bar"


def test_grid_bar_kept_for_several_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_grid(tiny_grid(tmp_path, methods=("ew",)), backend="inline", progress=True)
    assert "grid (inline)" in capsys.readouterr().err


def _ignore_sigint() -> None:  # what a non-interactive shell does to a job started with `&`
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_a_background_grid_stops_like_ctrl_c_on_sigterm_or_sigint(tmp_path: Path, stop: str) -> None:
    """A grid started in the background (SIGINT ignored) and stopped with ``kill`` (SIGTERM) or
    ``kill -INT`` stores what finished and says so, as on Ctrl-C; before, SIGINT was ignored and
    SIGTERM ended it without the report."""
    results, tmp = tmp_path / "results", tmp_path / "tmp"
    tmp.mkdir()
    overrides = [f"--override={k}={v}" for k, v in TINY.items()]
    cmd = [sys.executable, "-m", "mtlbench.cli", "benchmark", "--methods", "ew", "--envs", "multimnist-hps"]
    cmd += ["--seeds", "0,1,2,3", "--workers", "1", "--threads", "1", "--device", "cpu"]
    cmd += ["--results-dir", str(results), "--no-progress", *overrides]
    driver = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_ignore_sigint,
    )
    try:
        _wait_for(lambda: list(results.rglob("seed-*.json")), 300, "a first result file", driver)
        driver.send_signal(getattr(signal, stop))
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.communicate()
    assert driver.returncode == 130, err
    stored = sorted(str(p) for p in results.rglob("seed-*.json"))
    assert stored and f"interrupted: stored {len(stored)} run(s)" in err, err
    assert (
        sorted(line.split(maxsplit=1)[1] for line in err.splitlines() if line.startswith("  stored "))
        == stored
    )
    assert not _leftovers(results) and not _children(driver.pid)

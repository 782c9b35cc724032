"""The local backend of :func:`~mtlbench.harness.grid.run_grid`: child processes on this machine.

Each run executes in its own Python process (``python -m mtlbench.harness.local RUN_DIR
PARENT_PID``), several at once, so a crash, a timeout or an out-of-memory kill of one run is
recorded with its status and the grid goes on. :class:`LocalPool` launches and watches them
from the grid's main thread.

Scratch space. A grid owns one temporary folder, ``$TMPDIR/mtlbench-grid-<pid>-*``, with an
``owner`` file and one sub-folder per run (request in, result and stderr out). The pool
removes a run's folder when it has read its result, and the whole folder when the grid ends
in any way it can see (finished, Ctrl-C, an error). A folder whose owner died unseen
(``kill -9`` between two runs) is removed by the next grid on this machine.

Children end with their grid. Each child leads its own session and process group, so a
terminal's Ctrl-C reaches the grid alone, which then stops its children itself
(:meth:`LocalPool.stop`: SIGTERM, SIGKILL after :data:`STOP_GRACE_S`). On Linux each child
asks the kernel for a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``), so when the
grid dies, even by ``kill -9``, its children receive SIGTERM. A child's SIGTERM handler
deletes its run folder (and the grid folder once empty) and exits at once.

Time limits. The child enforces the run's time limit itself (see
:mod:`mtlbench.harness.train`; it exits with code ``TIMEOUT_EXIT_CODE`` if the run does not
stop). When the request sets ``timeout_s``, the pool also kills a child still alive
:data:`BACKSTOP_S` after that limit (counted from the launch, which includes start-up).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mtlbench.harness.results import ResultFileError, RunResult, read_result, write_result
from mtlbench.harness.runner import RunRequest, execute, failure_result

__all__ = ["LocalPool", "remove_abandoned_scratch"]

logger = logging.getLogger(__name__)

#: seconds a stopped child gets between SIGTERM and SIGKILL
STOP_GRACE_S = 5.0
#: seconds past an explicit ``timeout_s`` after which the pool kills a child that did not end
BACKSTOP_S = 60.0
#: seconds between two looks at the children
POLL_S = 0.05
SCRATCH_PREFIX = "mtlbench-grid-"
_PR_SET_PDEATHSIG = 1


# ------------------------------------------------------------------------------ the driver
@dataclass
class _Child:
    request: RunRequest
    folder: Path
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    started: float = field(default_factory=time.monotonic)


class LocalPool:
    """At most ``workers`` child runs at once, in a scratch folder this pool owns."""

    def __init__(self, workers: int, threads: int) -> None:
        self.workers = workers
        self.threads = threads
        self.running: list[_Child] = []
        remove_abandoned_scratch()
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
        (self.scratch / "owner").write_text(
            json.dumps({"pid": os.getpid(), "start": _start_time(os.getpid())})
        )
        self._count = 0

    @property
    def has_room(self) -> bool:
        return len(self.running) < self.workers

    def launch(self, request: RunRequest) -> None:
        if request.threads is None:
            from dataclasses import replace

            request = replace(request, threads=self.threads)
        self._count += 1
        folder = self.scratch / f"run-{self._count}"
        folder.mkdir()
        (folder / "request.json").write_text(request.to_json())
        log = open(folder / "stderr.log", "wb")  # closed in _finish
        cmd = [sys.executable, "-m", "mtlbench.harness.local", str(folder), str(os.getpid())]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.running.append(_Child(request, folder, proc, log))

    def wait(self) -> list[tuple[RunRequest, RunResult]]:
        """Block until at least one child ends; return the runs that ended."""
        while True:
            done = self._reap()
            if done or not self.running:
                return done
            time.sleep(POLL_S)

    def _reap(self) -> list[tuple[RunRequest, RunResult]]:
        done = []
        now = time.monotonic()
        for child in list(self.running):
            if child.proc.poll() is None:
                limit = child.request.timeout_s
                if limit is None or now - child.started <= limit + BACKSTOP_S:
                    continue
                _kill(child.proc)
                result = failure_result(
                    child.request,
                    "timeout",
                    f"policy {child.request.method.name!r} exceeded the run's time limit of {limit:g} s; "
                    f"its worker process did not stop and was killed {BACKSTOP_S:g} s later",
                )
            else:
                result = self._result(child)
            self._finish(child)
            done.append((child.request, result))
        return done

    def stop(self) -> tuple[list[tuple[RunRequest, RunResult]], list[RunRequest]]:
        """Stop every child: (runs that had finished, runs stopped before finishing)."""
        for child in self.running:  # a child that wrote its result is only exiting: let it
            if child.proc.poll() is None and not (child.folder / "result.json").exists():
                _signal(child.proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while any(c.proc.poll() is None for c in self.running) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        finished, stopped = [], []
        for child in list(self.running):
            if child.proc.poll() is None:
                _kill(child.proc)
            if child.proc.returncode == 0 and (child.folder / "result.json").exists():
                finished.append((child.request, self._result(child)))
            else:
                stopped.append(child.request)
            self._finish(child)
        return finished, stopped

    def close(self) -> None:
        """Kill what still runs and remove the scratch folder."""
        for child in list(self.running):
            _kill(child.proc)
            self._finish(child)
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _finish(self, child: _Child) -> None:
        child.log.close()
        shutil.rmtree(child.folder, ignore_errors=True)
        self.running.remove(child)

    def _result(self, child: _Child) -> RunResult:
        from mtlbench.harness.train import TIMEOUT_EXIT_CODE

        request, code = child.request, child.proc.returncode
        out = child.folder / "result.json"
        if code == 0 and out.exists():
            try:
                return read_result(out)
            except ResultFileError as err:
                return failure_result(request, "error", f"the worker wrote an invalid result: {err}")
        if code == TIMEOUT_EXIT_CODE:  # the watchdog's own last words name the policy and limit
            last = _tail(child.folder / "stderr.log", 1)
            return failure_result(
                request,
                "timeout",
                last[0].removeprefix("mtlbench: ") if last else "the run exceeded its time limit",
            )
        tail = " | ".join(_tail(child.folder / "stderr.log"))
        status = "oom" if code in (-signal.SIGKILL, 128 + signal.SIGKILL) else "error"
        return failure_result(request, status, f"the worker process exited with code {code}: {tail}")


def _tail(log: Path, lines: int = 5) -> list[str]:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.strip().splitlines() if line.strip()][-lines:]


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the child leads its own group: its own children too
    except (ProcessLookupError, PermissionError):
        pass


def _kill(proc: subprocess.Popen[bytes]) -> None:
    _signal(proc, signal.SIGKILL)
    proc.wait()


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_alive(owner: dict[str, Any]) -> bool:
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    start = owner.get("start")
    return start is None or _start_time(pid) in (None, start)


def remove_abandoned_scratch(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove grid scratch folders (``mtlbench-grid-*`` under ``root``, default the temp dir)
    whose owning grid is no longer running on this machine; return them."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        try:
            owner = json.loads((folder / "owner").read_text())
        except (OSError, ValueError):
            owner = {}
        if not isinstance(owner, dict) or not owner:
            # no owner file: being created right now, or torn; leave young ones alone
            try:
                if time.time() - folder.stat().st_mtime < 3600:
                    continue
            except OSError:
                continue
        elif _owner_alive(owner):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        logger.info("removed %s, left by a grid that is no longer running", folder)
    return removed


# ------------------------------------------------------------------------------ the child
def _die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the grid process dies (Linux); elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - exotic libc
            pass
    if os.getppid() != parent:  # the grid died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _remove_folder(folder: Path, parent: int) -> None:
    """Remove this run's folder; if the grid is dead, its folder too once no other run is in it."""
    shutil.rmtree(folder, ignore_errors=True)
    if os.getppid() == parent:
        return
    grid = folder.parent
    try:
        if [p.name for p in grid.iterdir()] == ["owner"]:
            (grid / "owner").unlink()
            grid.rmdir()
    except OSError:
        pass  # another orphaned run of the same grid is still there: it removes the folder


def _child_main(argv: Iterable[str]) -> int:
    folder_arg, parent_arg = list(argv)
    folder, parent = Path(folder_arg), int(parent_arg)

    def on_term(signum: int, frame: object) -> None:
        # stopped by the grid (Ctrl-C) or orphaned (parent-death signal): the run is not stored
        # and nobody will read this folder again
        _remove_folder(folder, parent)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the grid's to handle
    _die_with_parent(parent)
    request = RunRequest.from_json((folder / "request.json").read_text())
    result = execute(request, in_child=True)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the result is about to exist: let the grid read it
    write_result(folder / "result.json", result)
    if os.getppid() != parent:  # the grid is gone: nobody will read it
        _remove_folder(folder, parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))

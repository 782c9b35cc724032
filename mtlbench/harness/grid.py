"""Run grids of (method x env x seed) and store one result file per run.

:func:`run_grid` checks every request up front (:func:`~mtlbench.harness.storage.check_requests`,
:func:`~mtlbench.harness.storage.check_stored`), skips runs whose result file already exists
for the same spec hash, method version and code hash, then hands the rest to a backend:

* ``inline``: one after another in this process (debugging, tests);
* ``local`` (default): each run in its own child process, several at once: a crash, a
  timeout or an out-of-memory kill of one run is recorded with its status and the grid goes
  on (see :mod:`mtlbench.harness.local`);
* ``ray``: one Ray task per run (see :mod:`mtlbench.harness.ray_backend`).

The driver alone writes result files, atomically, so workers need no shared file system.
Every run has a time limit (:func:`~mtlbench.harness.runner.execute`). A run is claimed before
it starts (see :mod:`mtlbench.harness.claims`), so two grids on one results folder never train
it twice. On Ctrl-C the grid launches nothing more, stops its running runs, stores every run
that finished and raises :class:`GridInterrupted`, whose report says what was stored and what
not. The backends import :mod:`mtlbench.harness.runner`, never this module: no import cycle.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtlbench.harness.results import (
    RunResult,
    check_writable,
)
from mtlbench.harness.runner import RunRequest, execute
from mtlbench.harness.storage import check_requests, check_stored, is_done, store

__all__ = ["BACKENDS", "GridInterrupted", "GridReport", "default_workers", "run_grid"]

logger = logging.getLogger(__name__)

BACKENDS = ("inline", "local", "ray")


# ----------------------------------------------------------------------------- the grid
@dataclass
class GridReport:
    """What a grid did, path by path (``failed`` paths are in ``written`` too)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (path, status: message)
    #: runs another grid was training, not run here: (path, "claimed by pid N on HOST since T")
    claimed: list[tuple[Path, str]] = field(default_factory=list)
    #: after an interruption: runs stopped while running, and runs never started (none stored)
    stopped: list[Path] = field(default_factory=list)
    not_started: list[Path] = field(default_factory=list)

    def interruption_summary(self, limit: int = 20) -> str:
        """What an interrupted grid stored and what it did not, one path per line."""
        lines = [
            f"interrupted: stored {len(self.written)} run(s) that finished"
            + (f" ({len(self.failed)} with a failure status)" if self.failed else "")
            + f"; {len(self.stopped)} stopped while running and {len(self.not_started)} not started "
            "are not stored (run the same command again to run them)"
        ]
        for label, paths in (
            ("stored", self.written),
            ("stopped", self.stopped),
            ("not started", self.not_started),
        ):
            lines += [f"  {label} {p}" for p in paths[:limit]]
            if len(paths) > limit:
                lines.append(f"  ... and {len(paths) - limit} more {label}")
        return "\n".join(lines)


class GridInterrupted(KeyboardInterrupt):
    """A grid stopped by Ctrl-C (SIGINT) or, through the CLI, SIGTERM; ``report`` says what was
    stored and what was not."""

    def __init__(self, report: GridReport) -> None:
        super().__init__("grid interrupted")
        self.report = report


def run_grid(
    requests: Sequence[RunRequest],
    *,
    backend: str = "local",
    workers: int | None = None,
    progress: bool = True,
    on_result: Callable[[RunRequest, RunResult], None] | None = None,
    ray_address: str | None = None,
) -> GridReport:
    """Run every request not already done on ``backend``; store each result as it arrives.

    Each run is claimed just before it starts and released once its result is stored; a run
    claimed by another grid is skipped and listed in ``report.claimed``. On Ctrl-C nothing
    more starts, running runs are stopped, every finished run is stored, every claim is
    released, and :class:`GridInterrupted` (a ``KeyboardInterrupt``) carries the report.
    """
    from mtlbench.harness import claims

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    check_requests(requests, workers=workers)
    for directory in sorted({r.results_dir for r in requests}):
        check_writable(directory)
    check_stored(requests)
    report = GridReport()
    todo = []
    for request in requests:
        if is_done(request):
            report.skipped.append(request.path)
        else:
            todo.append(request)
    if backend != "ray":  # Ray workers may see data the driver does not
        _check_datasets_present(todo)  # only what will run: a stored grid loads no dataset

    held: dict[int, claims.Claim] = {}  # by id() of the request
    started: list[RunRequest] = []
    stored: set[int] = set()

    def claimed_runs() -> Iterator[RunRequest]:
        """The runs to start, each claimed as it is taken (lazily: as a backend has room)."""
        for request in todo:
            claim = claims.acquire(request.path)
            if isinstance(claim, claims.Holder):
                report.claimed.append((request.path, str(claim)))
                logger.warning("skipping %s: %s", request.label(), claim)
                continue
            if is_done(request):  # the other grid stored it between our two looks
                claim.release()
                report.skipped.append(request.path)
                continue
            held[id(request)] = claim
            started.append(request)
            yield request

    def record(request: RunRequest, result: RunResult) -> None:
        path = store(request, result)
        stored.add(id(request))
        report.written.append(path)
        claim = held.pop(id(request), None)
        if claim is not None:
            claim.release()
        if result.status != "ok":
            report.failed.append((path, f"{result.status}: {result.message}"))
        if on_result is not None:
            on_result(request, result)

    bar = None
    if progress and (len(todo) > 1 or (todo and backend != "inline")):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"grid ({backend})", unit="run")

    def advance() -> None:
        if bar is not None:
            bar.update(1)

    try:
        if backend == "inline":
            for request in claimed_runs():
                record(request, execute(request, progress=progress))
                advance()
        elif backend == "local":
            _run_local(claimed_runs(), workers, record, advance)
        else:
            from mtlbench.harness.ray_backend import run_on_ray

            flights = run_on_ray(claimed_runs(), address=ray_address, workers=workers)
            try:
                for request, result in flights:
                    record(request, result)
                    advance()
            finally:
                flights.close()  # cancels the tasks still running (Ctrl-C, an error)
    except KeyboardInterrupt as err:
        began = {id(r) for r in started}
        report.stopped = [r.path for r in started if id(r) not in stored]
        report.not_started = [
            r.path
            for r in todo
            if id(r) not in began and r.path not in report.skipped and r.path not in dict(report.claimed)
        ]
        raise GridInterrupted(report) from err
    finally:
        for claim in held.values():
            claim.release()
        if bar is not None:
            bar.close()
    return report


def _run_local(
    runs: Iterator[RunRequest],
    workers: int | None,
    record: Callable[[RunRequest, RunResult], None],
    advance: Callable[[], None],
) -> None:
    """The local backend's loop: keep ``workers`` children busy; on Ctrl-C stop them and
    record the runs that finished before re-raising."""
    from mtlbench.harness.local import LocalPool

    n = workers or default_workers()
    pool = LocalPool(n, threads=max(1, (os.cpu_count() or 1) // n))
    try:
        try:
            more = True
            while True:
                while more and pool.has_room:
                    request = next(runs, None)
                    if request is None:
                        more = False
                    else:
                        pool.launch(request)
                if not pool.running:
                    break
                for request, result in pool.wait():
                    record(request, result)
                    advance()
        except KeyboardInterrupt:
            with _deferred_sigint():
                if pool.running:
                    logger.warning("Ctrl-C: stopping %d running run(s)", len(pool.running))
                finished, _ = pool.stop()
                for request, result in finished:
                    record(request, result)
            raise
    finally:
        pool.close()


class _deferred_sigint:
    """While stopping children and storing finished runs, a second Ctrl-C (or SIGTERM) is
    ignored (the stop takes at most a few seconds), so that the clean-up is never cut short."""

    def __enter__(self) -> None:
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _check_datasets_present(requests: Sequence[RunRequest]) -> None:
    """Fail before any run starts when a dataset is missing (one error, no failed result files)."""
    from mtlbench.data import DatasetNotFound, load_dataset
    from mtlbench.registration import spec

    seen = set()
    for request in requests:
        dataset = spec(request.env_id).dataset
        key = (dataset.name, request.data_root)
        if key in seen:
            continue
        seen.add(key)
        try:
            load_dataset(dataset.name, request.data_root, **dict(dataset.kwargs))
        except DatasetNotFound:
            raise
        except Exception:  # anything else is the run's business: it is recorded with its status
            pass


def default_workers() -> int:
    """As many runs at once as there are GPUs, else one per two CPU cores (at least one)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count()
    except ImportError:  # pragma: no cover
        pass
    return max(1, (os.cpu_count() or 1) // 2)

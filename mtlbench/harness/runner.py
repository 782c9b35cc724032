"""Run grids of (method x env x seed) and store one result file per run.

A :class:`RunRequest` names one run; :func:`execute` performs it in this process and
returns its :class:`RunResult`. :func:`run_grid` checks every request up front
(:func:`check_requests`, :func:`check_stored`), skips runs whose result file already exists
for the same spec hash, method version and code hash, then hands the rest to a backend:

* ``inline``: one after another in this process (debugging, tests);
* ``local`` (default): each run in its own child process, several at once: a crash, a
  timeout or an out-of-memory kill of one run is recorded with its status and the grid goes
  on (see :mod:`mtlbench.harness.local`);
* ``ray``: one Ray task per run (see :mod:`mtlbench.harness.ray_backend`).

The driver alone writes result files, atomically, so workers need no shared file system.
Every run has a time limit (:func:`execute`). A run is claimed before it starts (see
:mod:`mtlbench.harness.claims`), so two grids on one results folder never train it twice.
On Ctrl-C the grid launches nothing more, stops its running runs, stores every run that
finished and raises :class:`GridInterrupted`, whose report says what was stored and what not.
A stored result is never overwritten by a run of another protocol or other code: an
unofficial run (``overrides``) has its own folder (:func:`~mtlbench.harness.results.result_path`),
a stored run of another spec hash or code hash is an error (:class:`StoredResultConflict`)
unless the request says ``rerun``, and then the old file is kept beside the new one.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mtlbench.harness.results import (
    ISOLATION_MODES,
    Cost,
    MethodInfo,
    ResultFileError,
    RunResult,
    check_writable,
    default_results_dir,
    keep_beside,
    read_result,
    result_path,
    software_environment,
    write_result,
)

__all__ = [
    "BACKENDS",
    "GridInterrupted",
    "GridReport",
    "MethodRef",
    "RunRequest",
    "StoredResultConflict",
    "check_requests",
    "check_stored",
    "execute",
    "failure_result",
    "run_grid",
]

logger = logging.getLogger(__name__)

BACKENDS = ("inline", "local", "ray")


@dataclass(frozen=True)
class MethodRef:
    """A method as the harness sees it: how to build the policy, and how results name it.

    ``entry`` is ``"builtin:<registry id>"`` (``"builtin:rlw+cagrad"`` composes),
    ``"/path/to/module.py:Class"`` (a submission's own module) or ``"package.module:Class"``.
    ``level`` is the declared level (a submission's YAML), so a failed run's result never
    imports the method to learn it. ``isolation`` is the method's default isolation
    (``"process"`` for submitted code, see :mod:`mtlbench.harness.isolation`); a request's
    own ``isolation`` wins over it, and ``None`` for both means ``"none"``.
    """

    name: str
    version: str = "1"
    entry: str = ""
    hparams: dict[str, Any] = field(default_factory=dict)
    code_hash: str | None = None
    level: str | None = None
    isolation: str | None = None

    @classmethod
    def builtin(cls, name: str, **hparams: Any) -> MethodRef:
        # the policy class's version (mtlbench.policies.version_of), which the built-in
        # submissions/<name>/submission.yaml declare too (tested), so `mtlbench benchmark` and
        # `mtlbench submit submissions/<name>` store the same runs.
        from mtlbench.policies import version_of

        return cls(name=name, version=version_of(name), entry=f"builtin:{name}", hparams=hparams)

    def make_policy(self) -> Any:
        from mtlbench import policies

        entry = self.entry or f"builtin:{self.name}"
        kind, _, target = entry.partition(":")
        if kind == "builtin":
            return policies.make(target, **self.hparams)
        module_path, _, attr = entry.rpartition(":")
        if module_path.endswith(".py"):
            import importlib.util

            module_name = f"mtlbench_submission_{abs(hash(module_path))}"
            spec = importlib.util.spec_from_file_location(module_name, module_path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {module_path!r} (method {self.name!r})")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        else:
            import importlib

            module = importlib.import_module(module_path)
        return getattr(module, attr)(**self.hparams)


@dataclass(frozen=True)
class RunRequest:
    """One run of the grid. Runtime fields (device, data root, threads) never change results' identity.

    ``rerun``: replace a stored result of another spec hash or code hash (the old file is
    kept beside as ``seed-<k>.json.replaced-<n>``) instead of refusing.
    """

    env_id: str
    method: MethodRef
    seed: int
    results_dir: str = field(default_factory=default_results_dir)
    device: str | None = None
    data_root: str | None = None
    timeout_s: float | None = None
    threads: int | None = None
    checkpoint_dir: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    rerun: bool = False

    def spec(self) -> Any:
        """The protocol this run trains under: the registered spec with the overrides applied."""
        from mtlbench.registration import spec

        found = spec(self.env_id)
        return found.replace(self.overrides) if self.overrides else found

    #: "none" (the policy in this process), "process" (its own, mtlbench.harness.isolation);
    #: None: the method's default. A runtime field: it never changes the run's identity.
    isolation: str | None = None
    #: address space (MiB) an isolated policy may add; None: the isolation default
    policy_memory_mb: int | None = None

    def __post_init__(self) -> None:
        if self.isolation not in (None, *ISOLATION_MODES):
            raise ValueError(f"isolation must be one of {ISOLATION_MODES}, got {self.isolation!r}")

    @property
    def effective_isolation(self) -> str:
        return self.isolation or self.method.isolation or "none"

    @property
    def path(self) -> Path:
        """``<results>/<env-id>/<method>@<version>/seed-<k>.json``; an unofficial run (any
        override) goes to ``<method>@<version>+unofficial-<spec hash>/``, apart from official runs."""
        from mtlbench.registration import spec

        return result_path(
            self.results_dir,
            spec(self.env_id).id,
            self.method.name,
            self.method.version,
            self.seed,
            unofficial_spec_hash=self.spec().hash if self.overrides else None,
        )

    @property
    def checkpoint_path(self) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        return (
            Path(self.checkpoint_dir)
            / f"{self.env_id}__{self.method.name}@{self.method.version}__seed-{self.seed}.pt"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunRequest:
        data = json.loads(text)
        data["method"] = MethodRef(**data["method"])
        return cls(**data)

    def label(self) -> str:
        return f"{self.method.name}@{self.method.version} on {self.env_id}, seed {self.seed}"


def execute(request: RunRequest, *, progress: bool = False, in_child: bool = False) -> RunResult:
    """Perform one run in this process and return its result (failures are statuses).

    The run's time limit is ``request.timeout_s``, else the default of its budget
    (:func:`~mtlbench.harness.train.default_time_limit_s`); ``in_child`` (a worker process of
    the local backend) lets the time-limit watchdog end the process if the run does not stop.
    """
    import torch

    import mtlbench
    from mtlbench.harness.isolation import PolicyProcessFailure
    from mtlbench.harness.train import TimeLimit, default_time_limit_s, env_kwargs_for, train

    if request.threads:
        torch.set_num_threads(request.threads)
    started = time.monotonic()
    try:
        policy = _make_policy(request, started)
    except PolicyProcessFailure as err:
        return failure_result(request, err.status, f"setting up the run failed: {err}")
    except Exception as err:
        return failure_result(request, "error", f"setting up the run failed: {type(err).__name__}: {err}")
    try:
        env = mtlbench.make(
            request.env_id,
            device=request.device,
            data_root=request.data_root,
            overrides=request.overrides or None,
            **env_kwargs_for(policy),
        )
    except Exception as err:
        _close(policy)
        return failure_result(request, "error", f"setting up the run failed: {type(err).__name__}: {err}")
    if request.timeout_s is not None:
        limit = TimeLimit(request.timeout_s, "set by --timeout", hard_exit=in_child)
    else:
        limit = TimeLimit(
            default_time_limit_s(env.total_steps),
            f"the default for a budget of {env.total_steps} steps, see default_time_limit_s; "
            "set --timeout to change it",
            hard_exit=in_child,
        )
    try:
        return train(
            env,
            policy,
            request.seed,
            method_name=request.method.name,
            method_version=request.method.version,
            code_hash=request.method.code_hash,
            progress=progress,
            checkpoint_path=request.checkpoint_path,
            time_limit=limit,
        )
    finally:
        env.close()
        _close(policy)


def _make_policy(request: RunRequest, started: float) -> Any:
    """The request's policy: built here, or in its own process when the run is isolated."""
    from mtlbench.harness.isolation import DEFAULT_MEMORY_MB, IsolatedPolicy, IsolationLimits

    if request.effective_isolation == "none":
        return request.method.make_policy()
    limits = IsolationLimits(
        memory_mb=request.policy_memory_mb or DEFAULT_MEMORY_MB,
        deadline=None if request.timeout_s is None else started + request.timeout_s,
    )
    return IsolatedPolicy(
        request.method.make_policy, label=request.method.name, limits=limits, threads=request.threads
    )


def _close(policy: Any) -> None:
    close = getattr(policy, "close", None)
    if callable(close):
        close()


def failure_result(request: RunRequest, status: str, message: str) -> RunResult:
    """A result file for a run that ended before producing one (timeout, crash, bad setup)."""
    spec = request.spec()
    level = request.method.level
    if level is None and request.effective_isolation == "none":  # never import isolated code here
        try:
            level = request.method.make_policy().level
        except Exception:
            level = None
    if level not in ("loss", "gradient"):
        level = "loss"
    return RunResult(
        env_id=spec.id,
        spec=spec.to_dict(),
        spec_hash=spec.hash,
        evaluator_version=spec.evaluator_version,
        official=not request.overrides,
        method=MethodInfo(
            name=request.method.name,
            version=request.method.version,
            level=level,  # type: ignore[arg-type]
            hparams=request.method.hparams,
            code_hash=request.method.code_hash,
        ),
        seed=request.seed,
        status=status,  # type: ignore[arg-type]
        message=message,
        cost=Cost(steps=0, wall_time_s=0.0, time_per_step_s=0.0, device=request.device or "unknown"),
        environment=software_environment(),
        isolation=request.effective_isolation,  # type: ignore[arg-type]
    )


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
    """A grid stopped by Ctrl-C (SIGINT); ``report`` says what was stored and what was not."""

    def __init__(self, report: GridReport) -> None:
        super().__init__("grid interrupted")
        self.report = report


#: statuses that are outcomes of the method: stored for good. timeout, oom and error may be
#: the machine's fault, so those runs are tried again on the next invocation
FINAL_STATUSES = ("ok", "diverged", "invalid_action")


class StoredResultConflict(ValueError):
    """Stored result files were made under another protocol (spec hash) or by other code
    (code hash) than the requested runs; the message names each file and both hashes."""


def _stored(path: Path) -> RunResult | None:
    if not path.exists():
        return None
    try:
        return read_result(path)
    except ResultFileError:
        return None  # kept beside as .unreadable when the new result is stored


def _differs(request: RunRequest, stored: RunResult) -> str | None:
    """Why ``stored`` is not a result of ``request``'s protocol and code, or None."""
    current = request.spec().hash
    if stored.spec_hash != current:
        return (
            f"it was made under spec hash {stored.spec_hash}, the run's protocol has spec hash "
            f"{current} (the env changed without a version bump?)"
        )
    if stored.method.version != request.method.version:
        return f"it holds version {stored.method.version!r}, the run is version {request.method.version!r}"
    old, new = stored.method.code_hash, request.method.code_hash
    if old is not None and new is not None and old != new:
        return (
            f"it was made by code hash {old}, the method's code now has hash {new} "
            f"(same version {request.method.version!r})"
        )
    return None


def is_done(request: RunRequest) -> bool:
    """True when a valid, final result of the same spec hash, method version and code hash is stored.

    A stored code hash of ``None`` (built-in methods run by name) matches any code hash.
    """
    stored = _stored(request.path)
    return stored is not None and stored.status in FINAL_STATUSES and _differs(request, stored) is None


def check_stored(requests: Sequence[RunRequest]) -> None:
    """Refuse, before anything runs, to replace a stored result of another protocol or code.

    For each request without ``rerun``: its stored file, if any, must have the request's
    spec hash and code hash; and no other seed in its ``<method>@<version>/`` folder may come
    from other code (seeds of one version would otherwise mix two codes). Raises
    :class:`StoredResultConflict` naming the files, both hashes and the two ways out.
    """
    problems: list[str] = []
    folders: dict[Path, list[tuple[Path, RunResult]]] = {}
    for request in requests:
        if request.rerun:
            continue
        path = request.path
        stored = _stored(path)
        if stored is not None:
            why = _differs(request, stored)
            if why:
                problems.append(f"{path}: {why}")
            continue
        new = request.method.code_hash
        if new is None:
            continue
        if path.parent not in folders:
            folders[path.parent] = [
                (p, r) for p in sorted(path.parent.glob("seed-*.json")) if (r := _stored(p)) is not None
            ]
        for other_path, other in folders[path.parent]:
            old = other.method.code_hash
            if old is not None and old != new:
                problems.append(
                    f"{other_path}: made by code hash {old}, the method's code "
                    f"now has hash {new} (same version {request.method.version!r}); seed {request.seed} "
                    "would mix two codes under one version"
                )
                break
    if problems:
        problems = list(dict.fromkeys(problems))
        shown = problems[:5] + ([f"... and {len(problems) - 5} more"] if len(problems) > 5 else [])
        raise StoredResultConflict(
            f"{len(problems)} stored result(s) are not results of this protocol and code, "
            "so nothing was run: "
            + "; ".join(shown)
            + ". Bump `version` in submission.yaml when the method's code changed (each version "
            "is stored apart), or pass --rerun to train these runs again (each old file is kept "
            "beside the new one as seed-<k>.json.replaced-<n>, never deleted)."
        )


def check_requests(requests: Sequence[RunRequest], *, workers: int | None = None) -> None:
    """Validate a grid before anything starts: one ``ValueError`` naming the first problem.

    Seeds >= 0, a positive time limit and thread count, ``workers`` >= 1, each run listed
    once, every env id registered and every override naming a field of its env's spec.
    """
    from mtlbench.registration import check_overrides, spec

    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    seen: set[Path] = set()
    checked: set[tuple[str, str]] = set()
    for request in requests:
        if request.seed < 0:
            raise ValueError(f"seeds must be >= 0, got {request.seed} ({request.label()})")
        if request.timeout_s is not None and not request.timeout_s > 0:
            raise ValueError(f"the time limit must be > 0 seconds, got {request.timeout_s}")
        if request.threads is not None and request.threads < 1:
            raise ValueError(f"threads must be >= 1, got {request.threads}")
        key = (request.env_id, json.dumps(request.overrides, sort_keys=True, default=str))
        if key not in checked:
            checked.add(key)
            check_overrides(spec(request.env_id), request.overrides)
        if request.path in seen:
            raise ValueError(f"{request.label()} is listed twice (it would write {request.path} twice)")
        seen.add(request.path)


def store(request: RunRequest, result: RunResult) -> Path:
    """Write the result atomically; no stored result is lost.

    An unreadable old file is kept beside as ``seed-<k>.json.unreadable``; a final result
    (ok, diverged, invalid_action) or one of another spec hash, version or code hash as
    ``seed-<k>.json.replaced-<n>``. Only a failure record (timeout, oom, error) of the
    same protocol and code is replaced: that run was being tried again.
    """
    path = request.path
    if path.exists():
        try:
            stored = read_result(path)
        except ResultFileError:
            unreadable = path.with_suffix(".json.unreadable")
            if unreadable.exists():
                keep_beside(path, "unreadable")
            else:
                os.replace(path, unreadable)
        else:
            if stored.status in FINAL_STATUSES or _differs(request, stored) is not None:
                keep_beside(path, "replaced")
    return write_result(path, result)


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
    """While stopping children and storing finished runs, a second Ctrl-C is ignored (the stop
    takes at most a few seconds), so that the clean-up itself is never cut short."""

    def __enter__(self) -> None:
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


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

"""Run grids of (method x env x seed) and store one result file per run.

A :class:`RunRequest` names one run; :func:`execute` performs it in this process and
returns its :class:`RunResult`. :func:`run_grid` skips runs whose result file already
exists for the same spec hash and method version, then hands the rest to a backend:

* ``inline``: one after another in this process (debugging, tests);
* ``local`` (default): each run in its own child process (``python -m
  mtlbench.harness.runner``) with a time limit, several at once: a crash, a timeout or an
  out-of-memory kill of one run is recorded with its status and the grid goes on;
* ``ray``: one Ray task per run (see :mod:`mtlbench.harness.ray_backend`).

The driver alone writes result files, atomically, so workers need no shared file system.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mtlbench.harness.results import (
    ISOLATION_MODES,
    Cost,
    MethodInfo,
    ResultFileError,
    RunResult,
    check_writable,
    read_result,
    result_path,
    software_environment,
    write_result,
)

__all__ = ["BACKENDS", "GridReport", "MethodRef", "RunRequest", "execute", "failure_result", "run_grid"]

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
        # version "1": the version the built-in submissions/<name>/submission.yaml declare, so
        # `mtlbench benchmark` and `mtlbench submit submissions/<name>` store the same runs.
        return cls(name=name, version="1", entry=f"builtin:{name}", hparams=hparams)

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
    """One run of the grid. Runtime fields (device, data root, threads) never change results' identity."""

    env_id: str
    method: MethodRef
    seed: int
    results_dir: str = "leaderboard/results"
    device: str | None = None
    data_root: str | None = None
    timeout_s: float | None = None
    threads: int | None = None
    checkpoint_dir: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
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
        from mtlbench.registration import spec

        return result_path(
            self.results_dir, spec(self.env_id).id, self.method.name, self.method.version, self.seed
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


def execute(request: RunRequest, *, progress: bool = False) -> RunResult:
    """Perform one run in this process and return its result (failures are statuses)."""
    import torch

    import mtlbench
    from mtlbench.harness.isolation import PolicyProcessFailure
    from mtlbench.harness.train import env_kwargs_for, train

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
    from mtlbench.registration import spec as find_spec

    spec = find_spec(request.env_id)
    if request.overrides:
        spec = spec.replace(request.overrides)
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
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (path, status: message)


def is_done(request: RunRequest) -> bool:
    """True when a valid, final result for the same spec hash and method version is stored."""
    from mtlbench.registration import spec

    path = request.path
    if not path.exists():
        return False
    try:
        stored = read_result(path)
    except ResultFileError:
        return False
    current = spec(request.env_id)
    if request.overrides:
        current = current.replace(request.overrides)
    # diverged / invalid_action are outcomes of the method and stay; timeout, oom and error
    # may be the machine's fault, so those runs are tried again on the next invocation
    return (
        stored.spec_hash == current.hash
        and stored.method.version == request.method.version
        and stored.status in ("ok", "diverged", "invalid_action")
    )


def store(request: RunRequest, result: RunResult) -> Path:
    """Write the result atomically; an unreadable old file is kept beside it, never lost."""
    path = request.path
    if path.exists():
        try:
            read_result(path)
        except ResultFileError:
            os.replace(path, path.with_suffix(".json.unreadable"))
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
    """Run every request not already done on ``backend``; store each result as it arrives."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    for directory in sorted({r.results_dir for r in requests}):
        check_writable(directory)
    if backend != "ray":  # Ray workers may see data the driver does not
        _check_datasets_present(requests)
    report = GridReport()
    todo = []
    for request in requests:
        if is_done(request):
            report.skipped.append(request.path)
        else:
            todo.append(request)

    def record(request: RunRequest, result: RunResult) -> None:
        path = store(request, result)
        report.written.append(path)
        if result.status != "ok":
            report.failed.append((path, f"{result.status}: {result.message}"))
        if on_result is not None:
            on_result(request, result)

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"grid ({backend})", unit="run")
    try:
        if backend == "inline":
            for request in todo:
                record(request, execute(request, progress=progress))
                if bar is not None:
                    bar.update(1)
        elif backend == "local":
            n = workers or default_workers()
            threads = max(1, (os.cpu_count() or 1) // n)
            with ThreadPoolExecutor(max_workers=n) as pool:
                futures = {
                    pool.submit(run_in_child, replace(r, threads=r.threads or threads)): r for r in todo
                }
                for future in as_completed(futures):
                    record(futures[future], future.result())
                    if bar is not None:
                        bar.update(1)
        else:
            from mtlbench.harness.ray_backend import run_on_ray

            for request, result in run_on_ray(todo, address=ray_address, workers=workers):
                record(request, result)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return report


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


def run_in_child(request: RunRequest) -> RunResult:
    """Run ``request`` in a fresh Python process with its time limit; never raises for the run."""
    with tempfile.TemporaryDirectory(prefix="mtlbench-run-") as tmp:
        out = Path(tmp) / "result.json"
        req = Path(tmp) / "request.json"
        req.write_text(request.to_json())
        cmd = [sys.executable, "-m", "mtlbench.harness.runner", str(req), str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=request.timeout_s)
        except subprocess.TimeoutExpired:
            return failure_result(
                request, "timeout", f"the run exceeded its time limit of {request.timeout_s} s"
            )
        if proc.returncode == 0 and out.exists():
            try:
                return read_result(out)
            except ResultFileError as err:
                return failure_result(request, "error", f"the worker wrote an invalid result: {err}")
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        status = "oom" if proc.returncode in (-9, 137) else "error"
        return failure_result(
            request, status, f"the worker process exited with code {proc.returncode}: {' | '.join(tail)}"
        )


def _worker_main(argv: Iterable[str]) -> int:
    request_file, out_file = list(argv)
    request = RunRequest.from_json(Path(request_file).read_text())
    result = execute(request)
    write_result(Path(out_file), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker_main(sys.argv[1:]))

"""One run: :class:`RunRequest` names it, :func:`execute` performs it in this process.

A :class:`RunRequest` holds what identifies a run (env id, method, seed, overrides) and how to
run it (results folder, device, threads, time limit, isolation); its ``path`` is where the
result goes (:func:`~mtlbench.harness.results.result_path`; unofficial runs have their own
folder). :func:`execute` builds the policy (here, or in its own process when isolated: see
:mod:`mtlbench.harness.isolation`) and the env, and trains under the run's time limit; it
never raises for a failure of the run. :func:`failure_result` is the result file of a run
that ended before producing one. Grids of runs are :mod:`mtlbench.harness.grid`; the rules
for stored results are :mod:`mtlbench.harness.storage`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mtlbench.harness.results import (
    ISOLATION_MODES,
    Cost,
    MethodInfo,
    RunResult,
    default_results_dir,
    result_path,
    software_environment,
)

__all__ = ["MethodRef", "RunRequest", "execute", "failure_result"]


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
            module_spec = importlib.util.spec_from_file_location(module_name, module_path)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"cannot import {module_path!r} (method {self.name!r})")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            module_spec.loader.exec_module(module)
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

"""The Ray backend of :func:`mtlbench.harness.grid.run_grid`: one Ray task per run.

:func:`run_on_ray` connects to a Ray cluster (or starts a local instance), submits one
remote task per :class:`~mtlbench.harness.runner.RunRequest` and yields ``(request,
result)`` pairs in completion order. Each task calls :func:`~mtlbench.harness.runner.execute`
in a Ray worker and returns the :class:`~mtlbench.harness.results.RunResult` as a JSON-able
dict; the *driver* validates it and ``run_grid`` writes the result file, atomically. Workers
therefore need mtlbench and its dependencies, and the data under their data root, but no
shared file system for results. See ``docs/scaling.md`` for cluster set-ups.

Resources per task:

* ``num_gpus`` = 1 when the cluster has GPUs (or the request names a ``cuda`` device), or the
  env's fractional share ``gpu_fraction`` (an optional attribute of its ``BenchmarkSpec``,
  ``0 < gpu_fraction <= 1``) so that small envs can share one GPU. Ray makes the assigned GPU
  the worker's only visible device, so ``cuda:N`` is sent as ``cuda``;
* ``num_cpus`` = ``request.threads``; when unset, a GPU run gets its share of its node's
  CPUs per GPU and a CPU run gets 1. The worker sets torch's thread count to it.

Failures become statuses, never half-written files and never a stopped grid:

* ``request.timeout_s`` is measured from the moment the task *starts* in a worker (a task
  still queued for resources is not timed): past it the driver cancels the task with
  ``ray.cancel(force=True)``, which kills its worker, and records status ``timeout``;
* a worker that dies (``WorkerCrashedError``, a lost node) is retried once by Ray
  (``max_retries=1``); a retry resumes from the run's last checkpoint when
  ``request.checkpoint_dir`` is on storage every node sees, and starts over otherwise. A run
  that still fails is recorded as ``error``; one killed by Ray's memory monitor, or that
  raised a CUDA out-of-memory error, as ``oom``;
* an exception raised inside the task (a bug, a bad entry point) is recorded as ``error``
  with its type and message.

``workers`` caps the number of tasks in flight; ``None`` submits them all and lets Ray queue
them by resources (which also lets an autoscaler see the whole demand).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Generator, Iterable
from dataclasses import dataclass, replace
from typing import Any

from mtlbench.harness.results import RunResult
from mtlbench.harness.runner import RunRequest, failure_result

__all__ = ["cpus_per_gpu", "gpu_fraction", "run_on_ray", "task_options"]

logger = logging.getLogger(__name__)

#: how often (seconds) the driver looks for newly started tasks while some have a time limit
POLL_S = 0.5
#: system-failure retries per task (worker or node death); exceptions inside a run are not retried
MAX_RETRIES = 1


# ------------------------------------------------------------------------------ the task
def _execute_json(request_json: str, key: int, start_log: Any) -> dict[str, Any]:
    """The body of one Ray task: run the request here, return the result as plain JSON data."""
    from mtlbench.harness.runner import execute

    start_log.mark.remote(key)  # fire and forget: the driver starts this run's clock
    result = execute(RunRequest.from_json(request_json))
    import torch

    if torch.cuda.is_available():  # Ray reuses the worker: hand cached blocks back to a shared GPU
        torch.cuda.empty_cache()
    return result.model_dump(mode="json")


class _StartLog:
    """A tiny actor that tasks tell when they start, so time limits exclude queueing."""

    def __init__(self) -> None:
        self._started: list[int] = []

    def mark(self, key: int) -> None:
        self._started.append(key)

    def drain(self) -> list[int]:
        started, self._started = self._started, []
        return started


# ------------------------------------------------------------------------------ resources
def gpu_fraction(env_id: str) -> float | None:
    """The share of one GPU that a run of ``env_id`` declares it needs (None: a whole GPU).

    Read from the optional ``gpu_fraction`` attribute of the env's ``BenchmarkSpec``, a
    runtime hint that is not part of the protocol.
    """
    from mtlbench.registration import spec

    value = getattr(spec(env_id), "gpu_fraction", None)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1:
        raise ValueError(f"env {env_id!r}: gpu_fraction must be a number in (0, 1], got {value!r}")
    return float(value)


def task_options(request: RunRequest, *, cpus_per_gpu: float | None) -> tuple[RunRequest, dict[str, Any]]:
    """The request as the worker should run it, and the Ray options of its task.

    ``cpus_per_gpu`` is the smallest ratio of CPUs to GPUs over the cluster's GPU nodes
    (None: the cluster has no GPUs). A GPU run with no ``threads`` of its own gets its GPU
    share of those CPUs, so that a node's cores are split evenly among its runs; a CPU run
    gets one thread, which packs the most runs on a node.
    """
    device = request.device
    wants_gpu = (device is None and cpus_per_gpu is not None) or (device or "").startswith("cuda")
    share = (gpu_fraction(request.env_id) or 1.0) if wants_gpu else 0.0
    if request.threads:
        threads = request.threads
    elif wants_gpu and cpus_per_gpu is not None:
        threads = max(1, math.floor(cpus_per_gpu * share))
    else:
        threads = 1
    options: dict[str, Any] = {
        "num_cpus": threads,
        "max_retries": MAX_RETRIES,
        "retry_exceptions": False,
        "name": f"mtlbench: {request.label()}",
    }
    if wants_gpu:
        options["num_gpus"] = share
        if device is not None:
            device = "cuda"  # Ray makes the assigned GPU the worker's only visible one
    return replace(request, threads=threads, device=device), options


def cpus_per_gpu(nodes: Iterable[dict[str, Any]]) -> float | None:
    """The smallest CPU:GPU ratio over the live nodes that have GPUs (``ray.nodes()``)."""
    ratios = [
        n["Resources"].get("CPU", 0) / n["Resources"]["GPU"]
        for n in nodes
        if n.get("Alive") and n.get("Resources", {}).get("GPU", 0) > 0
    ]
    return min(ratios) if ratios else None


# ------------------------------------------------------------------------------ the driver
@dataclass
class _Flight:
    request: RunRequest
    key: int
    started_at: float | None = None


def _connect(address: str | None) -> bool:
    """Connect to ``address`` ($RAY_ADDRESS, else a new local instance); True if we did."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    logger.info("connecting to Ray at %s", address or "a new local instance")
    ray.init(address=address)
    return True


def _failure_from(request: RunRequest, err: BaseException) -> RunResult:
    """Turn what ``ray.get`` raised into a result with the right status and a short message."""
    import ray.exceptions as rex

    if isinstance(err, rex.OutOfMemoryError):
        return failure_result(request, "oom", f"Ray's memory monitor killed the worker: {_last_line(err)}")
    if isinstance(err, rex.RayTaskError):
        cause = err.cause if isinstance(err.cause, BaseException) else err
        status = "oom" if type(cause).__name__ == "OutOfMemoryError" else "error"
        return failure_result(
            request, status, f"the run raised in its Ray worker: {type(cause).__name__}: {cause}"
        )
    if isinstance(err, rex.WorkerCrashedError):
        return failure_result(
            request, "error", f"the Ray worker died (retried {MAX_RETRIES} time(s)): {_last_line(err)}"
        )
    if isinstance(err, rex.RayError):
        return failure_result(
            request, "error", f"Ray failed the run: {type(err).__name__}: {_last_line(err)}"
        )
    return failure_result(request, "error", f"the worker returned an invalid result: {err}")


def _last_line(err: BaseException) -> str:
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def _warn_infeasible(options: dict[str, Any], nodes: list[dict[str, Any]], request: RunRequest) -> None:
    largest = max((n.get("Resources", {}).get("CPU", 0) for n in nodes if n.get("Alive")), default=0)
    if options["num_cpus"] > largest:
        logger.warning(
            "%s asks for %s CPUs but the largest Ray node has %s; it waits until a node that big joins",
            request.label(),
            options["num_cpus"],
            largest,
        )


def run_on_ray(
    requests: Iterable[RunRequest], *, address: str | None = None, workers: int | None = None
) -> Generator[tuple[RunRequest, RunResult], None, None]:
    """Run ``requests`` as Ray tasks; yield ``(request, result)`` as each run ends.

    ``address`` is a Ray address (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``);
    ``None`` uses ``$RAY_ADDRESS`` or starts a local instance. An instance this function
    started is shut down when the iteration ends. ``workers`` caps the tasks in flight.
    Closing the iterator early (an interrupted driver) cancels the tasks still running.
    """
    import ray

    queue = deque(enumerate(requests))
    if not queue:
        return
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers}")
    limit = workers or len(queue)
    started_here = _connect(address)
    pending: dict[Any, _Flight] = {}
    # the _StartLog actor's handle; Ray types actor method calls (.drain.remote()) only for
    # methods decorated with @ray.method, which would import Ray with this module
    start_log: Any = None
    try:
        nodes = ray.nodes()
        ratio = cpus_per_gpu(nodes)
        remote = ray.remote(_execute_json)
        start_log = ray.remote(num_cpus=0)(_StartLog).remote()
        by_key: dict[int, _Flight] = {}
        while queue or pending:
            while queue and len(pending) < limit:
                key, request = queue.popleft()
                to_run, options = task_options(request, cpus_per_gpu=ratio)
                _warn_infeasible(options, nodes, request)
                ref = remote.options(**options).remote(to_run.to_json(), key, start_log)
                pending[ref] = by_key[key] = _Flight(request, key)

            now = time.monotonic()
            if any(f.request.timeout_s is not None for f in pending.values()):
                for key in ray.get(start_log.drain.remote()):
                    if key in by_key:
                        by_key[key].started_at = now  # a retry after a crash gets a fresh clock
            wait_s = _wait_time(pending.values(), now)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=wait_s)

            for ref in ready:
                flight = pending.pop(ref)
                del by_key[flight.key]
                try:
                    result = RunResult.model_validate(ray.get(ref))
                except Exception as err:
                    result = _failure_from(flight.request, err)
                yield flight.request, result

            now = time.monotonic()
            for ref, flight in list(pending.items()):
                limit_s = flight.request.timeout_s
                if (
                    limit_s is not None
                    and flight.started_at is not None
                    and now - flight.started_at > limit_s
                ):
                    ray.cancel(ref, force=True)
                    del pending[ref], by_key[flight.key]
                    logger.warning(
                        "%s exceeded its time limit of %s s; cancelled", flight.request.label(), limit_s
                    )
                    yield (
                        flight.request,
                        failure_result(
                            flight.request, "timeout", f"the run exceeded its time limit of {limit_s} s"
                        ),
                    )
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if start_log is not None:
            ray.kill(start_log)
        if started_here:
            ray.shutdown()


def _wait_time(flights: Iterable[_Flight], now: float) -> float | None:
    """How long ``ray.wait`` may block: until the nearest deadline, polling while runs are unstarted."""
    wait: float = math.inf
    for flight in flights:
        if flight.request.timeout_s is None:
            continue
        if flight.started_at is None:
            wait = min(wait, POLL_S)
        else:
            wait = min(wait, max(0.0, flight.started_at + flight.request.timeout_s - now))
    return None if wait == math.inf else wait

"""The Ray backend: same results as the inline backend, time limits, worker crashes, resources."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from mtlbench.harness import ray_backend
from mtlbench.harness.grid import run_grid
from mtlbench.harness.results import read_result
from mtlbench.harness.runner import MethodRef
from tests.conftest import TINY, tiny_grid

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

ENV = "multimnist-hps"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    if ray.is_initialized():  # pragma: no cover - another module left one running
        ray.shutdown()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")
        # "local": a fresh instance even where RAY_ADDRESS names a cluster
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


# ------------------------------------------------------------------ with a local Ray instance
def test_ray_results_equal_inline_results(local_ray: None, tmp_path: Path) -> None:
    on_ray, inline = tiny_grid(tmp_path / "ray"), tiny_grid(tmp_path / "inline")
    report = run_grid(on_ray, backend="ray", progress=False)
    assert not report.failed, report.failed
    assert sorted(report.written) == sorted(r.path for r in on_ray)
    run_grid(inline, backend="inline", progress=False)

    for a, b in zip(on_ray, inline):
        ra, rb = read_result(a.path), read_result(b.path)
        assert (ra.status, ra.seed, ra.method.name) == ("ok", a.seed, a.method.name)
        assert ra.spec_hash == rb.spec_hash
        assert [(e.epoch, e.step, e.val, e.test) for e in ra.evaluations] == [
            (e.epoch, e.step, e.val, e.test) for e in rb.evaluations
        ]
        assert ra.selected == rb.selected and ra.last == rb.last

    again = run_grid(on_ray, backend="ray", progress=False)  # everything stored: nothing runs
    assert not again.written and len(again.skipped) == len(on_ray)


CRASHING_POLICY = """
import os
from mtlbench.policies.base import Policy

DRIVER_PID = {pid}


class Crash(Policy):
    name = "crash"
    level = "loss"

    def __init__(self):
        super().__init__()
        if os.getpid() != DRIVER_PID:  # the driver builds it too (for a failure's level): spare it
            os._exit(3)  # the worker process dies, as on a segfault or a kill

    def act(self, observation):
        return observation["losses"].new_ones(observation["losses"].shape)
"""


def test_timeout_and_worker_crash_become_statuses(local_ray: None, tmp_path: Path) -> None:
    module = tmp_path / "crash_policy.py"
    module.write_text(CRASHING_POLICY.format(pid=os.getpid()))
    slow = replace(
        tiny_grid(tmp_path, methods=("ew",), seeds=(0,))[0],
        timeout_s=0.5,
        overrides={**TINY, "budget.epochs": 10_000},
    )
    crash = replace(
        slow, method=MethodRef(name="crash", version="1", entry=f"{module}:Crash"), timeout_s=None
    )
    report = run_grid([slow, crash], backend="ray", progress=False)

    assert sorted(report.written) == sorted([slow.path, crash.path])
    timed_out = read_result(slow.path)
    assert timed_out.status == "timeout" and "0.5 s" in timed_out.message
    crashed = read_result(crash.path)
    assert crashed.status == "error" and "worker died" in crashed.message
    assert {str(p) for p, _ in report.failed} == {str(slow.path), str(crash.path)}


# ------------------------------------------------------------------ without Ray running
def test_task_options_cpu_only_cluster() -> None:
    request = replace(tiny_grid(Path("unused"))[0], threads=None, device=None)
    to_run, options = ray_backend.task_options(request, cpus_per_gpu=None)
    assert options["num_cpus"] == 1 and "num_gpus" not in options and options["max_retries"] == 1
    assert to_run.threads == 1 and to_run.device is None
    to_run, options = ray_backend.task_options(replace(request, threads=3), cpus_per_gpu=None)
    assert options["num_cpus"] == 3 and to_run.threads == 3


def test_task_options_gpu_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    import mtlbench.registration

    request = replace(tiny_grid(Path("unused"))[0], device=None, threads=None)
    # an env that declares no GPU share takes a whole GPU
    monkeypatch.setattr(mtlbench.registration, "spec", lambda env_id: SimpleNamespace(gpu_fraction=None))
    to_run, options = ray_backend.task_options(request, cpus_per_gpu=8)
    assert options["num_gpus"] == 1 and options["num_cpus"] == 8 and to_run.threads == 8
    _, options = ray_backend.task_options(replace(request, threads=2), cpus_per_gpu=8)
    assert options["num_cpus"] == 2

    to_run, _ = ray_backend.task_options(replace(request, device="cuda:3"), cpus_per_gpu=8)
    assert to_run.device == "cuda"  # Ray makes the assigned GPU the only visible one
    _, options = ray_backend.task_options(replace(request, device="cpu"), cpus_per_gpu=8)
    assert "num_gpus" not in options and options["num_cpus"] == 1

    monkeypatch.setattr(mtlbench.registration, "spec", lambda env_id: SimpleNamespace(gpu_fraction=0.25))
    _, options = ray_backend.task_options(request, cpus_per_gpu=8)
    assert options["num_gpus"] == 0.25 and options["num_cpus"] == 2


def test_multimnist_declares_a_quarter_gpu() -> None:
    assert ray_backend.gpu_fraction("multimnist-hps") == 0.25


def test_cpus_per_gpu_is_the_tightest_gpu_node() -> None:
    nodes = [
        {"Alive": True, "Resources": {"CPU": 64.0}},  # a CPU-only head does not count
        {"Alive": True, "Resources": {"CPU": 32.0, "GPU": 4.0}},
        {"Alive": True, "Resources": {"CPU": 48.0, "GPU": 8.0}},
        {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 8.0}},
    ]
    assert ray_backend.cpus_per_gpu(nodes) == 6.0
    assert ray_backend.cpus_per_gpu(nodes[:1]) is None


@pytest.mark.parametrize("bad", [0, 1.5, "half", True])
def test_gpu_fraction_is_validated(monkeypatch: pytest.MonkeyPatch, bad: object) -> None:
    import mtlbench.registration

    monkeypatch.setattr(mtlbench.registration, "spec", lambda env_id: SimpleNamespace(gpu_fraction=bad))
    with pytest.raises(ValueError, match="gpu_fraction must be a number in \\(0, 1\\]"):
        ray_backend.gpu_fraction(ENV)


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        list(ray_backend.run_on_ray(tiny_grid(Path("unused")), workers=0))

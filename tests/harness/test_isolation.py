"""The isolated policy runner: a policy in its own process sees only its observations (issue 10).

The hostile policies below are the issue's reproductions: a gc walk that reached the env and
Adam, tampering with the observation tensors, and a policy that sleeps, exits, segfaults or
allocates past its memory limit. Each must end the run with a stored status naming the policy.
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from mtlbench.harness.grid import run_grid
from mtlbench.harness.isolation import IsolatedPolicy, IsolationLimits, PolicyProcessFailure
from mtlbench.harness.results import read_result
from mtlbench.harness.runner import MethodRef, RunRequest, execute
from mtlbench.harness.train import env_kwargs_for, train
from mtlbench.policies.base import GradientWeights, Observation, Policy
from tests.conftest import TINY, tiny_env

HERE = "tests.harness.test_isolation"


def _isolated(cls: str, *, memory_mb: int | None = 1024, timeout: float = 60.0) -> IsolatedPolicy:
    ref = MethodRef(name=cls.lower(), entry=f"{HERE}:{cls}")
    limits = IsolationLimits(memory_mb=memory_mb, call_timeout_s=timeout)
    return IsolatedPolicy(ref.make_policy, label=ref.name, limits=limits, threads=1)


class GcWalker(Policy):
    """Walks every object of its process looking for the env, a model or an optimiser."""

    name = "gc-walker"
    level = "loss"
    needs = frozenset({"losses"})

    def reset(self, task_names: Any, seed: int, **kw: Any) -> None:
        super().reset(task_names, seed, **kw)
        self.found: list[str] = []
        self.walked = 0

    def act(self, observation: Observation) -> torch.Tensor:
        if not self.walked:
            warnings.simplefilter("ignore")  # isinstance on torch's deprecated aliases warns
            objects = gc.get_objects()
            self.walked = len(objects)
            for obj in objects:
                kind = type(obj)
                if kind.__name__ == "MTLEnv" or isinstance(obj, torch.nn.Module | torch.optim.Optimizer):
                    self.found.append(kind.__name__)
            del objects
        return torch.ones_like(observation["losses"])

    def state_dict(self) -> dict[str, Any]:
        return {"found": sorted(set(self.found)), "walked": self.walked}


class Tamperer(Policy):
    """Writes into every observation tensor it receives and keeps it."""

    name = "tamperer"
    level = "gradient"
    needs = frozenset({"losses", "gramian", "jacobian"})

    def act(self, observation: Observation) -> GradientWeights:
        for value in observation.values():
            value.fill_(7)
        return GradientWeights(torch.ones(self.num_tasks))


class Sleeper(Policy):
    name = "sleeper"
    level = "loss"

    def act(self, observation: Observation) -> torch.Tensor:
        if int(observation["step"]) == 2:
            time.sleep(3600)
        return torch.ones_like(observation["losses"])


class Exiter(Policy):
    name = "exiter"
    level = "loss"

    def act(self, observation: Observation) -> torch.Tensor:
        if int(observation["step"]) == 2:
            os._exit(3)
        return torch.ones_like(observation["losses"])


class Segfaulter(Policy):
    name = "segfaulter"
    level = "loss"

    def act(self, observation: Observation) -> torch.Tensor:
        if int(observation["step"]) == 2:
            ctypes.string_at(0)
        return torch.ones_like(observation["losses"])


class Hog(Policy):
    """Allocates 8 GiB at step 2, far past the test's memory limit."""

    name = "hog"
    level = "loss"

    def act(self, observation: Observation) -> torch.Tensor:
        if int(observation["step"]) == 2:
            self.hoard = torch.ones(2**31)
        return torch.ones_like(observation["losses"])


class Raiser(Policy):
    name = "raiser"
    level = "loss"

    def act(self, observation: Observation) -> torch.Tensor:
        raise RuntimeError("solver exploded")


class ListReturner(Policy):
    name = "list-returner"
    level = "loss"

    def act(self, observation: Observation) -> Any:
        return [1.0, 1.0]


class Counter(Policy):
    """State that a resumed run needs: the steps seen, and what update() received."""

    name = "counter"
    level = "loss"
    needs = frozenset({"losses", "next_losses"})

    def reset(self, task_names: Any, seed: int, **kw: Any) -> None:
        super().reset(task_names, seed, **kw)
        self.count = torch.zeros(())
        self.infos: list[str] = []

    def act(self, observation: Observation) -> torch.Tensor:
        self.count += 1
        return torch.ones_like(observation["losses"])

    def update(self, info: Mapping[str, Any]) -> None:
        self.infos.append(",".join(sorted(info)))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "count": self.count, "infos": list(self.infos)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.count = state["count"].clone()


def test_gc_walk_in_the_policy_process_finds_no_env_model_or_optimiser() -> None:
    env = tiny_env()
    control = GcWalker()  # the reproduction: in-process, the walk reaches the env
    train(env, control, seed=0)
    assert {"MTLEnv", "Adam"} <= set(control.found)

    with _isolated("GcWalker") as policy:
        result = train(tiny_env(), policy, seed=0)
        state = policy.state_dict()
        assert policy.pid is not None and policy.pid != os.getpid()
    assert result.status == "ok", result.message
    assert result.isolation == "process"
    assert state["walked"] > 1000 and state["found"] == []


def test_tampering_with_observations_changes_nothing_outside_the_policy_process() -> None:
    env = tiny_env(**env_kwargs_for(Tamperer()))
    obs, _ = env.reset(seed=0)
    before = {k: v.clone() for k, v in obs.items()}
    with _isolated("Tamperer") as policy:
        policy.reset(env.task_names, 0)
        action = policy.act(obs)
        # the env's own tensors are unchanged; the policy's writes stayed in its buffers
        assert all(torch.equal(before[k], obs[k]) for k in obs)
        assert torch.equal(action.weights, torch.ones(2))
        # ...though the policy did write 7s into the Jacobian it shares with the runner
        assert policy._buffers is not None and bool((policy._buffers["jacobian"] == 7).all())
        env.step(action)
    with _isolated("Tamperer") as policy:
        result = train(tiny_env(**env_kwargs_for(policy)), policy, seed=0)
    reference = train(tiny_env(**env_kwargs_for(Tamperer())), _EqualGradient(), seed=0)
    assert result.status == reference.status == "ok", result.message
    assert result.selected == reference.selected  # tampering changed nothing the run computes


class _EqualGradient(Policy):
    name = "tamperer"
    level = "gradient"
    needs = frozenset({"losses", "gramian", "jacobian"})

    def act(self, observation: Observation) -> GradientWeights:
        return GradientWeights(torch.ones(self.num_tasks))


_NAMES = {"ListReturner": "list-returner"} | {
    c: c.lower() for c in ("Sleeper", "Exiter", "Segfaulter", "Hog", "Raiser")
}


@pytest.mark.parametrize(
    ("cls", "status", "message"),
    [
        ("Sleeper", "timeout", r"did not answer act\(\) at step 2 within 2.0 s"),
        ("Exiter", "error", r"exited with code 3 during act"),
        ("Segfaulter", "error", r"killed by SIGSEGV during act.*Segmentation fault"),
        ("Hog", "oom", r"failed in act\(\) at step 2: .*(can't allocate memory|MemoryError)"),
        ("Raiser", "error", r"failed in act\(\) at step 0: RuntimeError: solver exploded"),
        ("ListReturner", "invalid_action", r"invalid action at step 0: .*must be a torch.Tensor, got list"),
    ],
)
def test_a_failing_policy_ends_the_run_with_a_status_naming_it(cls: str, status: str, message: str) -> None:
    started = time.monotonic()
    with _isolated(cls, memory_mb=512, timeout=2.0) as policy:
        result = train(tiny_env(), policy, seed=0)
        pid = policy.pid
    assert result.status == status, result.message
    assert f"policy {_NAMES[cls]!r}" in (result.message or "")
    assert re.search(message, result.message or ""), result.message
    assert time.monotonic() - started < 30
    assert (pid is not None and not Path(f"/proc/{pid}").exists()) or _zombie(pid)


def _zombie(pid: int | None) -> bool:
    try:
        return "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True


def test_the_policy_process_runs_in_a_scratch_folder_that_is_removed() -> None:
    with _isolated("GcWalker") as policy:
        scratch = Path(policy.scratch)
        assert scratch.is_dir() and (scratch / "policy.log").exists()
    assert not scratch.exists()


def test_update_receives_only_the_protocol_keys_and_state_round_trips() -> None:
    with _isolated("Counter") as policy:
        result = train(tiny_env(**env_kwargs_for(policy)), policy, seed=0)
        state = policy.state_dict()
    assert result.status == "ok", result.message
    assert int(state["count"]) == result.cost.steps
    # never the evaluation metrics the env reports in info
    assert set(state["infos"]) == {"epoch,next_losses,step"}
    with _isolated("Counter") as policy:
        policy.reset(("a", "b"), 0)
        policy.load_state_dict(state)
        assert int(policy.state_dict()["count"]) == result.cost.steps


@pytest.mark.parametrize("method", ["rlw", "mgda"])
def test_isolated_and_in_process_runs_give_identical_metrics(method: str, tmp_path: Path) -> None:
    results = []
    for isolation in ("none", "process"):
        request = RunRequest(
            env_id="multimnist-hps",
            method=MethodRef.builtin(method),
            seed=3,
            results_dir=str(tmp_path / isolation),
            device="cpu",
            threads=1,
            overrides=dict(TINY),
            isolation=isolation,
        )
        results.append(execute(request))
    inline, isolated = results
    assert inline.status == isolated.status == "ok", (inline.message, isolated.message)
    assert [e.model_dump() for e in inline.evaluations] == [e.model_dump() for e in isolated.evaluations]
    assert inline.selected == isolated.selected and inline.method == isolated.method
    assert (inline.isolation, isolated.isolation) == ("none", "process")


def test_submitted_code_is_isolated_by_default_and_its_failure_is_stored(tmp_path: Path) -> None:
    ref = MethodRef(name="exiter", entry=f"{HERE}:Exiter", level="loss", isolation="process")
    request = RunRequest(
        env_id="multimnist-hps",
        method=ref,
        seed=0,
        results_dir=str(tmp_path),
        device="cpu",
        threads=1,
        overrides=dict(TINY),
    )
    assert request.effective_isolation == "process"
    report = run_grid([request], backend="inline", progress=False)
    stored = read_result(request.path)
    assert stored.status == "error" and "policy 'exiter'" in (stored.message or "")
    assert stored.isolation == "process" and len(report.failed) == 1
    with pytest.raises(ValueError, match="isolation must be one of"):
        RunRequest(env_id="multimnist-hps", method=ref, seed=0, isolation="thread")


def test_a_policy_that_fails_to_build_is_named() -> None:
    ref = MethodRef(name="nowhere", entry=f"{HERE}:DoesNotExist")
    with pytest.raises(PolicyProcessFailure, match="policy 'nowhere' failed in starting"):
        IsolatedPolicy(ref.make_policy, label="nowhere")


def test_a_policy_with_representation_adapters_is_refused_with_the_fix() -> None:
    ref = MethodRef.builtin("rotograd")
    with IsolatedPolicy(ref.make_policy, label="rotograd", threads=1) as policy:
        result = train(tiny_env(**env_kwargs_for(policy)), policy, seed=0)
    assert result.status == "error" and "policy 'rotograd'" in (result.message or "")
    assert "--isolation none" in (result.message or "")


def test_cli_isolation_option_reaches_the_requests() -> None:
    from mtlbench.cli import _requests, build_parser

    for command in (
        ["run", "--env", "multimnist-hps", "--method", "ew", "--seeds", "0"],
        ["submit", "x", "--seeds", "0"],
    ):
        args = build_parser().parse_args([*command, "--isolation", "process"])
        assert {r.isolation for r in _requests(args, [MethodRef.builtin("ew")], ["multimnist-hps"])} == {
            "process"
        }
    args = build_parser().parse_args(
        ["benchmark", "--methods", "ew", "--envs", "multimnist-hps", "--seeds", "0"]
    )
    assert _requests(args, [MethodRef.builtin("ew")], ["multimnist-hps"])[0].effective_isolation == "none"


class FailsInLastUpdate(Policy):
    name = "fails-in-last-update"
    level = "loss"

    def act(self, observation: Observation) -> torch.Tensor:
        return torch.ones_like(observation["losses"])

    def update(self, info: Mapping[str, Any]) -> None:
        if int(info["step"]) == 7:  # the TINY protocol's last step
            raise ValueError("bad bookkeeping")


def test_a_failure_in_the_last_update_is_the_runs() -> None:
    with _isolated("FailsInLastUpdate") as policy:
        result = train(tiny_env(), policy, seed=0)
    assert result.status == "error" and "failed in update(): ValueError: bad bookkeeping" in (
        result.message or ""
    )
    reference = train(tiny_env(), FailsInLastUpdate(), seed=0)
    assert reference.status == "error" and "bad bookkeeping" in (reference.message or "")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["rlw", "db-mtl"])
def test_isolated_run_on_cuda_matches_the_in_process_run(method: str) -> None:
    """The CUDA path: buffers shared by CUDA IPC, ordered by inter-process events."""
    ref = MethodRef.builtin(method)
    inline = ref.make_policy()
    expected = train(tiny_env(device="cuda", **env_kwargs_for(inline)), inline, seed=0)
    with IsolatedPolicy(ref.make_policy, label=method, threads=1) as policy:
        got = train(tiny_env(device="cuda", **env_kwargs_for(policy)), policy, seed=0)
    assert expected.status == got.status == "ok", got.message
    # the same kernels on the same device: identical up to cuDNN's own nondeterminism
    for a, b in zip(expected.evaluations, got.evaluations, strict=True):
        for task, metrics in a.test.items():
            for name, value in metrics.items():
                assert b.test[task][name] == pytest.approx(value, rel=1e-4, abs=1e-5)

"""The policy checker passes well-behaved toy policies and names what is wrong with bad ones."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from mtlbench.harness.checker import PolicyCheckError, check_policy
from mtlbench.harness.static_check import static_findings
from mtlbench.harness.submission_check import check_submission, main_check
from mtlbench.policies.base import GradientDirection, GradientWeights, Observation, Policy


# ------------------------------------------------------------------ good toy policies
class ToyEW(Policy):
    name = "toy-ew"
    level = "loss"
    needs = frozenset({"losses"})

    def act(self, observation: Observation) -> torch.Tensor:
        return torch.ones_like(observation["losses"])


class ToyRLW(Policy):
    """Random loss weights from the policy's own generator (Lin et al. 2022, Algorithm 1)."""

    name = "toy-rlw"
    level = "loss"
    needs = frozenset({"losses"})

    def act(self, observation: Observation) -> torch.Tensor:
        z = torch.randn(self.num_tasks, generator=self.generator)
        return torch.softmax(z, dim=0) * self.num_tasks


class ToyMGDA2(Policy):
    """Gradient level from the Gramian: inverse-norm weights (a toy, not MGDA)."""

    name = "toy-gram"
    level = "gradient"
    needs = frozenset({"gramian"})

    def act(self, observation: Observation) -> GradientWeights:
        norms = observation["gramian"].diagonal().sqrt()
        return GradientWeights(weights=1 / norms)


class ToyDirection(Policy):
    name = "toy-direction"
    level = "gradient"
    needs = frozenset({"jacobian", "val_losses"})

    def act(self, observation: Observation) -> GradientDirection:
        return GradientDirection(direction=observation["jacobian"].mean(0))


class ToyNextLosses(Policy):
    """Keeps state from ``next_losses`` (like FAMO) and saves it in state_dict."""

    name = "toy-next"
    level = "loss"
    needs = frozenset({"losses", "next_losses"})

    def reset(self, task_names: Any, seed: int, **kw: Any) -> None:
        super().reset(task_names, seed, **kw)
        self.logits = torch.zeros(len(task_names))

    def act(self, observation: Observation) -> torch.Tensor:
        self._last = observation["losses"]
        return torch.softmax(self.logits, 0) * self.num_tasks

    def update(self, info: Mapping[str, Any]) -> None:
        self.logits = self.logits + 0.1 * (self._last.log() - info["next_losses"].log())

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "logits": self.logits.clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.logits = state["logits"].clone()


# ------------------------------------------------------------------- bad toy policies
class GlobalRNG(ToyRLW):
    name = "global-rng"

    def act(self, observation: Observation) -> torch.Tensor:
        return torch.softmax(torch.randn(self.num_tasks), 0) * self.num_tasks


class NumpyGlobalRNG(ToyRLW):
    name = "numpy-rng"

    def act(self, observation: Observation) -> torch.Tensor:
        return torch.as_tensor(np.random.dirichlet(np.ones(self.num_tasks)), dtype=torch.float32)


class ReturnsNaN(ToyEW):
    name = "nan"

    def act(self, observation: Observation) -> torch.Tensor:
        w = torch.ones_like(observation["losses"])
        if int(observation["step"]) == 3:
            w[1] = float("nan")
        return w


class WrongShape(ToyEW):
    name = "wrong-shape"

    def act(self, observation: Observation) -> torch.Tensor:
        return torch.ones(self.num_tasks + 1)


class Negative(ToyEW):
    name = "negative"

    def act(self, observation: Observation) -> torch.Tensor:
        return -torch.ones_like(observation["losses"])


class ReadsUndeclared(ToyEW):
    name = "undeclared"

    def act(self, observation: Observation) -> torch.Tensor:
        return 1 / observation["gramian"].diagonal()


class CatchesUndeclared(ToyEW):
    name = "catches"

    def act(self, observation: Observation) -> torch.Tensor:
        try:
            g = observation["val_losses"]
        except KeyError:
            g = observation["losses"]
        return g / g.sum() * len(g)


class OptionalKey(ToyEW):
    """Testing for an optional key is fine; reading it is not (the env would not send it)."""

    name = "optional"

    def act(self, observation: Observation) -> torch.Tensor:
        extra = observation.get("val_losses")
        assert "gramian" not in observation and extra is None
        return torch.ones_like(observation["losses"])


class Nondeterministic(ToyRLW):
    name = "nondeterministic"

    def reset(self, task_names: Any, seed: int, **kw: Any) -> None:
        super().reset(task_names, seed, **kw)
        self.generator = torch.Generator()
        self.generator.seed()  # an OS-entropy seed: not the run seed


class SharedState(ToyEW):
    """State shared between instances through a class attribute: a second run differs."""

    name = "shared-state"
    calls: ClassVar[list[int]] = []

    def act(self, observation: Observation) -> torch.Tensor:
        self.calls.append(1)
        return torch.full((self.num_tasks,), float(len(self.calls)))


class LossLevelReturnsWeightsObject(ToyEW):
    name = "wrong-type"

    def act(self, observation: Observation) -> Any:
        return GradientWeights(weights=torch.ones(self.num_tasks))


class BadNeeds(ToyEW):
    name = "bad-needs"
    needs = frozenset({"losses", "hessian"})


class BadLevel(ToyEW):
    name = "bad-level"
    level = "weights"  # type: ignore[assignment]


class Forgetful(ToyNextLosses):
    name = "forgetful"

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class MutatesObservation(ToyEW):
    name = "mutates"

    def act(self, observation: Observation) -> torch.Tensor:
        observation["losses"].div_(observation["losses"].sum())
        return torch.ones(self.num_tasks)


def _status(report: Any) -> dict[str, str]:
    return {r.check: r.status for r in report.results}


@pytest.mark.parametrize("cls", [ToyEW, ToyRLW, ToyMGDA2, ToyDirection, ToyNextLosses, OptionalKey])
def test_good_policies_pass(cls: type[Policy]) -> None:
    report = check_policy(cls)
    assert report.ok, report.render()
    assert set(_status(report).values()) == {"passed"}, report.render()
    assert report.policy == cls.name
    assert "all checks passed" in report.render()


@pytest.mark.parametrize(
    ("cls", "check", "message"),
    [
        (GlobalRNG, "global_rng", r"act\(\)/update\(\) changed the global torch RNG state"),
        (NumpyGlobalRNG, "global_rng", r"changed the global numpy RNG state"),
        (ReturnsNaN, "actions", r"step 3: the loss weights must be finite"),
        (WrongShape, "actions", r"must have shape \(3,\), got \(4,\)"),
        (Negative, "actions", r"must be non-negative"),
        (LossLevelReturnsWeightsObject, "actions", r"loss-level policy must return a \(T,\) tensor"),
        (MutatesObservation, "actions", r"modified observation \['losses'\] in place"),
        (ReadsUndeclared, "needs", r"read observation key 'gramian'.*add 'gramian' to needs"),
        (CatchesUndeclared, "needs", r"read observation key 'val_losses'"),
        (Nondeterministic, "determinism", r"different actions at step 0"),
        (SharedState, "determinism", r"different actions"),
        (BadNeeds, "declaration", r"unknown entries \['hessian'\]"),
        (BadLevel, "declaration", r"'level' must be 'loss' or 'gradient', got 'weights'"),
    ],
)
def test_bad_policies_fail_with_the_right_message(cls: type[Policy], check: str, message: str) -> None:
    report = check_policy(cls)
    assert not report.ok
    failed = {r.check: r.message for r in report.failures}
    assert check in failed, report.render()
    assert re.search(message, failed[check]), failed[check]
    first = report.failures[0].check
    with pytest.raises(PolicyCheckError, match=rf"policy '{cls.name}' failed check '{first}'"):
        check_policy(cls, raise_on_failure=True)


def test_checker_itself_leaves_global_rng_alone() -> None:
    torch_state, py_state = torch.random.get_rng_state(), random.getstate()
    check_policy(ToyRLW)
    assert torch.equal(torch_state, torch.random.get_rng_state()) and py_state == random.getstate()


def test_construction_failure_is_reported_and_later_checks_skipped() -> None:
    def factory() -> Policy:
        raise ValueError("hyperparameter 'c' must be > 0, got -1")

    report = check_policy(factory, name="broken")
    assert [(r.check, r.status) for r in report.results] == [("construct", "failed")]
    assert "must be > 0" in report.results[0].message


def test_state_dict_round_trip_only_warns() -> None:
    report = check_policy(Forgetful)
    assert report.ok
    assert _status(report)["state_dict"] == "warning"


def test_undeclared_read_skips_dependent_checks() -> None:
    status = _status(check_policy(ReadsUndeclared))
    assert status["needs"] == "failed" and status["determinism"] == "skipped"


def _write_submission(folder: Path, policy_source: str, **fields: str) -> Path:
    folder.mkdir(parents=True)
    yaml_fields = {
        "name": folder.name,
        "version": '"1"',
        "level": "loss",
        "entry_point": "policy.py:Toy",
        "authors": "[Test Author]",
        **fields,
    }
    (folder / "submission.yaml").write_text("".join(f"{k}: {v}\n" for k, v in yaml_fields.items()))
    (folder / "policy.py").write_text(policy_source)
    return folder


GOOD_SOURCE = """
import torch
from mtlbench.policies.base import Policy

class Toy(Policy):
    name = "toy"
    level = "loss"
    needs = frozenset({"losses"})

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def hparams(self):
        return {"scale": self.scale}

    def act(self, observation):
        return torch.full_like(observation["losses"], self.scale)
"""


def test_check_submission_passes_a_good_folder(tmp_path: Path) -> None:
    folder = _write_submission(tmp_path / "toy", GOOD_SOURCE, hyperparameters="{scale: 2.0}")
    code, text = main_check(folder, known_envs=lambda env_id: True)
    assert code == 0, text
    assert "toy@1" in text and "all checks passed" in text


def test_check_submission_reports_yaml_problems(tmp_path: Path) -> None:
    folder = _write_submission(tmp_path / "toy", GOOD_SOURCE, level="losss")
    code, text = main_check(folder)
    assert code == 1
    assert "field 'level': expected 'loss' or 'gradient', got 'losss'" in text


def test_check_submission_level_mismatch_and_unknown_env(tmp_path: Path) -> None:
    folder = _write_submission(tmp_path / "toy", GOOD_SOURCE, level="gradient", envs="[nowhere-v1]")
    report = check_submission(folder, known_envs=lambda env_id: False)
    failed = {r.check: r.message for r in report.failures}
    assert "unknown env ids ['nowhere-v1']" in failed["envs"]
    assert "the YAML says 'gradient' but Toy declares level 'loss'" in failed["construct"]


def test_check_submission_bad_hyperparameter(tmp_path: Path) -> None:
    folder = _write_submission(tmp_path / "toy", GOOD_SOURCE, hyperparameters="{scael: 2.0}")
    report = check_submission(folder, known_envs=lambda env_id: True)
    assert "field 'hyperparameters'" in report.failures[0].message
    assert "scael" in report.failures[0].message


# ------------------------------------------------------------------------ static check
STATIC_CASES = [
    ("import gc\n", "gc", 1),
    ("x = 1\nfrom gc import get_objects\n", "gc", 2),
    ("import inspect\n", "inspect", 1),
    ("import sys\nf = sys._getframe(1)\n", "frames", 2),
    ("def f(g):\n    return g.__globals__\n", "frames", 2),
    ("def f(frame):\n    return frame.f_back.f_locals\n", "frames", 2),
    ("def f(x):\n    return getattr(x, 'f_back')\n", "frames", 2),
    ("import ctypes\n", "ctypes", 1),
    ("import subprocess\n", "subprocess", 1),
    ("import os\nos.system('ls')\n", "subprocess", 2),
    ("import os as o\no.execv('/bin/sh', [])\n", "subprocess", 2),
    ("from os import fork\n", "subprocess", 1),
    ("import socket\n", "network", 1),
    ("from urllib.request import urlopen\n", "network", 1),
    ("import http.client\n", "network", 1),
    ("import requests\n", "network", 1),
    ("open('/tmp/x', 'w')\n", "file_writes", 1),
    ("open('/tmp/x', mode='ab')\n", "file_writes", 1),
    ("from pathlib import Path\nPath('/tmp/x').write_text('x')\n", "file_writes", 2),
    ("import os\nos.remove('/tmp/x')\n", "file_writes", 2),
    ("import shutil\n", "file_writes", 1),
    ("import torch\ntorch.save({}, 'x.pt')\n", "file_writes", 2),
    ("eval('1 + 1')\n", "dynamic_code", 1),
    ("m = __import__('gc')\n", "dynamic_code", 1),
]


@pytest.mark.parametrize(("source", "capability", "line"), STATIC_CASES)
def test_static_check_flags_with_file_and_line(
    tmp_path: Path, source: str, capability: str, line: int
) -> None:
    (tmp_path / "policy.py").write_text(source)
    findings = static_findings(tmp_path)
    assert (capability, "policy.py", line) in [(f.capability, f.file, f.line) for f in findings], findings


CLEAN_SOURCE = """
import math
import os
import torch
from pathlib import Path

HERE = os.path.join(os.path.dirname(__file__), "table.txt")

def load(name):
    with open(Path(__file__).parent / name) as f:       # reading its own folder is fine
        return f.read().replace(",", " ")

def weights(x, extra):
    return getattr(x, "weights", None), torch.softmax(x, 0) * math.e, os.environ.get("HOME")
"""


def test_static_check_leaves_ordinary_code_alone(tmp_path: Path) -> None:
    (tmp_path / "policy.py").write_text(CLEAN_SOURCE)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "helpers.py").write_text(GOOD_SOURCE)
    assert static_findings(tmp_path) == []


GC_SOURCE = GOOD_SOURCE.replace("import torch\n", "import torch\nimport gc\n")


def test_undeclared_use_fails_the_check_and_says_how_to_declare(tmp_path: Path) -> None:
    folder = _write_submission(tmp_path / "toy", GC_SOURCE)
    report = check_submission(folder, known_envs=lambda env_id: True, isolation="none")
    failed = {r.check: r.message for r in report.failures}
    assert "policy.py:3: import gc (gc)" in failed["static"]
    assert 'declared_capabilities: {gc: "why the method needs it"}' in failed["static"]
    assert {r.check for r in report.failures} == {"static"}


def test_declared_use_passes_with_a_warning(tmp_path: Path) -> None:
    folder = _write_submission(
        tmp_path / "toy", GC_SOURCE, declared_capabilities='{gc: "frees the solver cache"}'
    )
    report = check_submission(folder, known_envs=lambda env_id: True, isolation="none")
    assert report.ok, report.render()
    static = next(r for r in report.results if r.check == "static")
    assert static.status == "warning" and "gc (policy.py:3)" in static.message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{gc: " "}', "explain each declared capability"),
        ('{telepathy: "x"}', "declared_capabilities.telepathy"),
    ],
)
def test_declared_capabilities_are_validated(tmp_path: Path, value: str, message: str) -> None:
    folder = _write_submission(tmp_path / "toy", GOOD_SOURCE, declared_capabilities=value)
    code, text = main_check(folder)
    assert code == 1 and message in text, text


def test_check_submission_runs_submitted_code_in_a_policy_process(tmp_path: Path) -> None:
    marker = tmp_path / "ran-in"
    source = GOOD_SOURCE + f"\nimport os\nopen({str(marker)!r}, 'a').write(str(os.getpid()) + ' ')\n"
    folder = _write_submission(tmp_path / "toy", source, declared_capabilities='{file_writes: "a test"}')
    report = check_submission(folder, known_envs=lambda env_id: True)
    assert report.ok, report.render()
    pids = {int(p) for p in marker.read_text().split()}
    assert pids and os.getpid() not in pids

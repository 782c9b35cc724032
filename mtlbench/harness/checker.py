"""The policy checker: run a weighting method once on synthetic observations, invasively.

In the spirit of Gymnasium's ``utils/env_checker.check_env``: a run-once function made of
one small helper per check, each raising :class:`PolicyCheckError` that names the policy
and the check. :func:`check_policy` runs them all and returns a :class:`CheckReport`;
:func:`check_submission` first validates the submission's YAML. ``mtlbench check
submissions/<name>`` prints the report that :func:`main_check` returns.

The checks (docs/design.md, "Policy" and "Reliability principles"):

``construct``      the factory builds a policy; hyperparameters are reported
``declaration``    ``name`` is a string, ``level`` in {loss, gradient}, ``needs`` a subset of
                   ``KNOWN_NEEDS``, ``wrt`` in {parameters, representation}
``hparams``        ``hparams()`` is a JSON-serialisable dict (it is stored in result files)
``needs``          observations carry *only* the declared keys (plus ``losses``, ``step`` and
                   ``epoch``, which the env always sends): reading another key fails
``actions``        :func:`mtlbench.protocol.action_problem`, the validator the env runs too:
                   type and shape ((T,) floating tensor for loss level; ``GradientWeights``
                   (T,) or ``GradientDirection`` (D,) for gradient level), finite,
                   non-negative loss and head weights; observations not modified in place
``determinism``    two fresh instances reset with the same seed give identical actions
``global_rng``     construction, ``reset``, ``act`` and ``update`` leave the global torch,
                   NumPy and ``random`` RNG states untouched
``state_dict``     (warning only) restoring ``state_dict()`` into a fresh instance continues
                   with the same actions, which a resumed run relies on
``static``         (submissions) the folder's Python files, read with :mod:`ast`, use none of
                   :data:`~mtlbench.harness.submission.CAPABILITIES` (gc, inspect, frames,
                   ctypes, subprocesses, network, file writes, eval/exec) unless
                   ``declared_capabilities`` in submission.yaml explains each; ``file:line``
                   per use

:func:`check_submission` runs the policy checks of submitted code in a policy process
(:mod:`mtlbench.harness.isolation`), so checking a submission never runs it in this one.

Synthetic observations come from a private ``torch.Generator``: positive losses, a random
Jacobian ``J`` (T, D), its Gramian ``J J^T``, validation losses and Jacobian likewise, and
``next_losses`` in ``update(info)`` when declared.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from mtlbench.harness.static_check import static_findings
from mtlbench.protocol import (
    ALWAYS_OBSERVED,
    KNOWN_NEEDS,
    OBSERVATION_NEEDS,
    GradientDirection,
    GradientWeights,
    action_problem,
)

if TYPE_CHECKING:
    from mtlbench.policies.base import Policy

__all__ = [
    "CheckReport",
    "CheckResult",
    "PolicyCheckError",
    "check_policy",
    "check_submission",
    "main_check",
]

PolicyFactory = Callable[[], "Policy"]
Status = Literal["passed", "failed", "warning", "skipped"]


class PolicyCheckError(AssertionError):
    """A policy failed one check; names the policy, the check and what was expected."""

    def __init__(self, policy: str, check: str, message: str) -> None:
        super().__init__(f"policy {policy!r} failed check {check!r}: {message}")
        self.policy, self.check, self.message = policy, check, message


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: Status
    message: str = ""


@dataclass
class CheckReport:
    """What :func:`check_policy` found: one :class:`CheckResult` per check, in order."""

    policy: str
    results: list[CheckResult] = field(default_factory=list)
    source: str | None = None

    @property
    def ok(self) -> bool:
        return all(r.status != "failed" for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "failed"]

    def raise_for_failure(self) -> None:
        """Raise :class:`PolicyCheckError` for the first failed check, if any."""
        for r in self.failures:
            raise PolicyCheckError(self.policy, r.check, r.message)

    def render(self) -> str:
        marks = {"passed": "ok  ", "failed": "FAIL", "warning": "warn", "skipped": "skip"}
        head = f"checking policy {self.policy!r}" + (f" ({self.source})" if self.source else "")
        lines = [head]
        for r in self.results:
            lines.append(f"  [{marks[r.status]}] {r.check}" + (f": {r.message}" if r.message else ""))
        n_failed = len(self.failures)
        n_warn = sum(r.status == "warning" for r in self.results)
        warned = f" ({n_warn} warning{'s' if n_warn != 1 else ''})" if n_warn else ""
        lines.append(("all checks passed" if n_failed == 0 else f"{n_failed} check(s) failed") + warned)
        return "\n".join(lines)

    __str__ = render


# ------------------------------------------------------------------ synthetic inputs
@dataclass(frozen=True)
class _Setup:
    task_names: tuple[str, ...]
    dim: int
    seed: int
    steps_per_epoch: int
    observations: tuple[dict[str, torch.Tensor], ...]
    next_losses: tuple[torch.Tensor, ...]

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    def context(self, policy: Policy) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "lr": 1e-3,
            "steps_per_epoch": self.steps_per_epoch,
            "num_epochs": math.ceil(len(self.observations) / self.steps_per_epoch),
            "representation_dim": self.dim if getattr(policy, "wrt", None) == "representation" else None,
        }
        return ctx


def _synthetic(num_tasks: int, dim: int, steps: int, seed: int) -> _Setup:
    g = torch.Generator().manual_seed(10_007 + seed)  # private: the global RNG is never touched
    steps_per_epoch = max(1, steps // 4)
    scale = torch.rand(num_tasks, generator=g) * 2 + 0.5
    observations, next_losses = [], []
    for step in range(steps):
        decay = math.exp(-0.05 * step)
        losses = scale * decay * (1 + 0.2 * torch.rand(num_tasks, generator=g))
        jac = torch.randn(num_tasks, dim, generator=g)
        val_jac = torch.randn(num_tasks, dim, generator=g)
        observations.append(
            {
                "losses": losses,
                "jacobian": jac,
                "gramian": jac @ jac.T,
                "val_losses": scale * decay * (1 + 0.2 * torch.rand(num_tasks, generator=g)),
                "val_jacobian": val_jac,
                "step": torch.tensor(step, dtype=torch.int64),
                "epoch": torch.tensor(step // steps_per_epoch, dtype=torch.int64),
            }
        )
        next_losses.append(losses * (0.95 + 0.04 * torch.rand(num_tasks, generator=g)))
    return _Setup(
        task_names=tuple(f"task{t}" for t in range(num_tasks)),
        dim=dim,
        seed=seed,
        steps_per_epoch=steps_per_epoch,
        observations=tuple(observations),
        next_losses=tuple(next_losses),
    )


class _StrictObservation(dict[str, torch.Tensor]):
    """A plain dict that records reads (``obs[key]``) of keys the policy did not declare.

    ``key in obs`` and ``obs.get(key)`` stay silent: testing for an optional key is fine,
    relying on one the env will not send is not.
    """

    def __init__(self, data: Mapping[str, torch.Tensor]) -> None:
        super().__init__(data)
        self.undeclared: list[str] = []

    def __missing__(self, key: str) -> Any:
        self.undeclared.append(key)
        raise KeyError(key)


class _UndeclaredRead(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _visible_keys(policy: Policy) -> frozenset[str]:
    return (frozenset(getattr(policy, "needs", ())) & OBSERVATION_NEEDS) | ALWAYS_OBSERVED


def _observation(setup: _Setup, step: int, policy: Policy) -> _StrictObservation:
    keys = _visible_keys(policy)
    return _StrictObservation({k: v.clone() for k, v in setup.observations[step].items() if k in keys})


def _info(setup: _Setup, step: int, policy: Policy) -> dict[str, Any]:
    info: dict[str, Any] = {"step": step + 1, "epoch": (step + 1) // setup.steps_per_epoch}
    if "next_losses" in getattr(policy, "needs", ()):
        info["next_losses"] = setup.next_losses[step].clone()
    return info


def _snapshot(action: Any) -> Any:
    """A detached copy of an action, so later in-place changes by the policy do not alter it."""
    if isinstance(action, torch.Tensor):
        return action.detach().clone()
    if isinstance(action, GradientWeights | GradientDirection):
        fields = {
            name: (value.detach().clone() if isinstance(value, torch.Tensor) else value)
            for name, value in vars(action).items()
        }
        return type(action)(**fields)
    return action


def _reset(policy: Policy, setup: _Setup) -> None:
    policy.reset(setup.task_names, setup.seed, device="cpu", **setup.context(policy))


def _run(policy: Policy, setup: _Setup, steps: range | None = None, *, reset: bool = True) -> list[Any]:
    """Reset (optionally), then act/update over ``steps``; undeclared reads raise _UndeclaredRead."""
    if reset:
        _reset(policy, setup)
    actions = []
    for step in steps if steps is not None else range(len(setup.observations)):
        obs = _observation(setup, step, policy)
        try:
            action = policy.act(obs)
        except KeyError:
            if obs.undeclared:
                raise _UndeclaredRead(obs.undeclared[0]) from None
            raise
        if obs.undeclared:  # the policy caught the KeyError itself: still a read of an undeclared key
            raise _UndeclaredRead(obs.undeclared[0])
        actions.append(_snapshot(action))
        policy.update(_info(setup, step, policy))
    return actions


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return (
            a.shape == b.shape
            and a.dtype == b.dtype
            and bool(torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True))  # exact, NaN == NaN
        )
    if isinstance(a, GradientWeights | GradientDirection):
        return all(
            (x is None and y is None) or (x is not None and y is not None and _same(x, y))
            for x, y in zip(vars(a).values(), vars(b).values())
        )
    return bool(a == b)


def _describe_exc(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


# ------------------------------------------------------------------------ the checks
def check_construct(factory: PolicyFactory, name: str) -> Policy:
    try:
        policy = factory()
    except Exception as err:
        raise PolicyCheckError(name, "construct", f"building the policy raised {_describe_exc(err)}") from err
    for attr in ("act", "reset", "update"):
        if not callable(getattr(policy, attr, None)):
            raise PolicyCheckError(name, "construct", f"the policy has no method {attr}()")
    return policy


def check_declaration(policy: Policy, name: str) -> None:
    pname = getattr(policy, "name", None)
    if not isinstance(pname, str) or not pname:
        raise PolicyCheckError(name, "declaration", f"'name' must be a non-empty string, got {pname!r}")
    level = getattr(policy, "level", None)
    if level not in ("loss", "gradient"):
        raise PolicyCheckError(name, "declaration", f"'level' must be 'loss' or 'gradient', got {level!r}")
    needs = getattr(policy, "needs", None)
    if not isinstance(needs, set | frozenset) or not all(isinstance(n, str) for n in needs):
        raise PolicyCheckError(name, "declaration", f"'needs' must be a frozenset of strings, got {needs!r}")
    unknown = sorted(set(needs) - KNOWN_NEEDS)
    if unknown:
        raise PolicyCheckError(
            name, "declaration", f"'needs' has unknown entries {unknown}; known: {sorted(KNOWN_NEEDS)}"
        )
    wrt = getattr(policy, "wrt", "parameters")
    if wrt not in ("parameters", "representation"):
        raise PolicyCheckError(
            name, "declaration", f"'wrt' must be 'parameters' or 'representation', got {wrt!r}"
        )


def check_hparams(policy: Policy, name: str) -> None:
    hparams_fn = getattr(policy, "hparams", None)
    if not callable(hparams_fn):
        raise PolicyCheckError(name, "hparams", "the policy has no hparams() method")
    try:
        hparams = hparams_fn()
    except Exception as err:
        raise PolicyCheckError(name, "hparams", f"hparams() raised {_describe_exc(err)}") from err
    if not isinstance(hparams, dict):
        raise PolicyCheckError(name, "hparams", f"hparams() must return a dict, got {type(hparams).__name__}")
    try:
        json.dumps(hparams, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise PolicyCheckError(
            name, "hparams", f"hparams() must be JSON-serialisable (it is stored in result files): {err}"
        ) from None


def check_needs(factory: PolicyFactory, name: str, setup: _Setup) -> None:
    policy = factory()
    try:
        _run(policy, setup)
    except _UndeclaredRead as err:
        raise PolicyCheckError(
            name,
            "needs",
            f"act() read observation key {err.key!r}, which the policy does not declare "
            f"(needs: {sorted(getattr(policy, 'needs', ()))}); add {err.key!r} to needs",
        ) from None
    except Exception as err:
        raise PolicyCheckError(name, "needs", f"running the policy raised {_describe_exc(err)}") from err


def check_actions(factory: PolicyFactory, name: str, setup: _Setup) -> None:
    policy = factory()
    level = getattr(policy, "level", "loss")
    _reset(policy, setup)
    for step in range(len(setup.observations)):
        obs = _observation(setup, step, policy)
        before = {k: v.clone() for k, v in obs.items()}
        try:
            action = policy.act(obs)
        except Exception as err:
            raise PolicyCheckError(
                name, "actions", f"act() raised at step {step}: {_describe_exc(err)}"
            ) from err
        problem = action_problem(action, level, setup.num_tasks, setup.dim)
        if problem is not None:
            raise PolicyCheckError(name, "actions", f"step {step}: {problem}")
        changed = [k for k in before if not torch.equal(before[k], obs[k])]
        if changed:
            raise PolicyCheckError(
                name, "actions", f"step {step}: act() modified observation {changed} in place; clone first"
            )
        try:
            policy.update(_info(setup, step, policy))
        except Exception as err:
            raise PolicyCheckError(
                name, "actions", f"update() raised at step {step}: {_describe_exc(err)}"
            ) from err


def check_determinism(factory: PolicyFactory, name: str, setup: _Setup) -> None:
    first, second = _run(factory(), setup), _run(factory(), setup)
    for step, (a, b) in enumerate(zip(first, second)):
        if not _same(a, b):
            raise PolicyCheckError(
                name,
                "determinism",
                f"two fresh instances reset with seed {setup.seed} gave different actions at step {step} "
                f"({_short(a)} vs {_short(b)}); draw randomness only from self.generator and keep state "
                "per instance",
            )


def _short(action: Any) -> str:
    if isinstance(action, torch.Tensor):
        return str([round(float(x), 6) for x in action.detach().flatten()[:6]])
    return type(action).__name__


def _rng_states() -> dict[str, Any]:
    return {
        "torch": torch.random.get_rng_state(),
        "numpy": np.random.get_state(),
        "random": random.getstate(),
    }


def _changed_rngs(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changed = []
    if not torch.equal(before["torch"], after["torch"]):
        changed.append("torch")
    b, a = before["numpy"], after["numpy"]
    if not (b[0] == a[0] and np.array_equal(b[1], a[1]) and tuple(b[2:]) == tuple(a[2:])):
        changed.append("numpy")
    if before["random"] != after["random"]:
        changed.append("random")
    return changed


def check_global_rng(factory: PolicyFactory, name: str, setup: _Setup) -> None:
    phases: list[tuple[str, Callable[[Any], Any]]] = [
        ("__init__", lambda _: factory()),
        ("reset()", lambda p: _reset(p, setup)),
        ("act()/update()", lambda p: _run(p, setup, reset=False)),
    ]
    policy: Any = None
    for phase, fn in phases:
        before = _rng_states()
        out = fn(policy)
        changed = _changed_rngs(before, _rng_states())
        if phase == "__init__":
            policy = out
        if changed:
            raise PolicyCheckError(
                name,
                "global_rng",
                f"{phase} changed the global {' and '.join(changed)} RNG state; use self.generator "
                "(seeded in reset) for all randomness",
            )


def check_state_dict(factory: PolicyFactory, name: str, setup: _Setup) -> None:
    half = len(setup.observations) // 2
    steps_rest = range(half, len(setup.observations))
    policy = factory()
    _run(policy, setup, range(half))
    state = policy.state_dict()
    expected = _run(policy, setup, steps_rest, reset=False)
    restored = factory()
    _reset(restored, setup)
    restored.load_state_dict(state)
    got = _run(restored, setup, steps_rest, reset=False)
    for step, (a, b) in zip(steps_rest, zip(expected, got)):
        if not _same(a, b):
            raise PolicyCheckError(
                name,
                "state_dict",
                f"after load_state_dict() the actions differ at step {step}; a resumed run would not "
                "continue the same way (include all state in state_dict())",
            )


# --------------------------------------------------------------------- static check


def check_static(folder: str | os.PathLike[str], declared: Collection[str]) -> CheckResult:
    """The ``static`` check: every flagged use must be declared with a reason in submission.yaml."""
    findings = static_findings(folder)
    undeclared = [f for f in findings if f.capability not in declared]
    if undeclared:
        kinds = sorted({f.capability for f in undeclared})
        example = ", ".join(f'{k}: "why the method needs it"' for k in kinds)
        lines = [str(f) for f in undeclared]
        return CheckResult(
            "static",
            "failed",
            "a weighting method has no business doing this:\n      "
            + "\n      ".join(lines)
            + "\n    remove it, or declare and explain each use in submission.yaml "
            + f"(declared_capabilities: {{{example}}}); declared uses are reviewed before publication",
        )
    if findings:
        uses = ", ".join(sorted({f"{f.capability} ({f.file}:{f.line})" for f in findings}))
        return CheckResult("static", "warning", f"declared uses, reviewed before publication: {uses}")
    return CheckResult("static", "passed")


# ------------------------------------------------------------------------- drivers
def check_policy(
    policy_factory: PolicyFactory,
    *,
    num_tasks: int = 3,
    dim: int = 16,
    steps: int = 20,
    seed: int = 0,
    name: str | None = None,
    raise_on_failure: bool = False,
) -> CheckReport:
    """Run every check on policies built by ``policy_factory`` (a zero-argument callable).

    Returns a :class:`CheckReport`; with ``raise_on_failure=True`` the first failed check
    raises :class:`PolicyCheckError` instead. Checks that need a constructed policy are
    skipped when construction fails; the state-dict round trip only warns.
    """
    label = name or getattr(policy_factory, "__name__", None) or repr(policy_factory)
    report = CheckReport(policy=label)

    def run(check: str, fn: Callable[[], Any], *, warn_only: bool = False) -> bool:
        try:
            fn()
        except PolicyCheckError as err:
            if raise_on_failure and not warn_only:
                raise
            report.results.append(CheckResult(check, "warning" if warn_only else "failed", err.message))
            return False
        except Exception as err:  # a crash inside a check is the policy's failure, reported as such
            if raise_on_failure and not warn_only:
                raise PolicyCheckError(label, check, _describe_exc(err)) from err
            report.results.append(
                CheckResult(check, "warning" if warn_only else "failed", _describe_exc(err))
            )
            return False
        report.results.append(CheckResult(check, "passed"))
        return True

    built: list[Policy] = []
    if not run("construct", lambda: built.append(check_construct(policy_factory, label))):
        return report
    policy = built[0]
    report.policy = label = name or getattr(policy, "name", None) or label
    if not run("declaration", lambda: check_declaration(policy, label)):
        return report
    run("hparams", lambda: check_hparams(policy, label))
    setup = _synthetic(num_tasks, dim, steps, seed)
    later = ("actions", "determinism", "global_rng")
    if run("needs", lambda: check_needs(policy_factory, label, setup)):
        run("actions", lambda: check_actions(policy_factory, label, setup))
        run("determinism", lambda: check_determinism(policy_factory, label, setup))
        run("global_rng", lambda: check_global_rng(policy_factory, label, setup))
        run("state_dict", lambda: check_state_dict(policy_factory, label, setup), warn_only=True)
    else:
        for check in (*later, "state_dict"):
            report.results.append(
                CheckResult(check, "skipped", "the policy cannot run on its declared needs")
            )
    return report


def check_submission(
    path: str | os.PathLike[str],
    *,
    known_envs: Callable[[str], bool] | None = None,
    isolation: str | None = None,
    **check_kwargs: Any,
) -> CheckReport:
    """Validate ``<path>/submission.yaml``, read its code (``static``), then run :func:`check_policy`.

    ``known_envs(env_id) -> bool`` checks the env ids the submission lists; by default the
    mtlbench registry is asked, and the check is skipped when the registry cannot be loaded.
    ``isolation``: ``"process"`` runs the policy checks in a policy process
    (:func:`mtlbench.harness.isolation.call_isolated`), ``"none"`` in this one; by default
    submitted code is isolated and built-in methods are not.
    """
    from mtlbench.harness.submission import SubmissionError, load_submission

    report = CheckReport(policy=str(path), source=str(path))
    try:
        submission = load_submission(path)
    except SubmissionError as err:
        report.results.append(CheckResult("submission.yaml", "failed", "\n    ".join(err.problems)))
        return report
    report.policy = f"{submission.name}@{submission.version}"
    report.results.append(CheckResult("submission.yaml", "passed"))
    report.results.append(_check_envs(submission.envs, known_envs))
    if not submission.is_builtin:
        report.results.append(check_static(submission.folder, submission.declared_capabilities))
    if (isolation or ("none" if submission.is_builtin else "process")) == "process":
        report.results.extend(_policy_checks_isolated(submission.folder, report.policy, check_kwargs))
        return report

    def factory() -> Policy:
        return submission.make_policy()

    policy_report = check_policy(factory, name=report.policy, **check_kwargs)
    report.results.extend(policy_report.results)
    return report


def _policy_checks(folder: str, label: str, check_kwargs: dict[str, Any]) -> list[list[str]]:
    """In the policy process: load the submission and run :func:`check_policy`; JSON-able rows."""
    from mtlbench.harness.submission import load_submission

    submission = load_submission(folder)
    policy_report = check_policy(submission.make_policy, name=label, **check_kwargs)
    return [[r.check, r.status, r.message] for r in policy_report.results]


def _policy_checks_isolated(folder: Path, label: str, check_kwargs: dict[str, Any]) -> list[CheckResult]:
    from mtlbench.harness.isolation import PolicyProcessFailure, call_isolated

    try:
        rows = call_isolated(_policy_checks, str(folder.resolve()), label, check_kwargs, label=label)
    except PolicyProcessFailure as err:
        return [CheckResult("construct", "failed", f"the policy checks ended in a {err.status}: {err}")]
    statuses = ("passed", "failed", "warning", "skipped")
    if not isinstance(rows, list) or not all(
        isinstance(r, list) and len(r) == 3 and r[1] in statuses and all(isinstance(x, str) for x in r)
        for r in rows
    ):
        return [CheckResult("construct", "failed", "the policy process sent a malformed report")]
    return [CheckResult(check, status, message) for check, status, message in rows]


def _check_envs(envs: list[str] | str, known_envs: Callable[[str], bool] | None) -> CheckResult:
    if envs == "all":
        return CheckResult("envs", "passed", "all registered envs")
    if known_envs is None:
        try:
            from mtlbench.registration import Error, spec
        except Exception as err:  # the registry may be broken in a partial checkout
            return CheckResult(
                "envs", "skipped", f"the env registry could not be loaded: {_describe_exc(err)}"
            )

        def known_envs(env_id: str) -> bool:
            try:
                spec(env_id)
            except Error:
                return False
            return True

    try:
        unknown = [e for e in envs if not known_envs(e)]
    except Exception as err:
        return CheckResult("envs", "skipped", f"the env registry could not be loaded: {_describe_exc(err)}")
    if unknown:
        return CheckResult("envs", "failed", f"unknown env ids {unknown}; see mtlbench.pprint_registry()")
    return CheckResult("envs", "passed")


def main_check(path: str | os.PathLike[str], **kwargs: Any) -> tuple[int, str]:
    """For ``mtlbench check <path>``: ``(exit code, report text)``; 0 when every check passed."""
    report = check_submission(path, **kwargs)
    return (0 if report.ok else 1), report.render()

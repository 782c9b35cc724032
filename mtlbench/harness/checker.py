"""The policy checker: run a weighting method once on synthetic observations, invasively.

In the spirit of Gymnasium's ``utils/env_checker.check_env``: a run-once function made of
one small helper per check, each raising :class:`PolicyCheckError` that names the policy
and the check. :func:`check_policy` runs them all and returns a :class:`CheckReport`;
:mod:`mtlbench.harness.submission_check` checks a submission folder (its YAML, its code read
statically, then these checks) for ``mtlbench check submissions/<name>``.

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

The synthetic observations are :mod:`mtlbench.harness.check_inputs`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from mtlbench.harness.check_inputs import (
    Setup,
    UndeclaredRead,
    describe_exc,
    reset_policy,
    run_policy,
    same_action,
    strict_observation,
    synthetic_setup,
    update_info,
)
from mtlbench.protocol import (
    KNOWN_NEEDS,
    action_problem,
)

if TYPE_CHECKING:
    from mtlbench.policies.base import Policy

__all__ = [
    "CheckReport",
    "CheckResult",
    "PolicyCheckError",
    "check_policy",
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


# ------------------------------------------------------------------------ the checks
def check_construct(factory: PolicyFactory, name: str) -> Policy:
    try:
        policy = factory()
    except Exception as err:
        raise PolicyCheckError(name, "construct", f"building the policy raised {describe_exc(err)}") from err
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
        raise PolicyCheckError(name, "hparams", f"hparams() raised {describe_exc(err)}") from err
    if not isinstance(hparams, dict):
        raise PolicyCheckError(name, "hparams", f"hparams() must return a dict, got {type(hparams).__name__}")
    try:
        json.dumps(hparams, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise PolicyCheckError(
            name, "hparams", f"hparams() must be JSON-serialisable (it is stored in result files): {err}"
        ) from None


def check_needs(factory: PolicyFactory, name: str, setup: Setup) -> None:
    policy = factory()
    try:
        run_policy(policy, setup)
    except UndeclaredRead as err:
        raise PolicyCheckError(
            name,
            "needs",
            f"act() read observation key {err.key!r}, which the policy does not declare "
            f"(needs: {sorted(getattr(policy, 'needs', ()))}); add {err.key!r} to needs",
        ) from None
    except Exception as err:
        raise PolicyCheckError(name, "needs", f"running the policy raised {describe_exc(err)}") from err


def check_actions(factory: PolicyFactory, name: str, setup: Setup) -> None:
    policy = factory()
    level = getattr(policy, "level", "loss")
    reset_policy(policy, setup)
    for step in range(len(setup.observations)):
        obs = strict_observation(setup, step, policy)
        before = {k: v.clone() for k, v in obs.items()}
        try:
            action = policy.act(obs)
        except Exception as err:
            raise PolicyCheckError(
                name, "actions", f"act() raised at step {step}: {describe_exc(err)}"
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
            policy.update(update_info(setup, step, policy))
        except Exception as err:
            raise PolicyCheckError(
                name, "actions", f"update() raised at step {step}: {describe_exc(err)}"
            ) from err


def check_determinism(factory: PolicyFactory, name: str, setup: Setup) -> None:
    first, second = run_policy(factory(), setup), run_policy(factory(), setup)
    for step, (a, b) in enumerate(zip(first, second)):
        if not same_action(a, b):
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


def check_global_rng(factory: PolicyFactory, name: str, setup: Setup) -> None:
    phases: list[tuple[str, Callable[[Any], Any]]] = [
        ("__init__", lambda _: factory()),
        ("reset()", lambda p: reset_policy(p, setup)),
        ("act()/update()", lambda p: run_policy(p, setup, reset=False)),
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


def check_state_dict(factory: PolicyFactory, name: str, setup: Setup) -> None:
    half = len(setup.observations) // 2
    steps_rest = range(half, len(setup.observations))
    policy = factory()
    run_policy(policy, setup, range(half))
    state = policy.state_dict()
    expected = run_policy(policy, setup, steps_rest, reset=False)
    restored = factory()
    reset_policy(restored, setup)
    restored.load_state_dict(state)
    got = run_policy(restored, setup, steps_rest, reset=False)
    for step, (a, b) in zip(steps_rest, zip(expected, got)):
        if not same_action(a, b):
            raise PolicyCheckError(
                name,
                "state_dict",
                f"after load_state_dict() the actions differ at step {step}; a resumed run would not "
                "continue the same way (include all state in state_dict())",
            )


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
                raise PolicyCheckError(label, check, describe_exc(err)) from err
            report.results.append(CheckResult(check, "warning" if warn_only else "failed", describe_exc(err)))
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
    setup = synthetic_setup(num_tasks, dim, steps, seed)
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

"""Checking a submission folder: its ``submission.yaml``, its code read statically, then the
policy checks of :mod:`mtlbench.harness.checker`, in a policy process for submitted code.

``mtlbench check submissions/<name>`` prints the report that :func:`main_check` returns.
The ``static`` check (submissions only): the folder's Python files, read with :mod:`ast`,
use none of :data:`~mtlbench.harness.submission.CAPABILITIES` (gc, inspect, frames, ctypes,
subprocesses, network, file writes, eval/exec) unless ``declared_capabilities`` in
submission.yaml explains each; ``file:line`` per use (:mod:`mtlbench.harness.static_check`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtlbench.harness.check_inputs import describe_exc
from mtlbench.harness.checker import CheckReport, CheckResult, check_policy
from mtlbench.harness.static_check import static_findings

if TYPE_CHECKING:
    from mtlbench.policies.base import Policy

__all__ = ["check_static", "check_submission", "main_check"]


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
                "envs", "skipped", f"the env registry could not be loaded: {describe_exc(err)}"
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
        return CheckResult("envs", "skipped", f"the env registry could not be loaded: {describe_exc(err)}")
    if unknown:
        return CheckResult("envs", "failed", f"unknown env ids {unknown}; see mtlbench.pprint_registry()")
    return CheckResult("envs", "passed")


def main_check(path: str | os.PathLike[str], **kwargs: Any) -> tuple[int, str]:
    """For ``mtlbench check <path>``: ``(exit code, report text)``; 0 when every check passed."""
    report = check_submission(path, **kwargs)
    return (0 if report.ok else 1), report.render()

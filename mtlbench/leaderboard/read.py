"""Reading stored result files for the leaderboard: which files are used, and why the others
are not (the **Exclusions**; docs/leaderboard.md, "Which files are used").
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtlbench.harness.results import ResultFileError, RunResult, read_result
from mtlbench.leaderboard.model import Exclusion, MethodCard, RegistryLookup, Run

__all__ = [
    "higher_is_better",
    "method_cards",
    "read_all",
    "registry_lookup",
    "run_failure",
    "submissions_folder",
]


def registry_lookup() -> tuple[RegistryLookup | None, str]:
    """mtlbench's env registry as a lookup, or ``None`` (and why) when it cannot be loaded."""
    try:
        import mtlbench.envs  # noqa: F401  (registers the built-in envs)
        from mtlbench.registration import Error, spec
    except Exception as err:  # a partial checkout: rebuild from the files alone
        return None, f"off (the env registry could not be loaded: {type(err).__name__}: {err})"

    def lookup(env_id: str) -> str | None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # superseded versions stay valid
                return spec(env_id).hash
        except Error:
            return None

    return lookup, "on (mtlbench's env registry)"


def _layout_problem(rel: str, result: RunResult) -> str | None:
    parts = rel.split("/")
    if len(parts) < 3:
        return "not under <env-id>/<method>@<version>/ (expected <env-id>/<method>@<version>/seed-<k>.json)"
    env_dir, method_dir, file = "/".join(parts[:-2]), parts[-2], parts[-1]
    expected = (result.env_id, f"{result.method.name}@{result.method.version}", f"seed-{result.seed}.json")
    if (env_dir, method_dir, file) != expected:
        return (
            f"stored as {env_dir}/{method_dir}/{file} but the file describes "
            f"{expected[0]}/{expected[1]}/{expected[2]}"
        )
    if result.spec.get("id", result.env_id) != result.env_id:
        return f"env_id {result.env_id!r} differs from the stored spec's id {result.spec.get('id')!r}"
    return None


def higher_is_better(spec: Mapping[str, Any]) -> dict[str, dict[str, bool]]:
    """``{task: {metric: higher_is_better}}`` from a stored spec; raises ValueError if malformed."""
    try:
        out = {
            str(t["name"]): {str(m["name"]): bool(m["higher_is_better"]) for m in t["metrics"]}
            for t in spec["tasks"]
        }
    except (KeyError, TypeError) as err:
        raise ValueError(f"the stored spec has no tasks[].metrics[].higher_is_better ({err!r})") from None
    if not out or any(not m for m in out.values()):
        raise ValueError("the stored spec lists no tasks or a task without metrics")
    return out


def _metrics_problem(
    metrics: Mapping[str, Mapping[str, float]], hib: Mapping[str, Mapping[str, bool]]
) -> str | None:
    want = {(t, m) for t, ms in hib.items() for m in ms}
    have = {(t, m) for t, ms in metrics.items() for m in ms}
    if want == have:
        return None
    missing = sorted(f"{t}/{m}" for t, m in want - have)
    extra = sorted(f"{t}/{m}" for t, m in have - want)
    return f"selected test metrics do not match the spec's: missing {missing}, unexpected {extra}"


def run_failure(result: RunResult) -> str | None:
    if result.status != "ok":
        return f"{result.status}" + (f" ({result.message})" if result.message else "")
    if result.selected is None:
        return "ok but no evaluation was recorded"
    values = [v for ms in result.selected.test.values() for v in ms.values()]
    if not all(math.isfinite(v) for v in values):
        return "ok but the selected test metrics are not finite"
    return None


def read_all(
    results_dir: Path, paths: list[Path], lookup: RegistryLookup | None
) -> tuple[list[Run], list[Exclusion]]:
    runs: list[Run] = []
    exclusions: list[Exclusion] = []
    registered: dict[str, str | None] = {}
    for path in sorted(paths, key=lambda p: p.relative_to(results_dir).as_posix()):
        rel = path.relative_to(results_dir).as_posix()
        try:
            result = read_result(path)
        except ResultFileError as err:
            exclusions.append(Exclusion(rel, err.reason))
            continue
        # unofficial first: their folder (<method>@<version>+unofficial-<hash>) is not the layout's
        problem = "unofficial run (protocol fields were overridden)" if not result.official else None
        if problem is None:
            problem = _layout_problem(rel, result)
        if problem is None and lookup is not None:
            if result.env_id not in registered:
                registered[result.env_id] = lookup(result.env_id)
            current = registered[result.env_id]
            if current is None:
                problem = f"env id {result.env_id!r} is not registered in mtlbench"
            elif current != result.spec_hash:
                problem = (
                    f"spec hash {result.spec_hash} differs from the registered {result.env_id} spec's "
                    f"{current} (the env changed without a version bump, or the run used another protocol)"
                )
        if problem is None:
            try:
                hib = higher_is_better(result.spec)
            except ValueError as err:
                problem = str(err)
            else:
                if result.selected is not None:
                    problem = _metrics_problem(result.selected.test, hib)
        if problem is not None:
            exclusions.append(Exclusion(rel, problem))
            continue
        runs.append(Run(rel, result, run_failure(result)))
    return runs, exclusions


# ------------------------------------------------------------------------ method cards
def submissions_folder() -> Path | None:
    """``./submissions`` if it exists, else the one beside the ``mtlbench`` package (a clone)."""
    for folder in (Path("submissions"), Path(__file__).resolve().parents[2] / "submissions"):
        if folder.is_dir():
            return folder
    return None


def method_cards(root: Path | None) -> dict[str, MethodCard]:
    """Authors, paper and description of every valid ``<root>/<name>/submission.yaml``.

    An invalid submission has no card (``mtlbench check`` reports its problems); the
    leaderboard then shows the bare method id.
    """
    from mtlbench.harness.submission import SubmissionError, discover_submissions, load_submission

    cards: dict[str, MethodCard] = {}
    if root is None:
        return cards
    for folder in discover_submissions(root):
        try:
            sub = load_submission(folder)
        except SubmissionError:
            continue
        description = " ".join(sub.description.split()) if sub.description else None
        cards[sub.name] = MethodCard(sub.name, tuple(sub.authors), sub.paper, description)
    return cards

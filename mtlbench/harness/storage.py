"""The rules for stored results: what counts as done, what may never be overwritten.

A stored result is never overwritten by a run of another protocol or other code: an
unofficial run (``overrides``) has its own folder (:func:`~mtlbench.harness.results.result_path`),
a stored run of another spec hash or code hash is an error (:class:`StoredResultConflict`)
unless the request says ``rerun``, and then the old file is kept beside the new one.
:func:`check_requests` and :func:`check_stored` run before anything starts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from mtlbench.harness.results import (
    ResultFileError,
    RunResult,
    keep_beside,
    read_result,
    write_result,
)
from mtlbench.harness.runner import RunRequest

__all__ = ["FINAL_STATUSES", "StoredResultConflict", "check_requests", "check_stored", "is_done", "store"]

#: statuses that are outcomes of the method: stored for good. timeout, oom and error may be
#: the machine's fault, so those runs are tried again on the next invocation
FINAL_STATUSES = ("ok", "diverged", "invalid_action")


class StoredResultConflict(ValueError):
    """Stored result files were made under another protocol (spec hash) or by other code
    (code hash) than the requested runs; the message names each file and both hashes."""


def _stored(path: Path) -> RunResult | None:
    if not path.exists():
        return None
    try:
        return read_result(path)
    except ResultFileError:
        return None  # kept beside as .unreadable when the new result is stored


def _differs(request: RunRequest, stored: RunResult) -> str | None:
    """Why ``stored`` is not a result of ``request``'s protocol and code, or None."""
    current = request.spec().hash
    if stored.spec_hash != current:
        return (
            f"it was made under spec hash {stored.spec_hash}, the run's protocol has spec hash "
            f"{current} (the env changed without a version bump?)"
        )
    if stored.method.version != request.method.version:
        return f"it holds version {stored.method.version!r}, the run is version {request.method.version!r}"
    old, new = stored.method.code_hash, request.method.code_hash
    if old is not None and new is not None and old != new:
        return (
            f"it was made by code hash {old}, the method's code now has hash {new} "
            f"(same version {request.method.version!r})"
        )
    return None


def is_done(request: RunRequest) -> bool:
    """True when a valid, final result of the same spec hash, method version and code hash is stored.

    A stored code hash of ``None`` (built-in methods run by name) matches any code hash.
    """
    stored = _stored(request.path)
    return stored is not None and stored.status in FINAL_STATUSES and _differs(request, stored) is None


def check_stored(requests: Sequence[RunRequest]) -> None:
    """Refuse, before anything runs, to replace a stored result of another protocol or code.

    For each request without ``rerun``: its stored file, if any, must have the request's
    spec hash and code hash; and no other seed in its ``<method>@<version>/`` folder may come
    from other code (seeds of one version would otherwise mix two codes). Raises
    :class:`StoredResultConflict` naming the files, both hashes and the two ways out.
    """
    problems: list[str] = []
    folders: dict[Path, list[tuple[Path, RunResult]]] = {}
    for request in requests:
        if request.rerun:
            continue
        path = request.path
        stored = _stored(path)
        if stored is not None:
            why = _differs(request, stored)
            if why:
                problems.append(f"{path}: {why}")
            continue
        new = request.method.code_hash
        if new is None:
            continue
        if path.parent not in folders:
            folders[path.parent] = [
                (p, r) for p in sorted(path.parent.glob("seed-*.json")) if (r := _stored(p)) is not None
            ]
        for other_path, other in folders[path.parent]:
            old = other.method.code_hash
            if old is not None and old != new:
                problems.append(
                    f"{other_path}: made by code hash {old}, the method's code "
                    f"now has hash {new} (same version {request.method.version!r}); seed {request.seed} "
                    "would mix two codes under one version"
                )
                break
    if problems:
        problems = list(dict.fromkeys(problems))
        shown = problems[:5] + ([f"... and {len(problems) - 5} more"] if len(problems) > 5 else [])
        raise StoredResultConflict(
            f"{len(problems)} stored result(s) are not results of this protocol and code, "
            "so nothing was run: "
            + "; ".join(shown)
            + ". Bump `version` in submission.yaml when the method's code changed (each version "
            "is stored apart), or pass --rerun to train these runs again (each old file is kept "
            "beside the new one as seed-<k>.json.replaced-<n>, never deleted)."
        )


def check_requests(requests: Sequence[RunRequest], *, workers: int | None = None) -> None:
    """Validate a grid before anything starts: one ``ValueError`` naming the first problem.

    Seeds >= 0, a positive time limit and thread count, ``workers`` >= 1, each run listed
    once, every env id registered and every override naming a field of its env's spec.
    """
    from mtlbench.registration import check_overrides, spec

    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    seen: set[Path] = set()
    checked: set[tuple[str, str]] = set()
    for request in requests:
        if request.seed < 0:
            raise ValueError(f"seeds must be >= 0, got {request.seed} ({request.label()})")
        if request.timeout_s is not None and not request.timeout_s > 0:
            raise ValueError(f"the time limit must be > 0 seconds, got {request.timeout_s}")
        if request.threads is not None and request.threads < 1:
            raise ValueError(f"threads must be >= 1, got {request.threads}")
        key = (request.env_id, json.dumps(request.overrides, sort_keys=True, default=str))
        if key not in checked:
            checked.add(key)
            check_overrides(spec(request.env_id), request.overrides)
        if request.path in seen:
            raise ValueError(f"{request.label()} is listed twice (it would write {request.path} twice)")
        seen.add(request.path)


def store(request: RunRequest, result: RunResult) -> Path:
    """Write the result atomically; no stored result is lost.

    An unreadable old file is kept beside as ``seed-<k>.json.unreadable``; a final result
    (ok, diverged, invalid_action) or one of another spec hash, version or code hash as
    ``seed-<k>.json.replaced-<n>``. Only a failure record (timeout, oom, error) of the
    same protocol and code is replaced: that run was being tried again.
    """
    path = request.path
    if path.exists():
        try:
            stored = read_result(path)
        except ResultFileError:
            unreadable = path.with_suffix(".json.unreadable")
            if unreadable.exists():
                keep_beside(path, "unreadable")
            else:
                os.replace(path, unreadable)
        else:
            if stored.status in FINAL_STATUSES or _differs(request, stored) is not None:
                keep_beside(path, "replaced")
    return write_result(path, result)

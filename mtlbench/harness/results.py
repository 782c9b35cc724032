"""Result files: one JSON file per run, schema-validated and written atomically.

Layout (docs/design.md, "Result file"), under a results folder (``--results-dir``; default
:func:`default_results_dir`, the published ones live in ``leaderboard/results``)::

    <results-dir>/<env-id>/<method>@<version>/seed-<k>.json
    <results-dir>/<env-id>/<method>@<version>+unofficial-<spec-hash>/seed-<k>.json

The second form holds unofficial runs (protocol fields overridden): keyed by the hash of the
overridden protocol, they never share a file with an official run or with another override.

A result carries everything needed to rebuild any leaderboard from it alone (AlgoPerf's
"scoring reads only logs"): the env spec and its hash, the method and its
hyperparameters, the seed, the status, the per-split metrics at every evaluation (the
curves), the selected and last metrics, the cost, and the software environment.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "ISOLATION_MODES",
    "SCHEMA_VERSION",
    "STATUSES",
    "Cost",
    "Evaluation",
    "MethodInfo",
    "ResultFileError",
    "RunResult",
    "Selected",
    "SoftwareEnvironment",
    "check_writable",
    "default_results_dir",
    "file_mode",
    "keep_beside",
    "read_result",
    "result_path",
    "software_environment",
    "write_result",
]

SCHEMA_VERSION: Final = 1
Status = Literal["ok", "diverged", "invalid_action", "timeout", "oom", "error"]
STATUSES: tuple[str, ...] = ("ok", "diverged", "invalid_action", "timeout", "oom", "error")
Isolation = Literal["none", "process"]
#: where a policy may run: in the env's process, or in its own (mtlbench.harness.isolation)
ISOLATION_MODES: tuple[str, ...] = ("none", "process")
Metrics = dict[str, dict[str, float]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Evaluation(_Strict):
    """Metrics of every split at one evaluation point (one point of the curves)."""

    epoch: int
    step: int
    val: Metrics
    test: Metrics
    val_score: float = Field(description="validation delta_p vs the selection baseline, percent")


class Selected(_Strict):
    """Test (and validation) metrics at one chosen evaluation."""

    epoch: int
    val: Metrics
    test: Metrics


class Cost(_Strict):
    steps: int
    wall_time_s: float
    time_per_step_s: float
    peak_memory_mb: float | None = None
    device: str


class MethodInfo(_Strict):
    name: str
    version: str
    level: Literal["loss", "gradient"]
    hparams: dict[str, Any] = Field(default_factory=dict)
    code_hash: str | None = None


class SoftwareEnvironment(_Strict):
    mtlbench: str
    python: str
    torch: str
    platform: str
    git_commit: str | None = None
    #: torch's intra-op thread count during the run: on CPU, results are bitwise reproducible
    #: for a given seed *and* thread count (reductions split differently across threads)
    torch_threads: int | None = None


class RunResult(_Strict):
    """One run of one method on one env at one seed."""

    schema_version: Literal[1] = SCHEMA_VERSION
    env_id: str
    spec: dict[str, Any]
    spec_hash: str
    evaluator_version: str
    official: bool
    method: MethodInfo
    seed: int
    status: Status
    message: str | None = None
    evaluations: list[Evaluation] = Field(default_factory=list)
    selected: Selected | None = Field(default=None, description="at the best validation score")
    last: Selected | None = Field(default=None, description="at the last evaluation")
    cost: Cost
    environment: SoftwareEnvironment
    isolation: Isolation | None = Field(
        default=None,
        description="where the policy ran: 'none' in the env's process, 'process' in its own "
        "(mtlbench.harness.isolation); None in files written before the field existed",
    )
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


class ResultFileError(ValueError):
    """A result file is unreadable, truncated or fails the schema; names the file and why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


#: environment variable naming the default results folder
RESULTS_ENV_VAR: Final = "MTLBENCH_RESULTS"


def default_results_dir() -> str:
    """``$MTLBENCH_RESULTS``, else ``mtlbench-results`` (relative to the working directory).

    A user's runs never land in the published ``leaderboard/results`` by default: publishing
    there is an explicit ``--results-dir leaderboard/results``.
    """
    return os.environ.get(RESULTS_ENV_VAR) or "mtlbench-results"


def result_path(
    root: str | os.PathLike[str],
    env_id: str,
    method: str,
    version: str,
    seed: int,
    *,
    unofficial_spec_hash: str | None = None,
) -> Path:
    """``<root>/<env-id>/<method>@<version>/seed-<k>.json``.

    An unofficial run (``unofficial_spec_hash`` is the hash of its overridden protocol) goes
    to ``<method>@<version>+unofficial-<hash>/`` instead, apart from the official runs.
    """
    folder = f"{method}@{version}"
    if unofficial_spec_hash is not None:
        folder += f"+unofficial-{unofficial_spec_hash}"
    return Path(root) / env_id / folder / f"seed-{seed}.json"


def file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666`` less the process umask."""
    umask = None
    try:  # Linux: read it without changing it (os.umask would race with other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
                break
    except (OSError, ValueError):
        pass
    if umask is None:
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` atomically: a temporary file in the same folder, fsync, ``os.replace``.

    The file gets the mode of a normal file write (``0o666`` less the umask, typically
    0644), not ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), file_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_result(path: Path, result: RunResult) -> Path:
    """Write one result file atomically (see :func:`atomic_write`)."""
    text = json.dumps(result.model_dump(mode="json"), indent=1, sort_keys=True) + "\n"
    return atomic_write(path, text.encode())


def keep_beside(path: str | os.PathLike[str], tag: str) -> Path:
    """Rename ``path`` to ``<name>.<tag>-<n>`` (the first free ``n``) in the same folder.

    The new name does not end in ``.json``, so the leaderboard never reads it; nothing is
    deleted. Returns the new path.
    """
    path = Path(path)
    n = 1
    while True:
        target = path.with_name(f"{path.name}.{tag}-{n}")
        if not target.exists():
            os.replace(path, target)
            return target
        n += 1


def read_result(path: str | os.PathLike[str]) -> RunResult:
    """Read and validate one result file; any problem raises :class:`ResultFileError`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultFileError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultFileError(path, f"not valid JSON (truncated or corrupt): {err}") from None
    if not isinstance(data, dict):
        raise ResultFileError(path, "top-level JSON value must be an object")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ResultFileError(
            path,
            f"schema_version {data.get('schema_version')!r} is not supported (expected {SCHEMA_VERSION})",
        )
    try:
        return RunResult.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ResultFileError(
            path, f"field {where!r}: {first['msg']} ({err.error_count()} error(s))"
        ) from None


def check_writable(
    directory: str | os.PathLike[str], *, option: str = "--results-dir", what: str = "result files"
) -> Path:
    """Fail early, before training, if files cannot be written under ``directory``.

    ``option`` and ``what`` name the command-line option and the kind of file in the error.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(
            f"cannot write {what} under {directory}: {err.strerror or err}. "
            f"Choose another directory with {option} or fix its permissions."
        ) from None
    return directory


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def software_environment() -> SoftwareEnvironment:
    import torch

    from mtlbench._version import __version__

    return SoftwareEnvironment(
        mtlbench=__version__,
        python=sys.version.split()[0],
        torch=torch.__version__,
        platform=platform.platform(),
        git_commit=_git_commit(),
        torch_threads=torch.get_num_threads(),
    )

"""The harness: the training loop, run grids on backends, result files, submissions."""

from __future__ import annotations

from mtlbench.harness.results import ResultFileError, RunResult, read_result, result_path, write_result
from mtlbench.harness.runner import GridReport, MethodRef, RunRequest, execute, run_grid
from mtlbench.harness.train import env_kwargs_for, train

__all__ = [
    "GridReport",
    "MethodRef",
    "ResultFileError",
    "RunRequest",
    "RunResult",
    "env_kwargs_for",
    "execute",
    "read_result",
    "result_path",
    "run_grid",
    "train",
    "write_result",
]

"""The harness: the training loop, run grids on backends, result files, submissions.

Names are imported lazily, so that reading result files (the leaderboard) does not load
the env and model stack.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ResultFileError": "results",
    "RunResult": "results",
    "read_result": "results",
    "result_path": "results",
    "write_result": "results",
    "GridReport": "grid",
    "MethodRef": "runner",
    "RunRequest": "runner",
    "execute": "runner",
    "run_grid": "grid",
    "env_kwargs_for": "train",
    "train": "train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Issue 14, items 2, 6 and 9 in the Python API: the runner never replaces a stored result of
another protocol or code, never overwrites a final result, and checks a grid up front."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mtlbench.harness.grid import run_grid
from mtlbench.harness.results import RunResult, read_result, write_result
from mtlbench.harness.runner import MethodRef, RunRequest, failure_result
from mtlbench.harness.storage import StoredResultConflict, check_requests, check_stored, is_done, store
from mtlbench.registration import OverrideError, spec
from tests.conftest import TINY


def _request(tmp_path: Path, **kw: object) -> RunRequest:
    base: dict[str, object] = dict(
        env_id="multimnist-hps",
        method=MethodRef(name="toy", version="1", entry="builtin:ew", code_hash="a" * 64),
        seed=0,
        results_dir=str(tmp_path),
        device="cpu",
        threads=1,
        overrides=dict(TINY),
    )
    base.update(kw)
    return RunRequest(**base)  # type: ignore[arg-type]


def _stored(request: RunRequest, status: str = "ok", **update: object) -> Path:
    result = failure_result(request, status, "stored by a test")
    return write_result(request.path, RunResult.model_validate({**result.model_dump(), **update}))


def test_official_and_unofficial_runs_have_different_files(tmp_path: Path) -> None:
    official, unofficial = _request(tmp_path, overrides={}), _request(tmp_path)
    assert official.path == tmp_path / "multimnist-hps-v2" / "toy@1" / "seed-0.json"
    assert unofficial.path.parent.name == f"toy@1+unofficial-{spec('multimnist-hps').replace(TINY).hash}"
    other = _request(tmp_path, overrides={**TINY, "budget.epochs": 3})
    assert len({official.path, unofficial.path, other.path}) == 3


def test_store_keeps_a_final_result_beside_and_replaces_only_a_retried_failure(tmp_path: Path) -> None:
    request = _request(tmp_path)
    path = _stored(request, "timeout")
    store(request, failure_result(request, "ok", "the retry"))  # a retried timeout: replaced
    assert read_result(path).message == "the retry" and len(list(path.parent.iterdir())) == 1
    store(request, failure_result(request, "diverged", "again"))  # never over a final result
    assert read_result(path).status == "diverged"
    assert read_result(path.parent / "seed-0.json.replaced-1").message == "the retry"


def test_a_stored_run_of_other_code_is_refused_naming_both_hashes(tmp_path: Path) -> None:
    request = _request(tmp_path)
    old = request.method.code_hash
    path = _stored(request)
    changed = dataclasses.replace(request, method=dataclasses.replace(request.method, code_hash="b" * 64))
    assert is_done(request) and not is_done(changed)
    with pytest.raises(
        StoredResultConflict, match=f"code hash {old}, the method's code now has hash {'b' * 64}"
    ):
        run_grid([changed], backend="inline", progress=False)
    assert read_result(path).method.code_hash == old
    check_stored([dataclasses.replace(changed, rerun=True)])  # --rerun: allowed


def test_a_builtin_run_stored_without_a_code_hash_matches_its_submission(tmp_path: Path) -> None:
    """`mtlbench benchmark --methods ew` and `mtlbench submit submissions/ew` store the same runs."""
    request = _request(tmp_path, method=MethodRef.builtin("ew"))
    _stored(request)
    from_submission = dataclasses.replace(
        request, method=dataclasses.replace(request.method, code_hash="c" * 64)
    )
    assert is_done(from_submission)
    check_stored([from_submission])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": -1}, "seeds must be >= 0"),
        ({"timeout_s": 0.0}, "time limit must be > 0"),
        ({"threads": 0}, "threads must be >= 1"),
        ({"overrides": {"budget.epoch": 1}}, "Did you mean 'budget.epochs'"),
    ],
)
def test_check_requests_refuses_bad_requests(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, OverrideError), match=message):
        run_grid([_request(tmp_path, **change)], backend="inline", progress=False)
    assert not any(tmp_path.iterdir())


def test_check_requests_refuses_workers_below_one_and_duplicates(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers must be >= 1"):
        check_requests([_request(tmp_path)], workers=0)
    with pytest.raises(ValueError, match="listed twice"):
        check_requests([_request(tmp_path), _request(tmp_path, env_id="multimnist-hps-v2")])

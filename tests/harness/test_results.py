"""Result files: schema, atomic writes, clear errors, write checks before training."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mtlbench.harness.results import (
    Cost,
    MethodInfo,
    ResultFileError,
    RunResult,
    check_writable,
    keep_beside,
    read_result,
    result_path,
    software_environment,
    write_result,
)


def _result(**kw: object) -> RunResult:
    base = dict(
        env_id="multimnist-hps-v1",
        spec={"id": "multimnist-hps-v1"},
        spec_hash="abc",
        evaluator_version="1",
        official=True,
        method=MethodInfo(name="ew", version="builtin", level="loss"),
        seed=0,
        status="ok",
        cost=Cost(steps=1, wall_time_s=1.0, time_per_step_s=1.0, device="cpu"),
        environment=software_environment(),
    )
    base.update(kw)
    return RunResult(**base)  # type: ignore[arg-type]


def test_layout() -> None:
    assert result_path("r", "nyuv2-hps-v1", "rlw", "1", 2) == Path("r/nyuv2-hps-v1/rlw@1/seed-2.json")


def test_roundtrip(tmp_path: Path) -> None:
    path = write_result(tmp_path / "a" / "seed-0.json", _result())
    assert read_result(path) == _result(created_at=read_result(path).created_at)
    assert [p.name for p in path.parent.iterdir()] == ["seed-0.json"]  # no temp file left


def test_truncated_file_names_the_file(tmp_path: Path) -> None:
    path = write_result(tmp_path / "seed-0.json", _result())
    path.write_text(path.read_text()[:50])
    with pytest.raises(ResultFileError, match=r"seed-0.json: not valid JSON"):
        read_result(path)


def test_schema_error_names_the_field(tmp_path: Path) -> None:
    path = write_result(tmp_path / "seed-0.json", _result())
    data = json.loads(path.read_text())
    data["status"] = "great"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultFileError, match=r"field 'status'"):
        read_result(path)
    data["status"], data["surprise"] = "ok", 1
    path.write_text(json.dumps(data))
    with pytest.raises(ResultFileError, match=r"field 'surprise'"):
        read_result(path)


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_result(tmp_path / "seed-0.json", _result(seed=0))
    before = path.read_text()

    def boom(*a: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_result(path, _result(seed=1))
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["seed-0.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory_fails_early(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(PermissionError, match="cannot write result files"):
        check_writable(ro / "results")


def test_unwritable_directory_fails_early_even_as_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(PermissionError, match="cannot write result files under"):
        check_writable(blocker / "results")


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_result_files_get_the_mode_of_a_normal_file_write(tmp_path: Path, umask: int) -> None:
    """Not mkstemp's 0600: a result file is as readable as any file the user writes (issue 14, item 11)."""
    old = os.umask(umask)
    try:
        path = write_result(tmp_path / "seed-0.json", _result())
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


def test_unofficial_runs_have_their_own_folder() -> None:
    path = result_path("r", "nyuv2-hps-v1", "rlw", "1", 2, unofficial_spec_hash="0123456789abcdef")
    assert path == Path("r/nyuv2-hps-v1/rlw@1+unofficial-0123456789abcdef/seed-2.json")


def test_keep_beside_never_overwrites(tmp_path: Path) -> None:
    for text in ("first", "second"):
        (tmp_path / "seed-0.json").write_text(text)
        keep_beside(tmp_path / "seed-0.json", "replaced")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed-0.json.replaced-1", "seed-0.json.replaced-2"]
    assert (tmp_path / "seed-0.json.replaced-2").read_text() == "second"

"""Issue 14, items 1, 2, 3, 6, 9, 11: no command loses or silently skips a result, and every
argument is checked before anything starts."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mtlbench import cli
from mtlbench.cli import main
from mtlbench.harness import grid
from mtlbench.harness.results import RunResult, read_result, write_result
from mtlbench.harness.runner import MethodRef, RunRequest, failure_result
from mtlbench.harness.submission import load_submission
from mtlbench.registration import spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "submissions" / "example-loss-softmax"
TINY_OVERRIDES = {"dataset.kwargs.limit": 32, "optimizer.batch_size": 16, "budget.epochs": 1}
TINY = [arg for key, value in TINY_OVERRIDES.items() for arg in ("--override", f"{key}={value}")]


def fabricate(request: RunRequest, **update: object) -> Path:
    """Store a result file for ``request`` without training (status ok, no evaluations)."""
    result = failure_result(request, "ok", "stored by a test")
    method = {k: update.pop(k) for k in list(update) if k in ("code_hash",)}
    if method:
        update["method"] = result.method.model_copy(update=method)
    return write_result(request.path, RunResult.model_validate({**result.model_dump(), **update}))


def copy_example(tmp_path: Path) -> Path:
    folder = tmp_path / "subs" / EXAMPLE.name
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


# ------------------------------------------------------------------------- item 1
def test_submit_writes_only_inside_the_folders_it_was_given(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    readme = repo / "README.md"
    readme.write_text("the repository's own README\n")
    results = repo / "my-results"
    argv = ["submit", str(EXAMPLE), "--envs", "multimnist-hps", "--seeds", "0", "--backend", "inline"]
    argv += ["--results-dir", str(results), *TINY, "--no-progress"]
    assert main(argv) == 0
    assert readme.read_text() == "the repository's own README\n"
    assert sorted(p.name for p in repo.iterdir()) == ["README.md", "my-results"]
    assert (results / "pages" / "index.html").exists()  # the documented default, inside --results-dir
    pages = tmp_path / "my-pages"
    assert main([*argv, "--pages-dir", str(pages)]) == 0  # the run is stored: only the pages are built
    assert sorted(p.name for p in pages.iterdir()) == ["README.md", "index.html", "leaderboard.csv"]


# ------------------------------------------------------------------------- item 2
def test_an_unofficial_run_never_replaces_an_official_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    official = RunRequest("multimnist-hps", MethodRef.builtin("ew"), 0, results_dir=str(tmp_path))
    before = fabricate(official).read_bytes()
    argv = ["run", "--env", "multimnist-hps", "--method", "ew", "--seeds", "0"]
    assert main([*argv, "--results-dir", str(tmp_path), *TINY, "--no-progress"]) == 0
    assert official.path.read_bytes() == before
    (stored,) = tmp_path.glob("multimnist-hps-v2/ew@1+unofficial-*/seed-0.json")
    assert read_result(stored).official is False and read_result(stored).status == "ok"
    out = capsys.readouterr().out
    assert "unofficial runs (--override): stored apart from the official ones" in out


def test_a_stored_result_of_another_spec_hash_is_never_replaced_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = RunRequest(
        "multimnist-hps", MethodRef.builtin("ew"), 0, results_dir=str(tmp_path), overrides=TINY_OVERRIDES
    )
    path = fabricate(request, spec_hash="0123456789abcdef")
    before = path.read_bytes()
    argv = [
        "run",
        "--env",
        "multimnist-hps",
        "--method",
        "ew",
        "--seeds",
        "0",
        "--results-dir",
        str(tmp_path),
    ]
    assert main([*argv, *TINY, "--no-progress"]) == 1
    err = capsys.readouterr().err
    current = spec("multimnist-hps").replace(TINY_OVERRIDES).hash
    assert "spec hash 0123456789abcdef" in err and current in err and "--rerun" in err
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == ["seed-0.json"]
    # --rerun trains it again and keeps the old file beside the new one
    assert main([*argv, *TINY, "--no-progress", "--rerun"]) == 0
    assert (path.parent / "seed-0.json.replaced-1").read_bytes() == before
    assert read_result(path).spec_hash == current


# ------------------------------------------------------------------------- item 3
def test_envs_all_runs_every_registered_env_whose_data_is_present(tmp_path: Path) -> None:
    """In a fresh process (the env registry empty until something imports the envs)."""
    data_root, results = tmp_path / "no-data", tmp_path / "results"
    data_root.mkdir()
    import mtlbench.envs  # noqa: F401
    from mtlbench.data import dataset_module
    from mtlbench.registration import registry

    def present(dataset: str) -> bool:
        verify = dataset_module(dataset).verify
        kwargs = {"name": dataset} if "name" in inspect.signature(verify).parameters else {}
        return not verify(data_root, **kwargs)

    selected = sorted(s.id for s in registry.values() if not s.superseded_by and present(s.dataset.name))
    assert (
        "multimnist-hps-v2" in selected
        and "multimnist-hps-v1" not in selected
        and "nyuv2-hps-v1" not in selected
    )
    method = load_submission(EXAMPLE).method_ref()
    for env in selected:  # stored already: the command must find them, not train them
        fabricate(RunRequest(env, method, 0, results_dir=str(results)))
    argv = [sys.executable, "-m", "mtlbench.cli", "submit", str(EXAMPLE), "--seeds", "0", "--no-progress"]
    argv += ["--results-dir", str(results), "--data-root", str(data_root)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"0 run(s) written, {len(selected)} already stored, 0 failed" in proc.stdout
    assert f"envs: all: running on {', '.join(selected)}" in proc.stdout
    assert "envs: all: skipping nyuv2-hps-v1: dataset 'nyuv2' not found" in proc.stdout
    assert "mtlbench data prepare nyuv2" in proc.stdout


def test_envs_all_selecting_nothing_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_data_problem", lambda *a: "its data is missing (test)")
    assert main(["submit", str(EXAMPLE), "--results-dir", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "envs: all selected no env" in err and not any(tmp_path.iterdir())


# ------------------------------------------------------------------------- item 6
def test_changed_code_at_the_same_version_is_an_error_naming_both_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_example(tmp_path)
    results = tmp_path / "results"
    sub = load_submission(folder)
    request = RunRequest(
        "multimnist-hps", sub.method_ref(), 0, results_dir=str(results), overrides=TINY_OVERRIDES
    )
    path = fabricate(request)
    old_hash = sub.code_hash
    with (folder / "policy.py").open("a") as f:
        f.write("\n# an edit of the method's code, without a version bump\n")
    new_hash = load_submission(folder).code_hash
    assert new_hash != old_hash
    before = path.read_bytes()
    argv = ["submit", str(folder), "--envs", "multimnist-hps", "--seeds", "0", "--backend", "inline"]
    argv += ["--results-dir", str(results), *TINY, "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert old_hash in err and new_hash in err and "Bump `version` in submission.yaml" in err
    assert "--rerun" in err and path.read_bytes() == before
    assert main([*argv, "--rerun"]) == 0
    assert read_result(path).method.code_hash == new_hash and read_result(path).selected is not None
    assert (path.parent / "seed-0.json.replaced-1").read_bytes() == before  # kept, not deleted
    # a seed not stored yet would mix two codes under version 1 when another seed has the old code
    fabricate(dataclasses.replace(request, seed=1), code_hash=old_hash)
    assert main([*argv, "--seeds", "2"]) == 1
    err = capsys.readouterr().err
    assert "seed-1.json: made by code hash" in err and "would mix two codes" in err
    assert not (path.parent / "seed-2.json").exists()


# ------------------------------------------------------------------------- item 9
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--timeout", "-5"], "argument --timeout: must be a finite number of seconds > 0"),
        (["--seeds", "-1"], "argument --seeds: seeds must be >= 0"),
        (["--seeds", "0,0"], "argument --seeds: seeds must be comma-separated integers >= 0 without repeats"),
        (["--workers", "0"], "argument --workers: must be >= 1"),
        (["--threads", "0"], "argument --threads: must be >= 1"),
        (["--override", "budget.epochs"], "argument --override: expected FIELD=VALUE"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["benchmark", "--envs", "multimnist-hps", "--methods", "ew", "--backend", "inline"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--results-dir", str(tmp_path), *TINY, "--no-progress", *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_override_values_of_the_wrong_type_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--env", "multimnist-hps", "--method", "ew", "--results-dir", str(tmp_path)]
    assert main([*argv, "--override", "budget.epochs=ten"]) == 1
    assert "override budget.epochs='ten': expected int" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_failed_run_makes_the_command_exit_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grid, "execute", lambda request, **kw: failure_result(request, "error", "boom"))
    argv = [
        "run",
        "--env",
        "multimnist-hps",
        "--method",
        "ew",
        "--seeds",
        "0",
        "--results-dir",
        str(tmp_path),
    ]
    assert main([*argv, *TINY, "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "1 failed" in captured.out and "FAILED" in captured.out
    assert "1 run(s) did not end ok" in captured.err


# ------------------------------------------------------------------------- item 11
def test_an_unwritable_pages_folder_fails_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    results = tmp_path / "results"
    argv = ["submit", str(EXAMPLE), "--envs", "multimnist-hps", "--seeds", "0", "--backend", "inline"]
    argv += ["--results-dir", str(results), "--pages-dir", str(blocker / "pages"), *TINY, "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot write the leaderboard pages" in err and "--pages-dir" in err
    assert not list(results.rglob("seed-*.json"))


def test_runner_result_files_have_the_mode_of_a_normal_file(tmp_path: Path) -> None:
    argv = [
        "run",
        "--env",
        "multimnist-hps",
        "--method",
        "ew",
        "--seeds",
        "0",
        "--results-dir",
        str(tmp_path),
    ]
    old = os.umask(0o022)
    try:
        assert main([*argv, *TINY, "--no-progress"]) == 0
    finally:
        os.umask(old)
    (path,) = tmp_path.rglob("seed-0.json")
    assert path.stat().st_mode & 0o777 == 0o644
    assert json.loads(path.read_text())["status"] == "ok"

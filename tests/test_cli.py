"""The command line: every command end to end on tiny settings, errors as one readable line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mtlbench.cli import main

TINY = [
    "--override",
    "dataset.kwargs.limit=32",
    "--override",
    "optimizer.batch_size=16",
    "--override",
    "budget.epochs=1",
]


def test_envs_and_methods(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "multimnist-hps-v1" in out and "nyuv2-mtan-v1" in out and "qm9-hps-v1" in out
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "rlw" in out and "nash-mtl" in out and "unavailable" not in out


def test_unknown_env_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--env", "multimnst-hps", "--method", "ew"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Did you mean 'multimnist-hps'" in err
    assert "`mtlbench envs`" in err and "pprint_registry" not in err  # a CLI user gets a CLI command


def test_unknown_method_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--env", "multimnist-hps", "--method", "rlww"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Did you mean 'rlw'" in err and "`mtlbench methods`" in err


def test_bad_override_is_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["run", "--env", "multimnist-hps", "--method", "ew", "--results-dir", str(tmp_path)]
    assert main([*args, "--override", "budget.epoch=1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no field 'budget.epoch'" in err and "Did you mean 'budget.epochs'" in err
    assert not any(tmp_path.iterdir())  # refused before anything started


def test_run_stores_unofficial_results_and_skips_them_on_rerun(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = [
        "run",
        "--env",
        "multimnist-hps",
        "--method",
        "rlw",
        "--seeds",
        "0,1",
        "--results-dir",
        str(tmp_path),
    ]
    assert main([*args, *TINY, "--no-progress"]) == 0
    (folder,) = (tmp_path / "multimnist-hps-v2").iterdir()  # apart from the official rlw@1/
    assert folder.name.startswith("rlw@1+unofficial-")
    files = sorted(folder.glob("seed-*.json"))
    assert [f.name for f in files] == ["seed-0.json", "seed-1.json"]
    assert folder.name == f"rlw@1+unofficial-{json.loads(files[0].read_text())['spec_hash']}"
    data = json.loads(files[0].read_text())
    assert data["status"] == "ok" and data["official"] is False
    assert "2 run(s) written" in capsys.readouterr().out
    assert main([*args, *TINY, "--no-progress"]) == 0
    assert "0 run(s) written, 2 already stored" in capsys.readouterr().out


def test_threads_are_set_and_recorded(tmp_path: Path) -> None:
    args = ["run", "--env", "multimnist-hps", "--method", "ew", "--seeds", "0", "--threads", "1"]
    threads = torch.get_num_threads()
    try:
        assert main([*args, "--results-dir", str(tmp_path), *TINY, "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)  # "run" trains in this process
    (file,) = tmp_path.glob("multimnist-hps-v2/ew@1+unofficial-*/seed-*.json")
    assert json.loads(file.read_text())["environment"]["torch_threads"] == 1


def test_check_and_submit_example(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = Path(__file__).resolve().parents[1] / "submissions" / "example-loss-softmax"
    assert main(["check", str(folder)]) == 0
    results = tmp_path / "results"
    argv = ["submit", str(folder), "--envs", "multimnist-hps", "--seeds", "0", "--backend", "inline"]
    assert main([*argv, "--results-dir", str(results), *TINY, "--no-progress"]) == 0
    assert len(list(results.glob("multimnist-hps-v2/example-loss-softmax@*/seed-0.json"))) == 1
    assert (results / "pages" / "README.md").exists() and (results / "pages" / "index.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # nothing beside the results


def test_check_rejects_a_broken_submission(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "submission.yaml").write_text("name: broken\nlevel: losss\n")
    assert main(["check", str(folder)]) == 1
    out = capsys.readouterr()
    assert "level" in out.out + out.err


def test_leaderboard_build_on_a_missing_or_empty_results_folder_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    results, pages = tmp_path / "results", tmp_path / "pages"
    argv = ["leaderboard", "build", "--results-dir", str(results), "--pages-dir", str(pages)]
    assert main(argv) == 1
    assert "does not exist" in capsys.readouterr().err
    results.mkdir()
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no result files" in err and "nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"] and not any(results.iterdir())


def test_data_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "nyuv2" in out and "multimnist" in out
    assert "office31, officehome\n" in out  # one module serving two datasets: listed once
    assert main(["data", "verify", "multimnist", "--data-root", str(tmp_path)]) == 0
    assert main(["data", "verify", "nyuv2", "--data-root", str(tmp_path)]) == 1
    assert "nyuv2" in capsys.readouterr().out
    assert main(["data", "status", "--data-root", str(tmp_path)]) == 0
    status = capsys.readouterr().out
    assert "multimnist  ok" in status and "nyuv2" in status
    # each dataset's line speaks of that dataset only, also where one module serves two
    lines = {line.split()[0]: line for line in status.splitlines()[1:]}
    assert "officehome" not in lines["office31"] and "office31" not in lines["officehome"]
    assert "udpos" not in lines["pawsx"]


def test_missing_dataset_names_the_prepare_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [
        "run",
        "--env",
        "nyuv2-hps",
        "--method",
        "ew",
        "--data-root",
        str(tmp_path),
        "--results-dir",
        str(tmp_path),
    ]
    assert main(argv) == 1  # fails before any run: no failed result files pollute the leaderboard
    err = capsys.readouterr().err.strip()
    assert "mtlbench data prepare nyuv2" in err and err.count("\n") == 0
    assert not list(tmp_path.rglob("seed-*.json"))

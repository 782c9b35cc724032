"""``mtlbench envs`` and ``mtlbench methods``: tasks, budget, data status; level, reference, paper."""

from __future__ import annotations

from pathlib import Path

import pytest

import mtlbench
from mtlbench import policies
from mtlbench.cli import main
from mtlbench.listing import env_rows, method_rows


def _columns_aligned(text: str, column: str) -> None:
    lines = text.splitlines()
    start = lines[0].index(column)
    rows = [line for line in lines[2:] if line and not line.startswith("data root")]
    assert rows and all(line[start - 2 : start] == "  " and line[start] != " " for line in rows)


def test_envs_lists_tasks_budget_and_data_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cityscapes").mkdir()
    rows = {r.env_id: r for r in env_rows(tmp_path)}
    nyu = mtlbench.spec("nyuv2-hps-v1")
    assert rows["nyuv2-hps-v1"].tasks == nyu.task_names
    assert rows["nyuv2-hps-v1"].budget == f"{nyu.budget.epochs} epochs"
    assert rows["nyuv2-hps-v1"].data == "missing: mtlbench data prepare nyuv2 --source PATH"
    assert rows["pawsx-hps-v1"].data == "missing: mtlbench data prepare pawsx"
    assert rows["cityscapes-hps-v1"].data == "present"
    assert rows["multimnist-hps-v1"].data == "bundled"
    monkeypatch.setenv("MTLBENCH_DATA", str(tmp_path))
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "40: 5_o_Clock_Shadow" in out and "3: segmentation, depth, normal" in out
    for column in ("tasks", "budget", "data"):
        _columns_aligned(out, column)


def test_methods_list_level_reference_paper_and_description(capsys: pytest.CaptureFixture[str]) -> None:
    rows = {r.name: r for r in method_rows()}
    assert set(policies.registry) <= set(rows)
    assert rows["rlw"].reference == rows["rgw"].reference == "(reference)"
    assert (rows["uw"].level, rows["uw"].reference) == ("loss", "rlw")
    assert (rows["cagrad"].level, rows["cagrad"].reference) == ("gradient", "rgw")
    assert rows["rlw+cagrad"].reference == "rgw"
    assert rows["mgda"].paper == "https://arxiv.org/abs/1810.04650"
    assert rows["dualproj"].description.startswith("DualProj")
    assert all(r.description for r in rows.values())
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for column in ("level", "litmus reference", "paper", "description"):
        _columns_aligned(out, column)

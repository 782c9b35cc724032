"""Missing values: "—" on the page and in the tables, empty in the CSV, never ``nan``."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from mtlbench.leaderboard import build_leaderboard
from mtlbench.leaderboard.summary import summary_table
from tests.leaderboard.conftest import ENV_ID, METHODS, write_fixture

N_BOOT = 200
#: one seed each and no EW: every std, delta_p and interval is undefined
NO_EW = {k: (level, values[:1]) for k, (level, values) in METHODS.items() if k != "ew"}


def _no_nan(text: str, where: str) -> None:
    hits = re.findall(r".{0,30}\bnan\b.{0,30}", text, flags=re.IGNORECASE)
    assert hits == [], f"{where}: {hits}"


def test_summary_table_without_ew_prints_no_nan(tmp_path: Path) -> None:
    results = write_fixture(tmp_path / "results", NO_EW)
    table = summary_table(results, ENV_ID, n_boot=N_BOOT, registry=None)
    _no_nan(table, "summary table")
    assert "—" in table  # an undefined delta_p or std is shown as a dash


def test_outputs_without_ew_hold_no_nan(tmp_path: Path) -> None:
    results = write_fixture(tmp_path / "results", NO_EW)
    build_leaderboard(results, tmp_path / "out", n_boot=N_BOOT, registry=None)
    for name in ("README.md", "index.html", "leaderboard.csv"):
        _no_nan((tmp_path / "out" / name).read_text(), name)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "leaderboard.csv").read_text())))
    good = next(r for r in rows if r["name"] == "good")
    assert good["delta_p_mean"] == "" and good["test:left/acc:std"] == ""
    assert good["test:left/acc:mean"] != ""

"""Outputs: byte-for-byte determinism, a self-contained page, and the page in a real browser."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mtlbench.leaderboard import build, build_leaderboard

OUTPUTS = ("README.md", "leaderboard.csv", "index.html")
N_BOOT = 500


def _bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def test_same_results_give_the_same_bytes(
    results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_leaderboard(results_dir, tmp_path / "a", n_boot=N_BOOT, registry=None)
    # a second build, into another folder, discovering the files in a shuffled order
    discover = build._discover

    def shuffled(root: Path) -> list[Path]:
        paths = discover(root)
        random.Random(7).shuffle(paths)
        return paths

    monkeypatch.setattr(build, "_discover", shuffled)
    build_leaderboard(results_dir, tmp_path / "b", n_boot=N_BOOT, registry=None)
    first, second = _bytes(tmp_path / "a"), _bytes(tmp_path / "b")
    for name in OUTPUTS:
        assert first[name] == second[name], name


def test_outputs_hold_no_timestamps_or_paths(results_dir: Path, tmp_path: Path) -> None:
    build_leaderboard(results_dir, tmp_path / "out", n_boot=N_BOOT, seed=5, registry=None)
    outputs = _bytes(tmp_path / "out")
    for name, data in outputs.items():
        text = data.decode()
        assert "2024-01-0" not in text, name  # the result files' created_at
        assert str(tmp_path) not in text, name
    readme = outputs["README.md"].decode()
    assert "n_boot = 500, seed = 5" in readme and "mtlbench version" in readme


def test_page_is_self_contained(results_dir: Path, tmp_path: Path) -> None:
    build_leaderboard(results_dir, tmp_path / "out", n_boot=N_BOOT, registry=None)
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    # nothing fetched from elsewhere (links to the papers are plain links)
    assert not re.search(r'src="(https?:)?//', page) and "<link" not in page
    # one inline script (sorting, filtering), nothing loaded
    assert page.count("<script") == 1 and "<script>" in page and "src=" not in page.split("<script>")[1]
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4  # across envs + three per group
    import base64

    png = base64.b64decode(images[0])
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"matplotlib" not in png
    for verdict in ("pass", "fail", "inconclusive", "insufficient seeds"):
        assert f">{verdict}</span>" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.slow
def test_page_renders_in_headless_chromium(results_dir: Path, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    build_leaderboard(results_dir, tmp_path / "out", n_boot=N_BOOT, registry=None)
    url = (tmp_path / "out" / "index.html").resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "<table" in dom and "good@1" in dom and 'id="exclusions"' in dom
    assert 'class="sort"' in dom  # the script ran: sortable headers
    assert dom.count("<img") == 4
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console

"""Offline and status messages say where to get each dataset and the command that installs it.

Issue 11: CelebA said only "from the CelebA page", PAWS-X failed with a raw ``urlopen
error``, downloads showed no progress, and ``data status`` suggested ``prepare nyuv2``,
which then asked for ``--source``.
"""

from __future__ import annotations

import inspect
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mtlbench.data import DATASETS, dataset_module
from mtlbench.data.base import SOURCES, DownloadFailed, SourceRequired, download
from mtlbench.data.cli import cmd_status

MANUAL = ["nyuv2", "cityscapes", "celeba", "office31", "officehome"]


def _prepare(name: str, root: Path) -> None:
    module = dataset_module(name)
    kwargs = {"name": name} if "name" in inspect.signature(module.prepare).parameters else {}
    module.prepare(root, None, **kwargs)


def test_every_dataset_has_a_source() -> None:
    for name in DATASETS:
        dataset_module(name)
    assert set(SOURCES) == set(DATASETS)
    for source in SOURCES.values():
        assert source.url.startswith("https://")


@pytest.mark.parametrize("name", MANUAL)
def test_prepare_without_source_names_the_url_and_the_command(name: str, tmp_path: Path) -> None:
    with pytest.raises(SourceRequired) as info:
        _prepare(name, tmp_path)
    message = str(info.value)
    assert SOURCES[name].url in message
    assert f"mtlbench data prepare {name} --source PATH" in message


@pytest.mark.parametrize("name", ["pawsx", "udpos"])
def test_offline_download_says_how_to_install_without_network(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DownloadFailed) as info:
        _prepare(name, tmp_path)
    message = str(info.value)
    assert SOURCES[name].url in message and "name resolution" in message
    assert f"mtlbench data prepare {name} --source PATH" in message
    assert not (tmp_path / f"{name}.download").exists()  # nothing left behind


def test_download_shows_a_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    origin = tmp_path / "archive.bin"
    origin.write_bytes(payload)
    dest = tmp_path / "out" / "archive.bin"
    download(origin.as_uri(), dest)
    assert dest.read_bytes() == payload and not dest.with_name("archive.bin.part").exists()
    err = capsys.readouterr().err
    assert "archive.bin" in err and "100%" in err


def test_status_suggests_the_command_that_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_status(str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "to install: mtlbench data prepare nyuv2 --source PATH" in out
    assert SOURCES["nyuv2"].url in out and SOURCES["celeba"].url in out
    assert "to install: mtlbench data prepare pawsx\n" in out  # downloads by itself

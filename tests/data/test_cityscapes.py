"""CityScapes loader on tiny fixtures written in the MTAN ``.npy`` layout (tests/data/dense_fixtures.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlbench.data import cityscapes
from mtlbench.data.base import DatasetCorrupt, DatasetNotFound, ids_sha256
from mtlbench.data.mtan_layout import split_ids


def _fixtures():
    name = "mtlbench_tests_dense_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("dense_fixtures.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fx = _fixtures()
VAL = [0, 5]


@pytest.mark.parametrize("label_folder", ["label_7", "label"])
def test_load_shapes_splits_and_manifest(tmp_path: Path, label_folder: str) -> None:
    fx.write_cityscapes(tmp_path, label_folder=label_folder)  # 6 train + 3 test at 32x64
    splits = cityscapes.load(tmp_path, val_ids=VAL)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (4, 2, 3)
    x, y = splits.test[2]
    assert x.shape == (3, 32, 64) and x.dtype == torch.float32
    assert set(y) == {"segmentation", "depth"}
    assert y["segmentation"].shape == (32, 64) and y["segmentation"].dtype == torch.int64
    assert int(y["segmentation"].min()) >= -1 and int(y["segmentation"].max()) <= 6
    assert y["depth"].shape == (1, 32, 64)
    assert splits.manifest["val"] == ids_sha256(["train/0", "train/5"])
    assert splits.manifest["test"] == ids_sha256(["val/0", "val/1", "val/2"])


def test_label_7_is_preferred_over_label(tmp_path: Path) -> None:
    fx.write_cityscapes(tmp_path, label_folder="label_7")
    label = tmp_path / "cityscapes" / "train" / "label"
    label.mkdir()
    for i in range(6):
        np.save(label / f"{i}.npy", np.full((32, 64), 3.0, dtype=np.float32))
    x, y = cityscapes.load(tmp_path, val_ids=VAL).train[0]
    expected = np.load(tmp_path / "cityscapes" / "train" / "label_7" / "1.npy")
    assert torch.equal(y["segmentation"], torch.from_numpy(expected.astype(np.int64)))


def test_published_ids_match_the_env_spec() -> None:
    import mtlbench

    ids = cityscapes.VAL_IDS
    assert len(ids) == 375 and len(set(ids)) == 375 and list(ids) == sorted(ids)
    assert 0 <= min(ids) and max(ids) < 2975
    lists = split_ids(cityscapes.LAYOUT, cityscapes.LAYOUT.upstream_counts)
    assert (
        {k: len(v) for k, v in lists.items()}
        == cityscapes.SPLIT_SIZES
        == {"train": 2600, "val": 375, "test": 500}
    )
    assert {k: ids_sha256(v) for k, v in lists.items()} == cityscapes.SPLIT_SHA256
    dataset = mtlbench.spec("cityscapes-hps-v1").dataset
    assert dict(dataset.split_manifest_sha256) == cityscapes.SPLIT_SHA256
    assert dict(dataset.split_sizes) == cityscapes.SPLIT_SIZES


def test_missing_dataset_names_the_prepare_command(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match="mtlbench data prepare cityscapes"):
        cityscapes.load(tmp_path)
    assert "mtlbench data prepare cityscapes" in cityscapes.verify(tmp_path)[0]


def test_truncated_npy_names_the_file(tmp_path: Path) -> None:
    fx.write_cityscapes(tmp_path)
    path = tmp_path / "cityscapes" / "train" / "image" / "3.npy"
    fx.truncate(path)
    with pytest.raises(DatasetCorrupt, match="truncated") as err:
        cityscapes.load(tmp_path, val_ids=VAL)
    assert str(path) in str(err.value)
    assert any(str(path) in p for p in cityscapes.verify(tmp_path))


def test_verify_reports_counts_and_size(tmp_path: Path) -> None:
    fx.write_cityscapes(tmp_path)
    text = "\n".join(cityscapes.verify(tmp_path))
    assert "2975" in text and "500" in text and "128x256" in text


def test_prepare_without_source_explains_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MTAN-preprocessed CityScapes"):
        cityscapes.prepare(tmp_path)

"""NYUv2 loader on tiny fixtures written in the MTAN ``.npy`` layout (tests/data/dense_fixtures.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlbench.data import load_dataset, nyuv2
from mtlbench.data.base import DatasetCorrupt, DatasetNotFound, ids_sha256


def _fixtures():
    name = "mtlbench_tests_dense_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("dense_fixtures.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fx = _fixtures()
VAL = [1, 4]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    fx.write_nyuv2(tmp_path)  # 6 train + 3 test at 32x48
    return tmp_path


def test_load_shapes_splits_and_manifest(root: Path) -> None:
    splits = nyuv2.load(root, val_ids=VAL)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (4, 2, 3)
    x, y = splits.train[0]
    assert x.shape == (3, 32, 48) and x.dtype == torch.float32
    assert set(y) == {"segmentation", "depth", "normal"}
    assert y["segmentation"].shape == (32, 48) and y["segmentation"].dtype == torch.int64
    assert int(y["segmentation"].min()) >= -1 and int(y["segmentation"].max()) <= 12
    assert y["depth"].shape == (1, 32, 48) and y["normal"].shape == (3, 32, 48)
    # the item is the file, moved to CHW
    image = np.load(root / "nyuv2" / "train" / "image" / "0.npy")
    assert torch.equal(x, torch.from_numpy(np.moveaxis(image, -1, 0)))
    assert splits.manifest == {
        "train": ids_sha256(["train/0", "train/2", "train/3", "train/5"]),
        "val": ids_sha256(["train/1", "train/4"]),
        "test": ids_sha256(["val/0", "val/1", "val/2"]),
    }
    assert splits.info["image_size"] == (32, 48)


def test_batches_through_the_dataloader(root: Path) -> None:
    splits = load_dataset("nyuv2", str(root), val_ids=VAL)
    batches = list(
        splits.train.batches(
            3,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
            drop_last=False,
            device=torch.device("cpu"),
        )
    )
    assert [b[0].shape[0] for b in batches] == [3, 1]
    x, y = batches[0]
    assert x.shape == (3, 3, 32, 48) and y["segmentation"].shape == (3, 32, 48)
    assert y["depth"].shape == (3, 1, 32, 48) and y["normal"].shape == (3, 3, 32, 48)


def test_limit_keeps_the_first_ids(root: Path) -> None:
    splits = nyuv2.load(root, val_ids=VAL, limit=2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (2, 2, 2)
    assert splits.manifest["train"] == ids_sha256(["train/0", "train/2"])


def test_published_split_path_on_a_small_layout(root: Path) -> None:
    """The val_ids=None path (counts and hashes checked) on a layout scaled to the fixture."""
    counts = {"train": 6, "val": 3}
    ids = nyuv2.split_ids(dataclasses.replace(nyuv2.LAYOUT, val_ids=(1, 4)), counts)
    layout = dataclasses.replace(
        nyuv2.LAYOUT,
        upstream_counts=counts,
        val_ids=(1, 4),
        split_sha256={k: ids_sha256(v) for k, v in ids.items()},
    )
    splits = nyuv2.load_layout(layout, root)
    assert splits.manifest == dict(layout.split_sha256)
    bad = dataclasses.replace(layout, split_sha256={**layout.split_sha256, "val": "0" * 64})
    with pytest.raises(DatasetCorrupt, match="id list hash"):
        nyuv2.load_layout(bad, root)


def test_published_ids_match_the_env_spec() -> None:
    import mtlbench

    ids = nyuv2.VAL_IDS
    assert len(ids) == 95 and len(set(ids)) == 95 and list(ids) == sorted(ids)
    assert 0 <= min(ids) and max(ids) < 795
    lists = nyuv2.split_ids(nyuv2.LAYOUT, nyuv2.LAYOUT.upstream_counts)
    assert (
        {k: len(v) for k, v in lists.items()} == nyuv2.SPLIT_SIZES == {"train": 700, "val": 95, "test": 654}
    )
    assert {k: ids_sha256(v) for k, v in lists.items()} == nyuv2.SPLIT_SHA256
    assert not set(lists["train"]) & set(lists["val"])
    for arch in ("hps", "cross_stitch", "mtan", "nddr"):
        dataset = mtlbench.spec(f"nyuv2-{arch}-v1").dataset
        assert dict(dataset.split_manifest_sha256) == nyuv2.SPLIT_SHA256
        assert dict(dataset.split_sizes) == nyuv2.SPLIT_SIZES


def test_official_load_needs_the_published_counts(root: Path) -> None:
    with pytest.raises(DatasetCorrupt, match="val_ids"):
        nyuv2.load(root)


def test_missing_dataset_names_the_prepare_command(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match="mtlbench data prepare nyuv2"):
        nyuv2.load(tmp_path)


def test_missing_field_folder_is_not_found(root: Path) -> None:
    for f in (root / "nyuv2" / "val" / "normal").iterdir():
        f.unlink()
    (root / "nyuv2" / "val" / "normal").rmdir()
    with pytest.raises(DatasetNotFound, match="normal"):
        nyuv2.load(root, val_ids=VAL)


def test_truncated_npy_names_the_file(root: Path) -> None:
    path = root / "nyuv2" / "val" / "depth" / "2.npy"
    fx.truncate(path)
    with pytest.raises(DatasetCorrupt, match="truncated") as err:
        nyuv2.load(root, val_ids=VAL)
    assert str(path) in str(err.value)


def test_garbage_file_and_wrong_shape_are_corrupt(root: Path) -> None:
    garbage = root / "nyuv2" / "train" / "label" / "3.npy"
    garbage.write_bytes(b"not a numpy file at all")
    with pytest.raises(DatasetCorrupt, match=r"3\.npy"):
        nyuv2.load(root, val_ids=VAL)
    np.save(garbage, np.zeros((32, 48, 1), dtype=np.float32))
    with pytest.raises(DatasetCorrupt, match="expected"):
        nyuv2.load(root, val_ids=VAL)


def test_missing_sample_file_is_corrupt(root: Path) -> None:
    (root / "nyuv2" / "train" / "depth" / "2.npy").unlink()
    with pytest.raises(DatasetCorrupt, match="depth"):
        nyuv2.load(root, val_ids=VAL)


def test_bad_arguments(root: Path) -> None:
    with pytest.raises(TypeError, match="unknown arguments"):
        nyuv2.load(root, val_ids=VAL, shuffle=True)
    with pytest.raises(ValueError, match="outside"):
        nyuv2.load(root, val_ids=[0, 6])
    with pytest.raises(ValueError, match="limit"):
        nyuv2.load(root, val_ids=VAL, limit=0)


def test_verify_reports_problems(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    problems = nyuv2.verify(root)
    text = "\n".join(problems)
    assert "795" in text and "654" in text and "288x384" in text
    bad = root / "nyuv2" / "train" / "normal" / "0.npy"
    fx.truncate(bad)
    label = root / "nyuv2" / "val" / "label" / "1.npy"
    np.save(label, np.full((32, 48), 13.0, dtype=np.float32))
    text = "\n".join(nyuv2.verify(root))
    assert str(bad) in text and str(label) in text
    missing = nyuv2.verify(tmp_path_factory.mktemp("empty"))
    assert len(missing) == 1 and "mtlbench data prepare nyuv2" in missing[0]


def test_augmentation_keeps_shapes_and_labels(root: Path) -> None:
    splits = nyuv2.load(root, val_ids=VAL, augment=True)
    torch.manual_seed(0)
    for i in range(len(splits.train)):
        x, y = splits.train[i]
        assert x.shape == (3, 32, 48) and y["depth"].shape == (1, 32, 48) and y["normal"].shape == (3, 32, 48)
        assert y["segmentation"].dtype == torch.int64
        assert set(y["segmentation"].unique().tolist()) <= set(range(-1, 13))
    # only the training split is augmented
    assert not splits.val.augment and not splits.test.augment


def test_prepare_without_source_explains_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dropbox"):
        nyuv2.prepare(tmp_path)


def test_prepare_rejects_a_partial_source(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    dest = tmp_path_factory.mktemp("dest")
    with pytest.raises(DatasetCorrupt, match="expected 795"):
        nyuv2.prepare(dest, source=root / "nyuv2")
    assert not (dest / "nyuv2").exists() and not list(dest.iterdir())


@pytest.mark.slow
def test_full_size_counts_load_and_prepare(tmp_path: Path) -> None:
    """795 + 654 samples at 4x4: the published splits, and a checked copy by ``prepare``."""
    source = tmp_path / "download"
    fx.write_nyuv2(source, n_train=795, n_test=654, size=(4, 4))
    dest = tmp_path / "root"
    nyuv2.prepare(dest, source=source)  # the parent of nyuv2/ is accepted
    splits = nyuv2.load(dest)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (700, 95, 654)
    assert splits.manifest == nyuv2.SPLIT_SHA256
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]
    nyuv2.prepare(dest)  # already prepared: a no-op
    with pytest.raises(FileExistsError):
        nyuv2.prepare(dest, source=source / "nyuv2")

"""CelebA loader: torchvision layout, official partition, 40 binary targets, clear errors."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from mtlbench.data import DatasetCorrupt, DatasetNotFound, celeba, ids_sha256, load_dataset
from tests.data.vision_fixtures import read_celeba_targets, truncate, write_celeba

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("celeba")
    write_celeba(r, {"train": 6, "val": 3, "test": 3})
    return r


def _copy(root: Path, tmp_path: Path) -> Path:
    shutil.copytree(root / "celeba", tmp_path / "celeba")
    return tmp_path


def test_loads_the_official_partition_and_targets(root: Path) -> None:
    splits = load_dataset("celeba", str(root), image_size=16, check_manifest=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 3, 3)
    expected = read_celeba_targets(root / "celeba")
    x, y = next(splits.val.batches(3, shuffle=False, generator=None, drop_last=False, device=CPU))
    assert x.shape == (3, 3, 16, 16) and x.dtype == torch.float32
    assert tuple(y) == celeba.ATTRIBUTES
    for j, attr in enumerate(celeba.ATTRIBUTES):
        assert y[attr].dtype == torch.long
        assert y[attr].tolist() == [expected[f"{i:06d}.jpg"][j] for i in (7, 8, 9)]
    assert splits.manifest["val"] == ids_sha256(["000007.jpg", "000008.jpg", "000009.jpg"])


def test_item_matches_batches(root: Path) -> None:
    ds = load_dataset("celeba", str(root), image_size=16, check_manifest=False).train
    x, y = ds[2]
    xb, yb = next(ds.batches(6, shuffle=False, generator=None, drop_last=False, device=CPU))
    assert torch.equal(x, xb[2])
    assert all(int(y[a]) == int(yb[a][2]) for a in celeba.ATTRIBUTES)


def test_order_depends_on_the_generator_only(root: Path) -> None:
    ds = load_dataset("celeba", str(root), image_size=8, check_manifest=False).train

    def order(seed: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(seed)
        return [
            y["Male"].tolist() + y["Young"].tolist()
            for _, y in ds.batches(2, shuffle=True, generator=g, drop_last=False, device=CPU)
        ]

    assert order(3) == order(3)


def test_published_split_hashes_are_the_contiguous_official_ranges() -> None:
    ranges = {"train": (1, 162_770), "val": (162_771, 182_637), "test": (182_638, 202_599)}
    for split, (a, b) in ranges.items():
        assert b - a + 1 == celeba.SPLIT_SIZES[split]
        assert ids_sha256([f"{i:06d}.jpg" for i in range(a, b + 1)]) == celeba.SPLIT_SHA256[split]


def test_missing_dataset_is_reported_first(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match=r"mtlbench data prepare celeba"):
        load_dataset("celeba", str(tmp_path))


def test_missing_partition_file_is_named(root: Path, tmp_path: Path) -> None:
    r = _copy(root, tmp_path)
    (r / "celeba" / "list_eval_partition.txt").unlink()
    with pytest.raises(DatasetNotFound, match=r"list_eval_partition.txt"):
        load_dataset("celeba", str(r), check_manifest=False)


def test_official_checksums_are_checked_by_default(root: Path) -> None:
    with pytest.raises(DatasetCorrupt, match=r"list_attr_celeba.txt.*MD5"):
        load_dataset("celeba", str(root))


def test_truncated_attribute_file_is_named(root: Path, tmp_path: Path) -> None:
    r = _copy(root, tmp_path)
    attr = r / "celeba" / "list_attr_celeba.txt"
    attr.write_text("\n".join(attr.read_text().splitlines()[:-2]) + "\n")
    with pytest.raises(DatasetCorrupt, match=r"list_attr_celeba.txt.*truncated"):
        load_dataset("celeba", str(r), check_manifest=False)


def test_bad_attribute_line_is_named(root: Path, tmp_path: Path) -> None:
    r = _copy(root, tmp_path)
    attr = r / "celeba" / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0] + " 0"
    attr.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetCorrupt, match=r"list_attr_celeba.txt:5"):
        load_dataset("celeba", str(r), check_manifest=False)


def test_truncated_image_raises_when_read_and_verify_lists_it(root: Path, tmp_path: Path) -> None:
    r = _copy(root, tmp_path)
    truncate(r / "celeba" / "img_align_celeba" / "000011.jpg")
    splits = load_dataset("celeba", str(r), image_size=8, check_manifest=False)
    with pytest.raises(DatasetCorrupt, match=r"000011.jpg"):
        list(splits.test.batches(3, shuffle=False, generator=None, drop_last=False, device=CPU))
    # verify() checks the official checksums first, so it reports those on a fixture
    assert any("MD5" in p for p in celeba.verify(r))


def test_prepare_installs_a_download(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "download"
    (source / "Anno").mkdir(parents=True)
    (source / "Eval").mkdir()
    (source / "Img").mkdir()
    shutil.copy(root / "celeba" / "list_attr_celeba.txt", source / "Anno")
    shutil.copy(root / "celeba" / "list_eval_partition.txt", source / "Eval")
    with zipfile.ZipFile(source / "Img" / "img_align_celeba.zip", "w") as zf:
        for img in sorted((root / "celeba" / "img_align_celeba").iterdir()):
            zf.write(img, f"img_align_celeba/{img.name}")
    # the fixture's annotation files are not the official ones: accept their checksums
    monkeypatch.setattr(celeba, "FILE_MD5", {f: celeba._md5(root / "celeba" / f) for f in celeba.FILE_MD5})
    monkeypatch.setattr(
        celeba, "SPLIT_SHA256", load_dataset("celeba", str(root), check_manifest=False).manifest
    )
    target = tmp_path / "data"
    celeba.prepare(target, source)
    assert celeba.verify(target, decode_images=True) == []
    assert len(load_dataset("celeba", str(target)).train) == 6
    with pytest.raises(ValueError, match=r"cannot be downloaded automatically"):
        celeba.prepare(target, None)

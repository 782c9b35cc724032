"""Office-31 / Office-Home loader, the split rule, and the multi-input batching contract."""

from __future__ import annotations

import re
import shutil
import tarfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import torch

from mtlbench.data import DatasetCorrupt, DatasetNotFound, load_dataset, office
from mtlbench.data.base import ids_sha256
from mtlbench.data.multi_input import MultiInputDataset, TensorPart
from tests.data.vision_fixtures import truncate, write_office, write_office_release

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("office")
    write_office(r, "office31", per_class={"amazon": 8, "dslr": 5, "webcam": 3})
    write_office(
        r,
        "officehome",
        classes=("Alarm_Clock", "Bike"),
        per_class=4,
        domain_folders={"Real_World": "Real World"},  # the release's folder name
    )
    return r


def _load(root: Path, name: str = "office31", **kw: object) -> object:
    kw.setdefault("split_lists", "rule-v1")
    return load_dataset(name, str(root), image_size=8, check_manifest=False, **kw)


# ------------------------------------------------------------- the paper's split (shipped)
@pytest.mark.parametrize("name", ["office31", "officehome"])
def test_shipped_paper_split_names_every_image_once_stratified(name: str) -> None:
    info = office.DATASETS[name]
    ids = office.read_split_lists(name)
    assert {s: ids_sha256(v) for s, v in ids.items()} == office.SPLIT_SHA256[name]
    listed = [i for v in ids.values() for i in v]
    assert len(listed) == len(set(listed)) == sum(info.counts.values())
    for domain in info.domains:
        numbers: dict[str, list[int]] = defaultdict(list)
        per_split: dict[str, set[str]] = {}
        for split, v in ids.items():
            mine = [i for i in v if i.split("/", 1)[0] == domain]
            per_split[split] = {i.split("/")[-2] for i in mine}
            for i in mine:
                numbers[i.split("/")[-2]].append(int(re.findall(r"\d+", i.rsplit("/", 1)[1])[0]))
            share = len(mine) / info.counts[domain]
            assert (0.55 <= share <= 0.65) if split == "train" else (0.15 <= share <= 0.25), (domain, split)
        assert len(numbers) == info.num_classes
        # the release numbers each class's images 1..n: the lists name each exactly once
        assert all(sorted(n) == list(range(1, len(n) + 1)) for n in numbers.values()), domain
        assert all(len(classes) == info.num_classes for classes in per_split.values())  # stratified
        assert sum(len(n) for n in numbers.values()) == info.counts[domain]


def test_the_official_release_loads_with_the_paper_split(tmp_path: Path) -> None:
    write_office_release(tmp_path, "office31")  # 4,110 tiny images, the release's layout
    splits = load_dataset("office31", str(tmp_path), image_size=8)  # official checks on
    assert splits.info["split"] == "paper"
    assert splits.manifest == office.SPLIT_SHA256["office31"]
    assert splits.info["split_sizes"] == {
        "train": {"amazon": 1680, "dslr": 287, "webcam": 466},
        "val": {"amazon": 552, "dslr": 89, "webcam": 149},
        "test": {"amazon": 585, "dslr": 122, "webcam": 180},
    }
    # an image the lists name is missing: the error names the list and line
    (tmp_path / "office31" / "dslr" / "images" / "mug" / "frame_0001.jpg").unlink()
    with pytest.raises(DatasetCorrupt, match=r"497 images, the release has 498"):
        load_dataset("office31", str(tmp_path), image_size=8)
    with pytest.raises(
        DatasetCorrupt, match=r"dslr_\w+\.txt:\d+.*dslr/images/mug/frame_0001.jpg is not an image"
    ):
        load_dataset("office31", str(tmp_path), image_size=8, check_manifest=False)


# ----------------------------------------------------------------------------- the rule
def test_split_rule_is_per_domain_and_class_60_20_20(root: Path) -> None:
    splits = _load(root)
    # (n + 2) // 5 images per class to val and to test: 8 -> 2/2/4, 5 -> 1/1/3, 3 -> 1/1/1
    assert splits.info["split_sizes"] == {
        "train": {"amazon": 12, "dslr": 9, "webcam": 3},
        "val": {"amazon": 6, "dslr": 3, "webcam": 3},
        "test": {"amazon": 6, "dslr": 3, "webcam": 3},
    }
    ids = {s: set(v) for s, v in office.split_rule("office31", office._scan(root, "office31")).items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    assert len(ids["train"] | ids["val"] | ids["test"]) == 3 * (8 + 5 + 3)
    assert all(i.startswith(("amazon/images/", "dslr/images/", "webcam/images/")) for i in ids["val"])


def test_split_rule_is_deterministic_and_local(root: Path, tmp_path: Path) -> None:
    a = office.split_rule("office31", office._scan(root, "office31"))
    assert a == office.split_rule("office31", office._scan(root, "office31"))
    # removing one class leaves the other classes' assignment unchanged
    shutil.copytree(root / "office31", tmp_path / "office31")
    for d in ("amazon", "dslr", "webcam"):
        shutil.rmtree(tmp_path / "office31" / d / "images" / "mug")
    b = office.split_rule("office31", office._scan(tmp_path, "office31"))
    for split in a:
        assert [i for i in a[split] if "/mug/" not in i] == b[split]


def test_labels_follow_sorted_class_folders(root: Path) -> None:
    splits = _load(root)
    assert splits.info["classes"] == ["back_pack", "bike", "mug"]
    ds = splits.train
    part = ds.parts["amazon"]
    for path, label in zip(part.paths, part.labels.tolist()):
        assert Path(path).parent.name == splits.info["classes"][label]


def test_officehome_reads_the_release_real_world_folder(root: Path) -> None:
    splits = _load(root, "officehome")
    assert tuple(splits.train.parts) == ("Art", "Clipart", "Product", "Real_World")
    assert any("Real World" in p for p in splits.test.parts["Real_World"].paths)


def test_libmtl_split_lists(root: Path, tmp_path: Path) -> None:
    rule = office.split_rule("office31", office._scan(root, "office31"))
    for domain in ("amazon", "dslr", "webcam"):
        for split in ("train", "val", "test"):
            lines = [f"{i} 0" for i in rule[split] if i.startswith(domain + "/")]
            (tmp_path / f"{domain}_{split}.txt").write_text("\n".join(lines) + "\n")
    splits = _load(root, split_lists=str(tmp_path))
    assert splits.manifest == _load(root).manifest
    with pytest.raises(ValueError, match=r"split_lists must be 'paper'.*'papr' is none"):
        _load(root, split_lists="papr")
    (tmp_path / "dslr_test.txt").write_text("dslr/images/mug/frame_0099.jpg 2\n")
    with pytest.raises(DatasetCorrupt, match=r"dslr_test.txt:1"):
        _load(root, split_lists=str(tmp_path))
    (tmp_path / "dslr_test.txt").write_text(f"{rule['train'][0]} 0\n")  # also in amazon_train
    with pytest.raises(DatasetCorrupt, match=r"dslr_test.txt:1.*listed already, at .*amazon_train.txt:1"):
        _load(root, split_lists=str(tmp_path))


# ----------------------------------------------------------------------- multi-input batches
def _toy(sizes: dict[str, int]) -> MultiInputDataset:
    return MultiInputDataset(
        {t: TensorPart(torch.arange(n).float()[:, None], torch.arange(n)) for t, n in sizes.items()}
    )


def test_training_epoch_follows_the_largest_task_and_cycles_the_others() -> None:
    ds = _toy({"a": 10, "b": 3})
    g = torch.Generator().manual_seed(0)
    batches = list(ds.batches(4, shuffle=True, generator=g, drop_last=False, device=CPU))
    assert len(batches) == ds.num_batches(4, drop_last=False) == 3
    assert all(y["a"].shape == (4,) and y["b"].shape == (4,) for _, y in batches)  # always full
    seen_a = torch.cat([y["a"] for _, y in batches]).tolist()
    assert set(seen_a) == set(range(10))  # the largest task covers every sample
    seen_b = Counter(torch.cat([y["b"] for _, y in batches]).tolist())
    assert set(seen_b) == {0, 1, 2} and max(seen_b.values()) - min(seen_b.values()) <= 1
    assert len(list(ds.batches(4, shuffle=True, generator=g, drop_last=True, device=CPU))) == 2
    small = _toy({"a": 3, "b": 2})  # every task smaller than a batch: still one (full) step
    (only,) = small.batches(4, shuffle=True, generator=g, drop_last=True, device=CPU)
    assert only[1]["a"].shape == (4,) and only[1]["b"].shape == (4,)


def test_training_order_depends_on_the_generator_only() -> None:
    ds = _toy({"a": 7, "b": 5, "c": 2})

    def order(seed: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(seed)
        return [
            [i for t in "abc" for i in y[t].tolist()]
            for _, y in ds.batches(3, shuffle=True, generator=g, drop_last=False, device=CPU)
        ]

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_evaluation_sees_every_sample_exactly_once() -> None:
    ds = _toy({"a": 5, "b": 2})
    batches = list(ds.batches(2, shuffle=False, generator=None, drop_last=False, device=CPU))
    assert len(batches) == 3
    assert torch.cat([y["a"] for _, y in batches]).tolist() == list(range(5))
    assert torch.cat([y["b"] for _, y in batches]).tolist() == [0, 1]
    x, y = batches[-1]
    assert x["b"].shape == (0, 1) and y["b"].shape == (0,)  # exhausted task: empty sub-batch


def test_images_are_normalised_tensors(root: Path) -> None:
    splits = _load(root)
    x, y = next(splits.test.batches(2, shuffle=False, generator=None, drop_last=False, device=CPU))
    assert set(x) == {"amazon", "dslr", "webcam"}
    assert x["amazon"].shape == (2, 3, 8, 8) and y["amazon"].dtype == torch.long
    assert x["amazon"].min() < 0  # ImageNet normalisation


@pytest.mark.slow
def test_worker_processes_give_the_same_batches(root: Path) -> None:
    ds = _load(root).train

    def run(workers: int) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(5)
        return [
            x["dslr"]
            for x, _ in ds.batches(
                4, shuffle=True, generator=g, drop_last=False, device=CPU, num_workers=workers
            )
        ]

    assert all(torch.equal(a, b) for a, b in zip(run(0), run(2), strict=True))


# ----------------------------------------------------------------------------- errors
def test_missing_dataset_and_missing_domain(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match=r"mtlbench data prepare office31"):
        load_dataset("office31", str(tmp_path))
    shutil.copytree(root / "office31", tmp_path / "office31")
    shutil.rmtree(tmp_path / "office31" / "webcam")
    with pytest.raises(DatasetNotFound, match=r"office31/webcam"):
        load_dataset("office31", str(tmp_path))


def test_official_counts_are_checked_by_default(root: Path) -> None:
    with pytest.raises(DatasetCorrupt, match=r"class folders, the release has 31"):
        load_dataset("office31", str(root))


def test_class_folders_must_agree_across_domains(root: Path, tmp_path: Path) -> None:
    shutil.copytree(root / "office31", tmp_path / "office31")
    shutil.rmtree(tmp_path / "office31" / "dslr" / "images" / "bike")
    with pytest.raises(DatasetCorrupt, match=r"office31/dslr.*class folders differ"):
        _load(tmp_path)


def test_truncated_image_is_named(root: Path, tmp_path: Path) -> None:
    shutil.copytree(root / "office31", tmp_path / "office31")
    splits = _load(tmp_path)
    bad = Path(splits.val.parts["webcam"].paths[0])
    truncate(bad)
    with pytest.raises(DatasetCorrupt, match=bad.name):
        list(splits.val.batches(8, shuffle=False, generator=None, drop_last=False, device=CPU))
    assert office.verify(tmp_path, name="office31")  # official counts differ on a fixture


def test_prepare_installs_an_archive(root: Path, tmp_path: Path) -> None:
    archive = tmp_path / "domain_adaptation_images.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for d in ("amazon", "dslr", "webcam"):
            tf.add(root / "office31" / d, arcname=d)
    target = tmp_path / "data"
    with pytest.raises(DatasetCorrupt):  # verify() at the end: a fixture is not the release
        office.prepare(target, archive)
    assert _load(target).manifest == _load(root).manifest
    with pytest.raises(ValueError, match=r"cannot be downloaded automatically"):
        office.prepare(target, None)

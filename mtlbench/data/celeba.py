"""CelebA: 40 binary face attributes as 40 tasks (Liu et al., ICCV 2015).

On-disk format: torchvision's ``CelebA`` layout under the data root::

    celeba/img_align_celeba/000001.jpg ... 202599.jpg    aligned & cropped faces, 178x218
    celeba/list_attr_celeba.txt                          line 1: 202599; line 2: the 40
                                                         attribute names; then one line per
                                                         image: file name and 40 values in
                                                         {-1, 1}, space separated
    celeba/list_eval_partition.txt                       file name and 0 / 1 / 2 (train /
                                                         val / test) per line

Tasks: one per attribute, named as in the file (``5_o_Clock_Shadow`` ... ``Young``), target
1 where the attribute is present and 0 otherwise (Lin et al., TMLR 2022, Appendix D.2: a
two-way head and cross-entropy per attribute).

Splits: the official partition, 162,770 / 19,867 / 19,962 images (files 000001-162770,
162771-182637, 182638-202599). Each split's id list is the sorted file names; their
SHA-256 (:data:`SPLIT_SHA256`) and the MD5 of the two annotation files (the ones
torchvision checks) are verified on load unless ``check_manifest=False``.

Images are decoded lazily (use DataLoader workers: ``make(..., num_workers=8)``), resized
to ``image_size`` x ``image_size`` (64 in the paper) with bilinear filtering, scaled to
[0, 1] and normalised with the ImageNet mean and standard deviation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mtlbench.data.base import (
    Batch,
    DatasetCorrupt,
    DatasetNotFound,
    MTLDataset,
    Source,
    SourceRequired,
    Splits,
    ids_sha256,
    move_to,
    register_source,
)
from mtlbench.data.multi_input import read_image

__all__ = [
    "ATTRIBUTES",
    "DESCRIPTION",
    "NAME",
    "SPLIT_SHA256",
    "SPLIT_SIZES",
    "CelebASplit",
    "load",
    "prepare",
    "verify",
]

NAME = "celeba"
REVISION = "celeba-img_align_celeba/official-partition"
DESCRIPTION = (
    "CelebA (Liu et al. 2015): 202,599 aligned face images, 40 binary attributes as 40 tasks; "
    "official partition 162,770 / 19,867 / 19,962. Torchvision layout under <root>/celeba/. "
    "Not redistributable: `mtlbench data prepare celeba --source <download>` installs a download."
)
ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)  # fmt: skip
SPLITS = ("train", "val", "test")
SPLIT_SIZES = {"train": 162_770, "val": 19_867, "test": 19_962}
#: SHA-256 of each split's sorted file-name list (see ``mtlbench.data.base.ids_sha256``)
SPLIT_SHA256 = {
    "train": "ab33facd0770a5ef98af8c0d5a3e083b5a703fac4ffbc7b0a4d5f3531dc77b17",
    "val": "6aef4696b3f828113cc09961f83c94363c29c2dfcbf231a23c98cfde14dc1301",
    "test": "ef5746525fa4a9b2c77f8617e6f00e4584dc21ae79d8fabe3195807b15feac47",
}
#: MD5 of the annotation files of the official release (as checked by torchvision)
FILE_MD5 = {
    "list_attr_celeba.txt": "75e246fa4810816ffd6ee81facbd244c",
    "list_eval_partition.txt": "d32c9cbf5e040fd4025c592c306e6668",
}
ATTR_FILE, PARTITION_FILE, IMAGE_DIR = "list_attr_celeba.txt", "list_eval_partition.txt", "img_align_celeba"

log = logging.getLogger(__name__)

register_source(
    Source(
        name=NAME,
        url="https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
        files="Img/img_align_celeba.zip, Anno/list_attr_celeba.txt and Eval/list_eval_partition.txt "
        "(the 'Align&Cropped Images' Google Drive folder linked on the page; "
        "torchvision.datasets.CelebA(root, download=True) fetches the same files)",
        path="a folder that holds these three files (at any depth)",
    )
)


class _Images(Dataset):
    """Images only, with their row index; targets are sliced in the main process."""

    def __init__(self, paths: Sequence[str], image_size: int) -> None:
        self.paths = list(paths)
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return read_image(self.paths[i], self.image_size, NAME), i


class CelebASplit(MTLDataset):
    """One split: image files decoded on demand, attribute targets held in memory."""

    def __init__(self, paths: Sequence[str], attrs: torch.Tensor, image_size: int) -> None:
        if attrs.shape != (len(paths), len(ATTRIBUTES)):
            raise ValueError(
                f"attrs must have shape ({len(paths)}, {len(ATTRIBUTES)}), got {tuple(attrs.shape)}"
            )
        self.images = _Images(paths, image_size)
        self.attrs = attrs  # (N, 40) uint8 in {0, 1}

    def __len__(self) -> int:
        return len(self.images)

    def _targets(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        sub = self.attrs.index_select(0, rows).long()
        return {a: sub[:, j] for j, a in enumerate(ATTRIBUTES)}

    def __getitem__(self, i: int) -> Batch:
        x, _ = self.images[i]
        return x, {a: v[0] for a, v in self._targets(torch.tensor([i])).items()}

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None,
        drop_last: bool,
        device: torch.device,
        num_workers: int = 0,
    ) -> Iterator[Batch]:
        loader = DataLoader(
            self.images,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            drop_last=drop_last,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
        )
        for x, rows in loader:
            yield move_to((x, self._targets(rows)), device)


# ----------------------------------------------------------------------------- parsing
def _md5(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_partition(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise DatasetCorrupt(
                    NAME, f"{path}:{lineno}", f"expected '<file> 0|1|2', got {line.strip()!r}"
                )
            out[fields[0]] = int(fields[1])
    if not out:
        raise DatasetCorrupt(NAME, path, "the file is empty")
    return out


def _read_attributes(path: Path) -> tuple[list[str], torch.Tensor]:
    with path.open() as f:
        lines = f.read().splitlines()
    if len(lines) < 2:
        raise DatasetCorrupt(NAME, path, "expected a count line and an attribute-name line")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DatasetCorrupt(NAME, f"{path}:1", f"expected the number of images, got {lines[0]!r}") from None
    names = lines[1].split()
    if tuple(names) != ATTRIBUTES:
        raise DatasetCorrupt(NAME, f"{path}:2", f"expected the 40 CelebA attribute names, got {names[:3]}...")
    rows = [line for line in lines[2:] if line.strip()]
    if len(rows) != count:
        raise DatasetCorrupt(
            NAME, path, f"header says {count} images but {len(rows)} lines follow (truncated?)"
        )
    files, rests = [], []
    for line in rows:
        name, _, rest = line.strip().partition(" ")
        files.append(name)
        rests.append(rest)
    try:  # numpy's C parser: ~10x faster than splitting 8M fields in Python
        values = np.loadtxt(rests, dtype=np.int8, ndmin=2)
        ok = values.shape == (len(rows), 40) and bool(np.isin(values, (-1, 1)).all())
    except ValueError:
        ok = False
    if not ok:
        for lineno, line in enumerate(rows, 3):
            fields = line.split()
            if len(fields) != 41 or any(v not in ("1", "-1") for v in fields[1:]):
                raise DatasetCorrupt(
                    NAME, f"{path}:{lineno}", "expected a file name and 40 values in {-1, 1}"
                )
        raise DatasetCorrupt(NAME, path, "cannot parse the attribute values")
    return files, torch.from_numpy((values == 1).astype(np.uint8))


def _paths(root: Path) -> tuple[Path, Path, Path, Path]:
    base = root / NAME
    return base, base / ATTR_FILE, base / PARTITION_FILE, base / IMAGE_DIR


def load(
    root: Path,
    *,
    name: str = NAME,
    image_size: int = 64,
    check_manifest: bool = True,
    limit: int | None = None,
) -> Splits:
    """The official train / val / test splits of CelebA with the 40 attributes as targets.

    ``check_manifest`` verifies the annotation files' MD5 and the split hashes (turn it off
    for fixtures and subsets); ``limit`` keeps the first N images of each split.
    """
    if name != NAME:
        raise KeyError(f"the celeba module serves 'celeba', not {name!r}")
    root = Path(root)
    base, attr_file, part_file, image_dir = _paths(root)
    for path in (base, attr_file, part_file, image_dir):
        if not path.exists():
            raise DatasetNotFound(NAME, root, str(path.relative_to(root)))
    if check_manifest:
        for path in (attr_file, part_file):
            digest = _md5(path)
            if digest != FILE_MD5[path.name]:
                raise DatasetCorrupt(NAME, path, f"MD5 {digest} != the official {FILE_MD5[path.name]}")
    partition = _read_partition(part_file)
    files, attrs = _read_attributes(attr_file)
    missing = [f for f in files if f not in partition]
    if missing or len(partition) != len(files):
        raise DatasetCorrupt(
            NAME,
            part_file,
            f"does not list the same images as {ATTR_FILE} ({len(partition)} vs {len(files)} images; "
            f"first unmatched: {missing[:1] or sorted(set(partition) - set(files))[:1]})",
        )
    splits, manifest = {}, {}
    for k, split in enumerate(SPLITS):
        rows = [i for i, f in enumerate(files) if partition[f] == k]
        ids = sorted(files[i] for i in rows)
        manifest[split] = ids_sha256(ids)
        if check_manifest and manifest[split] != SPLIT_SHA256[split]:
            raise DatasetCorrupt(
                NAME,
                part_file,
                f"split {split!r} hash {manifest[split][:12]} != official {SPLIT_SHA256[split][:12]}",
            )
        if not rows:
            raise DatasetCorrupt(NAME, part_file, f"no image is in the {split} split")
        rows.sort(key=lambda i: files[i])
        if limit is not None:
            rows = rows[:limit]
        idx = torch.tensor(rows, dtype=torch.long)
        for probe in (rows[0], rows[-1]):  # cheap existence check; verify() checks every file
            if not (image_dir / files[probe]).is_file():
                raise DatasetCorrupt(
                    NAME, image_dir / files[probe], "image listed in the annotations is missing"
                )
        splits[split] = CelebASplit(
            [str(image_dir / files[i]) for i in rows], attrs.index_select(0, idx), image_size
        )
    return Splits(
        splits["train"], splits["val"], splits["test"], manifest=manifest, info={"attributes": ATTRIBUTES}
    )


def _capped(problems: list[str], limit: int = 20) -> list[str]:
    if len(problems) <= limit:
        return problems
    return [*problems[:limit], f"... and {len(problems) - limit} more"]


def verify(root: Path, *, decode_images: bool = False) -> list[str]:
    """Annotation checksums, split hashes, every image file present; ``decode_images`` decodes them all (minutes)."""
    root = Path(root)
    try:
        splits = load(root)
    except (DatasetNotFound, DatasetCorrupt) as err:
        return [str(err)]
    problems: list[str] = []
    for split in SPLITS:
        ds = splits[split]
        assert isinstance(ds, CelebASplit)
        for path in ds.images.paths:
            if not decode_images:
                if not os.path.isfile(path):
                    problems.append(
                        str(DatasetCorrupt(NAME, path, "image listed in the annotations is missing"))
                    )
                continue
            try:
                read_image(path, 8, NAME)
            except DatasetCorrupt as err:
                problems.append(str(err))
    return _capped(problems)


def _find(source: Path, filename: str) -> Path | None:
    if (source / filename).exists():
        return source / filename
    return next(iter(sorted(source.rglob(filename))), None)


def prepare(root: Path, source: Path | None = None) -> None:
    """Install the official CelebA files under ``<root>/celeba/``.

    The official distribution is a Google Drive / Baidu folder (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html),
    with no stable URL, so mtlbench does not download it. Download ``Img/img_align_celeba.zip``,
    ``Anno/list_attr_celeba.txt`` and ``Eval/list_eval_partition.txt`` (or let
    ``torchvision.datasets.CelebA(root, download=True)`` fetch them) and pass the folder that
    holds them, at any depth, as ``source``; an already extracted ``img_align_celeba/``
    folder is used as is. Files are staged in a temporary folder and moved into place when
    complete; the annotation checksums are checked first and ``verify`` runs at the end.
    """
    if source is None:
        raise SourceRequired(NAME)
    root, source = Path(root), Path(source)
    found: dict[str, Any] = {f: _find(source, f) for f in (ATTR_FILE, PARTITION_FILE)}
    for f, path in found.items():
        if path is None:
            raise FileNotFoundError(f"{f} not found under {source}")
        if _md5(path) != FILE_MD5[f]:
            raise DatasetCorrupt(NAME, path, f"MD5 differs from the official {FILE_MD5[f]}")
    images = _find(source, IMAGE_DIR)
    archive = _find(source, IMAGE_DIR + ".zip")
    if images is None and archive is None:
        raise FileNotFoundError(f"neither {IMAGE_DIR}/ nor {IMAGE_DIR}.zip found under {source}")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".celeba-") as tmp:
        staging = Path(tmp) / NAME
        staging.mkdir()
        for f, path in found.items():
            shutil.copy2(path, staging / f)
        if images is not None and images.is_dir():
            shutil.copytree(images, staging / IMAGE_DIR)
        else:
            if archive is None:
                raise FileNotFoundError(
                    f"{images} is not a folder and no {IMAGE_DIR}.zip was found under {source}"
                )
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)
            if not (staging / IMAGE_DIR).is_dir():
                raise DatasetCorrupt(NAME, archive, f"the archive has no {IMAGE_DIR}/ folder")
        target = root / NAME
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    log.info("installed CelebA at %s", root / NAME)
    problems = verify(root, decode_images=True)
    if problems:
        raise DatasetCorrupt(NAME, root / NAME, "; ".join(problems[:5]))

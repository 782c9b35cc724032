"""The MTAN-preprocessed NumPy layout shared by NYUv2 and CityScapes: load, verify, prepare.

MTAN (Liu, Johns & Davison, CVPR 2019, https://github.com/lorenmt/mtan) published both
datasets as one ``.npy`` file per sample and field under ``train/`` and ``val/`` (the upstream
``val`` folder is the test set); LibMTL's ``examples/nyu`` and ``examples/cityscapes`` read
them as-is. An :class:`NpyLayout` describes one dataset's fields, upstream counts, published
validation ids and split hashes; :func:`load_layout`, :func:`verify_layout` and
:func:`prepare_layout` do the work for any layout (:mod:`mtlbench.data.nyuv2`,
:mod:`mtlbench.data.cityscapes` hold the two layouts and their protocols). A split's ids are
upstream paths without suffix (``"train/17"``, ``"val/3"``); :func:`split_ids` carves the
validation split out of the upstream training ids.

Augmentation (``augment=True``): LibMTL's recipe on the training split, a random scale-crop
with scale in {1.0, 1.2, 1.5} (depth divided by the scale) and a horizontal flip with
p = 0.5 (the x component of the normals negated), drawn from the reading process's torch RNG.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.lib.format as npy_format
import torch
import torch.nn.functional as F

from mtlbench.data.base import (
    Batch,
    DatasetCorrupt,
    DatasetNotFound,
    MTLDataset,
    SourceRequired,
    Splits,
    ids_sha256,
)

__all__ = [
    "UPSTREAM_TEST",
    "UPSTREAM_TRAIN",
    "Field",
    "NpyDenseDataset",
    "NpyLayout",
    "load_layout",
    "parse_ids",
    "prepare_layout",
    "split_ids",
    "verify_layout",
]

log = logging.getLogger(__name__)

#: upstream folder that holds the training images / the images we use as the test split
UPSTREAM_TRAIN, UPSTREAM_TEST = "train", "val"


def parse_ids(text: str) -> tuple[int, ...]:
    return tuple(int(token) for token in text.split())


# ----------------------------------------------------------------------------- the layout
@dataclass(frozen=True)
class Field:
    """One per-sample ``.npy`` folder: what it holds and the array shape it must have."""

    key: str  # "image" for the input, else the task name it is the target of
    folders: tuple[str, ...]  # candidate folder names; the first one present is used
    channels: int | None  # size of the trailing channel axis; None for a 2-D (H, W) map
    kind: str  # "image" | "label" | "dense"


@dataclass(frozen=True)
class NpyLayout:
    """An MTAN-style dataset: ``<root>/<name>/{train,val}/<field>/<i>.npy``."""

    name: str
    fields: tuple[Field, ...]
    upstream_counts: Mapping[str, int]  # expected files per upstream split
    val_ids: tuple[int, ...]  # upstream train ids that form our val split
    split_sha256: Mapping[str, str]
    image_size: tuple[int, int]  # (H, W) of the published preprocessing
    num_classes: int
    source_hint: str  # where the preprocessed copy comes from (for error messages)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields if f.kind != "image")


# ----------------------------------------------------------------------------- splits
def split_ids(
    layout: NpyLayout, counts: Mapping[str, int], val_ids: Sequence[int] | None = None
) -> dict[str, list[str]]:
    """The id list of each split (``"train/<i>"``, ``"val/<i>"``) for upstream ``counts``."""
    chosen = layout.val_ids if val_ids is None else tuple(int(i) for i in val_ids)
    n_train = counts[UPSTREAM_TRAIN]
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"{layout.name}: val_ids has duplicates")
    bad = [i for i in chosen if not 0 <= i < n_train]
    if bad:
        raise ValueError(f"{layout.name}: val_ids {bad[:5]} are outside the {n_train} upstream training ids")
    held_out = set(chosen)
    return {
        "train": [f"{UPSTREAM_TRAIN}/{i}" for i in range(n_train) if i not in held_out],
        "val": [f"{UPSTREAM_TRAIN}/{i}" for i in sorted(held_out)],
        "test": [f"{UPSTREAM_TEST}/{i}" for i in range(counts[UPSTREAM_TEST])],
    }


# ----------------------------------------------------------------------------- files
def _field_dirs(layout: NpyLayout, dataset_dir: Path, root: Path) -> dict[str, dict[str, Path]]:
    """``{upstream split: {field key: folder}}``; a missing folder raises DatasetNotFound."""
    if not dataset_dir.is_dir():
        raise DatasetNotFound(layout.name, root, str(dataset_dir))
    dirs: dict[str, dict[str, Path]] = {}
    for split in (UPSTREAM_TRAIN, UPSTREAM_TEST):
        dirs[split] = {}
        for f in layout.fields:
            found = [dataset_dir / split / name for name in f.folders]
            present = [p for p in found if p.is_dir()]
            if not present:
                raise DatasetNotFound(layout.name, root, str(found[0]))
            dirs[split][f.key] = present[0]
    return dirs


def _count(layout: NpyLayout, dirs: Mapping[str, Path]) -> int:
    """Number of samples in one upstream split; every field must hold ``0.npy .. (n-1).npy``."""
    n: int | None = None
    for folder in dirs.values():
        ids = sorted(int(p.stem) for p in folder.glob("*.npy") if p.stem.isdigit())
        if ids != list(range(len(ids))):
            missing = sorted(set(range(ids[-1] + 1)) - set(ids))[:5] if ids else []
            raise DatasetCorrupt(
                layout.name, folder, f"files must be named 0.npy .. N-1.npy; missing {missing}"
            )
        if n is None:
            n = len(ids)
        elif len(ids) != n:
            raise DatasetCorrupt(
                layout.name, folder, f"{len(ids)} files, but {layout.fields[0].folders[0]}/ has {n}"
            )
    return n or 0


def _header(name: str, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header, checking that the data is all there."""
    try:
        with open(path, "rb") as fh:
            version = npy_format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = npy_format.read_array_header_2_0(fh)
            offset = fh.tell()
    except (OSError, ValueError) as err:
        raise DatasetCorrupt(name, path, f"not a readable .npy file: {err}") from err
    if dtype.hasobject:
        raise DatasetCorrupt(name, path, "holds Python objects, expected a numeric array")
    if dtype.kind not in "fiub":
        raise DatasetCorrupt(name, path, f"dtype {dtype} is not numeric")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = path.stat().st_size
    if actual < expected:
        raise DatasetCorrupt(name, path, f"truncated: {actual} bytes, expected {expected}")
    return tuple(shape), dtype


def _expected_shape(f: Field, size: tuple[int, int]) -> tuple[int, ...]:
    return size if f.channels is None else (*size, f.channels)


def _check_headers(
    layout: NpyLayout,
    dirs: Mapping[str, Mapping[str, Path]],
    ids: Sequence[str],
    size: tuple[int, int] | None,
) -> tuple[int, int] | None:
    """Check every field file of ``ids``; returns the common (H, W) (taken from the first image)."""
    for sample in ids:
        split, index = sample.split("/")
        for f in layout.fields:
            path = dirs[split][f.key] / f"{index}.npy"
            shape, _ = _header(layout.name, path)
            if size is None and f.kind == "image":
                if len(shape) != 3 or shape[2] != 3:
                    raise DatasetCorrupt(layout.name, path, f"shape {shape}, expected (H, W, 3)")
                size = (shape[0], shape[1])
            assert size is not None
            if shape != _expected_shape(f, size):
                raise DatasetCorrupt(layout.name, path, f"shape {shape}, expected {_expected_shape(f, size)}")
    return size


def _read(name: str, path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DatasetCorrupt(name, path, f"cannot be read: {err}") from err


# ----------------------------------------------------------------------------- dataset
_SCALES = (1.0, 1.2, 1.5)


def _scale_crop_flip(x: torch.Tensor, ys: dict[str, torch.Tensor]) -> Batch:
    """LibMTL's NYUv2 augmentation: random scale-crop (depth / scale) and horizontal flip."""
    h, w = x.shape[-2:]
    scale = _SCALES[int(torch.randint(len(_SCALES), ()))]
    ch, cw = int(h / scale), int(w / scale)
    i = int(torch.randint(h - ch + 1, ()))
    j = int(torch.randint(w - cw + 1, ()))

    def crop(t: torch.Tensor, mode: str) -> torch.Tensor:
        t = t[None, :, i : i + ch, j : j + cw]
        if mode == "nearest":
            return F.interpolate(t, size=(h, w), mode="nearest")[0]
        return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=True)[0]

    x = crop(x, "bilinear")
    out = {}
    for task, y in ys.items():
        if task == "segmentation":
            out[task] = crop(y[None].float(), "nearest")[0].long()
        elif task == "depth":
            out[task] = crop(y, "nearest") / scale
        else:
            out[task] = crop(y, "bilinear")
    if bool(torch.rand(()) < 0.5):
        x = x.flip(-1)
        out = {task: y.flip(-1) for task, y in out.items()}
        if "normal" in out:
            out["normal"][0] = -out["normal"][0]
    return x, out


class NpyDenseDataset(MTLDataset):
    """A split of an MTAN-style dataset, read lazily: one ``.npy`` per sample and field."""

    def __init__(
        self,
        layout: NpyLayout,
        dirs: Mapping[str, Mapping[str, Path]],
        ids: Sequence[str],
        *,
        augment: bool = False,
    ) -> None:
        self.name = layout.name
        self.fields = layout.fields
        self.ids = list(ids)
        self.augment = augment
        # plain strings: cheap to pickle into DataLoader workers
        self._paths = [
            {f.key: str(dirs[s.split("/")[0]][f.key] / f"{s.split('/')[1]}.npy") for f in self.fields}
            for s in self.ids
        ]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Batch:
        x: torch.Tensor | None = None
        ys: dict[str, torch.Tensor] = {}
        for f in self.fields:
            path = self._paths[i][f.key]
            a = _read(self.name, path)
            if f.kind == "label":
                ys[f.key] = torch.from_numpy(np.rint(a).astype(np.int64))
                continue
            t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(a.astype(np.float32, copy=False), -1, 0)))
            if f.kind == "image":
                x = t
            else:
                ys[f.key] = t
        assert x is not None
        if self.augment:
            x, ys = _scale_crop_flip(x, ys)
        return x, ys


# ----------------------------------------------------------------------------- load
def load_layout(
    layout: NpyLayout,
    root: Path,
    *,
    limit: int | None = None,
    val_ids: Sequence[int] | None = None,
    augment: bool = False,
) -> Splits:
    """Open ``<root>/<layout.name>``, check it, and return the three lazily read splits.

    With ``val_ids=None`` (the registered protocol) the upstream file counts must be the
    published ones and the published :attr:`NpyLayout.val_ids` are held out; pass your own
    ``val_ids`` to use a partial or custom copy (e.g. a test fixture). ``limit`` keeps the
    first N ids of each split (the manifest then hashes the ids actually used).
    """
    root = Path(root)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive integer or None, got {limit}")
    dirs = _field_dirs(layout, root / layout.name, root)
    counts = {split: _count(layout, d) for split, d in dirs.items()}
    if val_ids is None:
        for split, expected in layout.upstream_counts.items():
            if counts[split] != expected:
                raise DatasetCorrupt(
                    layout.name,
                    dirs[split]["image"],
                    f"{counts[split]} samples, the published copy has {expected}; for a partial or "
                    "custom copy pass val_ids=[...] (dataset.kwargs) to choose the validation ids",
                )
    ids = split_ids(layout, counts, val_ids)
    if val_ids is None:
        for split, published in layout.split_sha256.items():
            digest = ids_sha256(ids[split])
            if digest != published:
                raise DatasetCorrupt(
                    layout.name,
                    f"split {split!r}",
                    f"id list hash {digest[:12]} != published {published[:12]}",
                )
    if limit is not None:
        ids = {split: lst[:limit] for split, lst in ids.items()}
    size: tuple[int, int] | None = None
    for split in ("train", "val", "test"):
        size = _check_headers(layout, dirs, ids[split], size)
    manifest = {split: ids_sha256(lst) for split, lst in ids.items()}
    datasets = {
        split: NpyDenseDataset(layout, dirs, lst, augment=augment and split == "train")
        for split, lst in ids.items()
    }
    return Splits(
        datasets["train"],
        datasets["val"],
        datasets["test"],
        manifest=manifest,
        info={
            "image_size": size,
            "num_classes": layout.num_classes,
            "published_splits": val_ids is None and limit is None,
            "augment": augment,
        },
    )


# ----------------------------------------------------------------------------- verify
_MAX_PROBLEMS = 50


def _check_values(layout: NpyLayout, f: Field, path: Path, a: np.ndarray) -> str | None:
    if f.kind == "label":
        labels = np.unique(a)
        if not np.all(labels == np.rint(labels)):
            return f"{path}: non-integer segmentation labels"
        bad = labels[(labels < -1) | (labels >= layout.num_classes)]
        if bad.size:
            return f"{path}: labels {bad[:5].tolist()} outside -1 .. {layout.num_classes - 1}"
    elif not np.isfinite(a).all():
        return f"{path}: non-finite values"
    return None


def verify_layout(layout: NpyLayout, root: Path) -> list[str]:
    """Full check of ``<root>/<name>``: counts, every file readable, shapes, values."""
    root = Path(root)
    try:
        dirs = _field_dirs(layout, root / layout.name, root)
    except DatasetNotFound as err:
        return [str(err)]
    problems: list[str] = []
    counts: dict[str, int] = {}
    for split, d in dirs.items():
        try:
            counts[split] = _count(layout, d)
        except DatasetCorrupt as err:
            problems.append(str(err))
            continue
        if counts[split] != layout.upstream_counts[split]:
            problems.append(
                f"{d['image']}: {counts[split]} samples, the published copy has "
                f"{layout.upstream_counts[split]}"
            )
    size: tuple[int, int] | None = None
    for split, n in counts.items():
        for index in range(n):
            for f in layout.fields:
                path = dirs[split][f.key] / f"{index}.npy"
                try:
                    shape, _ = _header(layout.name, path)
                    a = _read(layout.name, str(path))
                except DatasetCorrupt as err:
                    problems.append(str(err))
                    continue
                if size is None and f.kind == "image" and len(shape) == 3:
                    size = (shape[0], shape[1])
                expected = _expected_shape(f, size) if size is not None else None
                if expected is not None and a.shape != expected:
                    problems.append(f"{path}: shape {a.shape}, expected {expected}")
                    continue
                problem = _check_values(layout, f, path, a)
                if problem:
                    problems.append(problem)
                if len(problems) >= _MAX_PROBLEMS:
                    return [*problems, "(stopped after 50 problems)"]
    if size is not None and size != layout.image_size:
        problems.append(
            f"{root / layout.name}: images are {size[0]}x{size[1]}, the registered protocol uses "
            f"{layout.image_size[0]}x{layout.image_size[1]}"
        )
    return problems


# ----------------------------------------------------------------------------- prepare
def _find_source(layout: NpyLayout, source: Path) -> Path:
    for candidate in (source, source / layout.name):
        if (candidate / UPSTREAM_TRAIN).is_dir() and (candidate / UPSTREAM_TEST).is_dir():
            return candidate
    raise FileNotFoundError(
        f"{source} does not look like {layout.source_hint}: expected {source}/train and {source}/val"
    )


def prepare_layout(layout: NpyLayout, root: Path, source: Path | str | None = None) -> None:
    """Copy a downloaded MTAN-preprocessed copy into ``<root>/<name>`` after checking it.

    Nothing can be downloaded automatically (the preprocessed copies are not
    redistributable). The copy is written to a temporary folder beside the target and
    renamed into place only once it is complete, so a failure leaves nothing half-written.
    """
    root = Path(root).expanduser()
    target = root / layout.name
    if source is None:
        if target.is_dir():
            try:
                load_layout(layout, root)
            except (DatasetNotFound, DatasetCorrupt) as err:
                raise FileNotFoundError(
                    f"{target} exists but is incomplete ({err}); remove it and prepare again from "
                    f"{layout.source_hint}"
                ) from err
            log.info("%s is already prepared at %s", layout.name, target)
            return
        raise SourceRequired(layout.name)
    src = _find_source(layout, Path(source).expanduser())
    # validate the source first: counts, names and every header
    src_root = src.parent
    dirs = _field_dirs(layout, src, src_root)
    counts = {split: _count(layout, d) for split, d in dirs.items()}
    for split, expected in layout.upstream_counts.items():
        if counts[split] != expected:
            raise DatasetCorrupt(
                layout.name, dirs[split]["image"], f"{counts[split]} samples, expected {expected}"
            )
    all_ids = [f"{split}/{i}" for split, n in counts.items() for i in range(n)]
    _check_headers(layout, dirs, all_ids, None)
    if target.exists():
        raise FileExistsError(f"{target} already exists; remove it to prepare {layout.name} again")
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{layout.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        for split, fields in dirs.items():
            for folder in fields.values():
                dest = partial / split / folder.name
                dest.mkdir(parents=True)
                for i in range(counts[split]):
                    shutil.copyfile(folder / f"{i}.npy", dest / f"{i}.npy")
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.info("prepared %s at %s from %s (%s)", layout.name, target, src, counts)

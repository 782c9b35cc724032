"""Tiny CelebA / Office fixtures written in exactly the upstream on-disk formats.

``write_celeba(root)`` creates torchvision's layout: ``<root>/celeba/img_align_celeba/*.jpg``,
``list_attr_celeba.txt`` (count line, attribute-name line, then ``file v1 .. v40`` with values
in {-1, 1}, padded with double spaces as in the release) and ``list_eval_partition.txt``.

``write_office(root, "office31")`` creates ``<root>/office31/<domain>/images/<class>/frame_NNNN.jpg``
and ``write_office(root, "officehome")`` ``<root>/officehome/<Domain>/<class>/NNNNN.jpg`` (the
release's ``Real World`` folder name optional). Images are small random JPEGs.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mtlbench.data.celeba import ATTRIBUTES

OFFICE_DOMAINS = {
    "office31": ("amazon", "dslr", "webcam"),
    "officehome": ("Art", "Clipart", "Product", "Real_World"),
}


def write_image(path: Path, size: tuple[int, int] = (20, 24), seed: int = 0) -> Path:
    """A random RGB JPEG of ``size`` (width, height)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=80)
    return path


def write_office_release(root: Path, name: str, size: tuple[int, int] = (4, 4)) -> Path:
    """Every image the shipped (paper's) split lists name, as a tiny JPEG, in the release layout."""
    from mtlbench.data import office

    base = root / name
    for seed, rel in enumerate(i for ids in office.read_split_lists(name).values() for i in ids):
        write_image(base / rel, size, seed=seed)
    return base


def truncate(path: Path, keep: float = 0.4) -> Path:
    """Cut a file to ``keep`` of its length (a truncated download)."""
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def write_celeba(
    root: Path, counts: Mapping[str, int] | None = None, size: tuple[int, int] = (20, 24), seed: int = 0
) -> Path:
    """CelebA with ``counts`` images per split (default 6 / 3 / 3), in file order train, val, test."""
    counts = dict(counts or {"train": 6, "val": 3, "test": 3})
    base = root / "celeba"
    rng = random.Random(seed)
    rows, partition = [], []
    i = 0
    for k, split in enumerate(("train", "val", "test")):
        for _ in range(counts[split]):
            i += 1
            name = f"{i:06d}.jpg"
            write_image(base / "img_align_celeba" / name, size, seed=seed * 1000 + i)
            values = [rng.choice((-1, 1)) for _ in ATTRIBUTES]
            rows.append(name + " " + " ".join(f"{v:2d}" for v in values))
            partition.append(f"{name} {k}")
    (base / "list_attr_celeba.txt").write_text(
        f"{i}\n" + " ".join(ATTRIBUTES) + " \n" + "\n".join(rows) + "\n"
    )
    (base / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    return base


def read_celeba_targets(base: Path) -> dict[str, list[int]]:
    """``{file: [0/1] * 40}`` straight from a fixture's attribute file (for assertions)."""
    lines = (base / "list_attr_celeba.txt").read_text().splitlines()[2:]
    return {f[0]: [int(v == "1") for v in f[1:]] for f in (line.split() for line in lines)}


def write_office(
    root: Path,
    name: str,
    *,
    classes: Sequence[str] = ("back_pack", "bike", "mug"),
    per_class: Mapping[str, int] | int = 5,
    domain_folders: Mapping[str, str] | None = None,
    size: tuple[int, int] = (20, 16),
) -> Path:
    """An Office-31 / Office-Home tree; ``per_class`` images per class (per domain if a mapping)."""
    base = root / name
    folders = dict(domain_folders or {})
    seed = 0
    for domain in OFFICE_DOMAINS[name]:
        n = per_class if isinstance(per_class, int) else per_class[domain]
        ddir = base / folders.get(domain, domain)
        for cls in classes:
            cdir = ddir / "images" / cls if name == "office31" else ddir / cls
            for j in range(1, n + 1):
                seed += 1
                fname = f"frame_{j:04d}.jpg" if name == "office31" else f"{j:05d}.jpg"
                write_image(cdir / fname, size, seed=seed)
    return base

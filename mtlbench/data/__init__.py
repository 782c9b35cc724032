"""Datasets: one module per dataset, a registry, and data-root resolution.

Each module (see :mod:`mtlbench.data.base` for the contract) reads its dataset's standard
on-disk format from the data root (``$MTLBENCH_DATA``, default ``~/.cache/mtlbench``), or,
for the offline tier (MultiMNIST, QM9, QM9-small, digit attributes, digit domains), from data
shipped inside an installable package.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mtlbench.data.base import (
    DatasetCorrupt,
    DatasetNotFound,
    MTLDataset,
    Splits,
    TensorMTLDataset,
    data_root,
    ids_sha256,
)

#: dataset name -> module (relative to ``mtlbench.data``)
DATASETS: dict[str, str] = {
    "multimnist": "multimnist",
    "qm9": "qm9",
    "qm9_small": "qm9_small",
    "digit_attributes": "digit_attributes",
    "digit_domains": "digit_domains",
    "nyuv2": "nyuv2",
    "cityscapes": "cityscapes",
    "celeba": "celeba",
    "office31": "office",
    "officehome": "office",
    "pawsx": "xtreme",
    "udpos": "xtreme",
}


def dataset_module(name: str) -> ModuleType:
    """Import the module that implements dataset ``name``."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return importlib.import_module(f"{__name__}.{DATASETS[name]}")


def load_dataset(name: str, root: str | None = None, **kwargs: object) -> Splits:
    """Load the three splits of ``name`` from the data root (or from its package)."""
    module = dataset_module(name)
    return module.load(data_root(root), name=name, **kwargs)


__all__ = [
    "DATASETS",
    "DatasetCorrupt",
    "DatasetNotFound",
    "MTLDataset",
    "Splits",
    "TensorMTLDataset",
    "data_root",
    "dataset_module",
    "ids_sha256",
    "load_dataset",
]

"""What a dataset module provides, and the two dataset containers the env iterates.

Every dataset module under :mod:`mtlbench.data` exposes module-level functions::

    NAME: str
    def load(root: Path, **kwargs) -> Splits          # raises DatasetNotFound if absent
    def verify(root: Path) -> list[str]                 # problems found; [] when intact
    def prepare(root: Path, source: Path | None) -> None   # documented preparation
    DESCRIPTION: str                                      # source, sizes, licence, splits

A split is an :class:`MTLDataset`: items are ``(x, {task: y})``. The env asks it for
batches with a ``torch.Generator`` seeded from the run seed only, so data order never
depends on the policy. :class:`TensorMTLDataset` keeps everything in memory (and on the
GPU when there is one) and slices batches without a DataLoader; other datasets go
through ``torch.utils.data.DataLoader`` with workers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

Batch = tuple[Any, dict[str, torch.Tensor]]

__all__ = [
    "Batch",
    "DatasetCorrupt",
    "DatasetNotFound",
    "MTLDataset",
    "Splits",
    "TensorMTLDataset",
    "data_root",
    "ids_sha256",
    "move_to",
]


class DatasetNotFound(FileNotFoundError):
    """The dataset is not under the data root; the message names the prepare command."""

    def __init__(self, name: str, root: Path, missing: str) -> None:
        super().__init__(
            f"dataset {name!r} not found under the data root {root} ({missing} is missing). "
            f"Run `mtlbench data prepare {name}` (see `mtlbench data list`), or point "
            "MTLBENCH_DATA / data_root= at a prepared copy."
        )
        self.name, self.root = name, root


class DatasetCorrupt(ValueError):
    """A file under the data root is unreadable or has the wrong shape/checksum."""

    def __init__(self, name: str, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(
            f"dataset {name!r}: {path} is corrupt ({problem}). Re-run `mtlbench data prepare {name}` "
            f"or `mtlbench data verify {name}` for a full check."
        )


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data root: explicit argument, then ``$MTLBENCH_DATA``, then ~/.cache/mtlbench."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get("MTLBENCH_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mtlbench"


def ids_sha256(ids: Sequence[Any]) -> str:
    """Hash of a split's id list (one id per line), published in the env spec."""
    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()


def move_to(value: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Move tensors (possibly nested in dicts/lists) to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, Mapping):
        return {k: move_to(v, device, non_blocking) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(move_to(v, device, non_blocking) for v in value)
    return value


class MTLDataset(Dataset):
    """A split whose items are ``(x, {task: y})``; iterate it with :meth:`batches`."""

    collate_fn: Callable[[list[Any]], Batch] | None = None

    def num_batches(self, batch_size: int, drop_last: bool) -> int:
        n = len(self)  # type: ignore[arg-type]
        return n // batch_size if drop_last else -(-n // batch_size)

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
            self,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            drop_last=drop_last,
            num_workers=num_workers,
            collate_fn=self.collate_fn,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
        )
        for batch in loader:
            yield move_to(batch, device)


class TensorMTLDataset(MTLDataset):
    """In-memory split: one input tensor and one target tensor per task, sliced per batch."""

    def __init__(self, inputs: torch.Tensor, targets: Mapping[str, torch.Tensor]) -> None:
        n = inputs.shape[0]
        for task, y in targets.items():
            if y.shape[0] != n:
                raise ValueError(f"task {task!r} has {y.shape[0]} targets for {n} inputs")
        self.inputs = inputs
        self.targets = dict(targets)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, i: int) -> Batch:
        return self.inputs[i], {t: y[i] for t, y in self.targets.items()}

    def to(self, device: torch.device) -> TensorMTLDataset:
        return TensorMTLDataset(self.inputs.to(device), {t: y.to(device) for t, y in self.targets.items()})

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
        del num_workers  # slicing in memory needs no workers
        n = len(self)
        # The permutation is drawn on the CPU generator so that the order is the same on
        # every device for a given seed.
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order.to(self.inputs.device)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            x = self.inputs.index_select(0, idx)
            ys = {t: y.index_select(0, idx) for t, y in self.targets.items()}
            yield move_to((x, ys), device)


@dataclass
class Splits:
    """The three splits of a dataset plus the manifest that pins them."""

    train: MTLDataset
    val: MTLDataset
    test: MTLDataset
    manifest: dict[str, str] = field(default_factory=dict)  # split -> sha256 of its id list
    info: dict[str, Any] = field(default_factory=dict)  # e.g. target standardisation

    def __getitem__(self, split: str) -> MTLDataset:
        if split not in ("train", "val", "test"):
            raise KeyError(f"unknown split {split!r}; expected 'train', 'val' or 'test'")
        return getattr(self, split)

"""Containers shared by the multi-input datasets (Office-31, Office-Home, XTREME) and image IO.

In a multi-input split every task has its own inputs (Office domains, XTREME languages);
:class:`MultiInputDataset` yields ``({task: x_t}, {task: y_t})`` batches from one
:class:`TaskPart` per task. Used by :mod:`mtlbench.data.office`, :mod:`mtlbench.data.celeba`
(``read_image``) and :mod:`mtlbench.data.xtreme`.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mtlbench.data.base import Batch, DatasetCorrupt, MTLDataset, move_to

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------- images
def read_image(path: str | os.PathLike[str], size: int | tuple[int, int], dataset: str) -> torch.Tensor:
    """Decode an image to a normalised ``(3, H, W)`` float tensor; a bad file raises DatasetCorrupt."""
    from PIL import Image

    h, w = (size, size) if isinstance(size, int) else size
    try:
        with Image.open(path) as src:
            img = src.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
    except (OSError, ValueError, SyntaxError) as err:  # PIL reports bad data as OSError
        raise DatasetCorrupt(dataset, path, f"cannot decode image: {err}") from err
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


# ------------------------------------------------------------------ multi-input container
class TaskPart(Protocol):
    """One task's samples in a multi-input split: a length and a batched fetch."""

    def __len__(self) -> int: ...

    def fetch(self, indices: torch.Tensor) -> tuple[Any, torch.Tensor]: ...


class ImagePart:
    """A task's image files and labels; images are decoded on fetch."""

    def __init__(self, paths: Sequence[str], labels: torch.Tensor, image_size: int, dataset: str) -> None:
        if len(paths) != labels.shape[0]:
            raise ValueError(f"{len(paths)} images but {labels.shape[0]} labels")
        self.paths = list(paths)
        self.labels = labels
        self.image_size = image_size
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.paths)

    def fetch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = indices.tolist()
        if not idx:
            s = self.image_size
            return torch.empty(0, 3, s, s), self.labels[:0]
        x = torch.stack([read_image(self.paths[i], self.image_size, self.dataset) for i in idx])
        return x, self.labels[indices]


class TensorPart:
    """A task's samples held in memory: inputs (a tensor or a dict of tensors) and targets."""

    def __init__(self, inputs: torch.Tensor | Mapping[str, torch.Tensor], targets: torch.Tensor) -> None:
        first = inputs if isinstance(inputs, torch.Tensor) else next(iter(inputs.values()))
        if first.shape[0] != targets.shape[0]:
            raise ValueError(f"{first.shape[0]} inputs but {targets.shape[0]} targets")
        self.inputs = inputs
        self.targets = targets

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def fetch(self, indices: torch.Tensor) -> tuple[Any, torch.Tensor]:
        if isinstance(self.inputs, torch.Tensor):
            x: Any = self.inputs.index_select(0, indices)
        else:
            x = {k: v.index_select(0, indices) for k, v in self.inputs.items()}
        return x, self.targets.index_select(0, indices)


class _PlanDataset(Dataset):
    """Item ``k`` is the whole ``k``-th step of a batch plan (lets DataLoader workers prefetch)."""

    def __init__(self, parts: Mapping[str, TaskPart], plan: Sequence[Mapping[str, torch.Tensor]]) -> None:
        self.parts = parts
        self.plan = plan

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: int) -> Batch:
        return _fetch_step(self.parts, self.plan[k])


def _fetch_step(parts: Mapping[str, TaskPart], step: Mapping[str, torch.Tensor]) -> Batch:
    xs, ys = {}, {}
    for task, idx in step.items():
        xs[task], ys[task] = parts[task].fetch(idx)
    return xs, ys


class MultiInputDataset(MTLDataset):
    """A split in which every task has its own inputs; batches are ``({task: x_t}, {task: y_t})``.

    Training order (``shuffle=True``): an epoch has as many steps as the task with the most
    batches (``max_t ceil(n_t / B)``). Each task reads its own stream of indices, the
    concatenation of fresh permutations of its samples drawn from ``generator`` (tasks in
    order, as many permutations as the epoch needs), and every step takes the next ``B``
    indices of every stream: every sub-batch is full (BatchNorm-safe), the largest task
    sees each sample at least once per epoch, smaller ones cycle (as LibMTL's multi-input
    trainer does). The order depends on the generator alone.

    Evaluation order (``shuffle=False``): step ``k`` holds samples ``[kB, (k+1)B)`` of every
    task, so every sample of every task is seen exactly once; a task that has run out gets
    an empty sub-batch (the model and the metrics see zero rows), because an HPS model
    needs every task's input at every step.
    """

    def __init__(self, parts: Mapping[str, TaskPart]) -> None:
        if not parts:
            raise ValueError("a multi-input split needs at least one task")
        for task, part in parts.items():
            if len(part) == 0:
                raise ValueError(f"task {task!r} has no samples in this split")
        self.parts = dict(parts)
        self.task_names = tuple(parts)

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts.values())

    def task_sizes(self) -> dict[str, int]:
        return {t: len(p) for t, p in self.parts.items()}

    def __getitem__(self, i: int) -> Batch:
        """Sample ``i`` of the concatenation of the tasks (in task order), as a one-task item."""
        for task, part in self.parts.items():
            if i < len(part):
                x, y = part.fetch(torch.tensor([i]))
                return {task: x}, {task: y}
            i -= len(part)
        raise IndexError("index out of range")

    def num_batches(self, batch_size: int, drop_last: bool) -> int:
        sizes = [len(p) for p in self.parts.values()]
        if drop_last:  # at least one step, even when every task is smaller than a batch
            return max(1, *(n // batch_size for n in sizes))
        return max(-(-n // batch_size) for n in sizes)

    def plan(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None,
        drop_last: bool,
    ) -> list[dict[str, torch.Tensor]]:
        """The index plan of one pass: ``plan[k][task]`` are task ``task``'s indices at step ``k``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        steps = self.num_batches(batch_size, drop_last)
        if shuffle:
            streams = {}
            for task, part in self.parts.items():
                n = len(part)
                need = steps * batch_size
                perms = [torch.randperm(n, generator=generator) for _ in range(-(-need // n))]
                streams[task] = torch.cat(perms)[:need] if perms else torch.empty(0, dtype=torch.long)
            return [
                {t: s[k * batch_size : (k + 1) * batch_size] for t, s in streams.items()}
                for k in range(steps)
            ]
        plan = []
        for k in range(steps):
            step = {}
            for task, part in self.parts.items():
                n = len(part)
                start, stop = min(k * batch_size, n), min((k + 1) * batch_size, n)
                if drop_last and stop - start < batch_size:
                    start = stop
                step[task] = torch.arange(start, stop)
            plan.append(step)
        return plan

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
        plan = self.plan(batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last)
        if num_workers > 0:
            loader = DataLoader(
                _PlanDataset(self.parts, plan),
                batch_size=None,
                shuffle=False,
                num_workers=num_workers,
                pin_memory=device.type == "cuda",
            )
            for batch in loader:
                yield move_to(batch, device)
        else:
            for step in plan:
                yield move_to(_fetch_step(self.parts, step), device)


def safe_extractall(tf: tarfile.TarFile, into: Path | str, dataset: str = "archive") -> None:
    """``extractall`` refusing absolute paths, ``..`` and links out of ``into`` (PEP 706)."""
    try:
        tf.extractall(into, filter="data")
    except TypeError:  # pragma: no cover - Python without PEP 706 (< 3.10.12 / 3.11.4)
        base = Path(into).resolve()
        for member in tf.getmembers():
            if not (base / member.name).resolve().is_relative_to(base) or member.issym() or member.islnk():
                raise DatasetCorrupt(
                    dataset, str(tf.name or "archive"), f"unsafe member {member.name!r}"
                ) from None
        tf.extractall(into)

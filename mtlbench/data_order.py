"""The order in which an episode sees its data: training batches per epoch, validation batches.

Both orders come from CPU generators seeded by the run seed alone (training: ``seed``;
validation: ``seed + 1_000_003``), so every method sees the same batches at the same seed
and comparisons are paired (docs/design.md, "The environment"). The training order of an
epoch is the dataset's shuffled ``batches`` (full batches only when the split allows, so
every step has the same batch size and representation-level Jacobians keep one shape),
cut at ``steps_per_epoch``. Validation batches (for ``val_losses`` / ``val_jacobian``
observations) cycle through shuffled passes of the validation split; the test split is
never touched.

:meth:`DataOrder.epoch_start_state` is what a checkpoint taken at an epoch boundary must
restore: the generators' and the global torch RNG's states before the epoch's permutation
was drawn.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch

from mtlbench.data.base import Batch, Splits

__all__ = ["DataOrder"]

#: offset of the validation generator's seed from the run seed
VAL_SEED_OFFSET = 1_000_003


class DataOrder:
    """The training and validation batch streams of one episode (built at ``reset``)."""

    def __init__(
        self,
        splits: Splits,
        *,
        seed: int,
        batch_size: int,
        steps_per_epoch: int,
        drop_last: bool,
        device: torch.device,
        num_workers: int = 0,
    ) -> None:
        self.splits = splits
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.drop_last = drop_last
        self.device = device
        self.num_workers = num_workers
        self._data_gen = torch.Generator().manual_seed(seed)
        self._val_gen = torch.Generator().manual_seed(seed + VAL_SEED_OFFSET)
        self._val_iter: Iterator[Batch] | None = None
        self.epoch_start_state: dict[str, Any] = {}

    def epoch(self) -> Iterator[Batch]:
        """The training batches of the next epoch (``steps_per_epoch`` of them at most)."""
        # RNG states at the start of the epoch, before its permutation is drawn: what a
        # checkpoint taken at this epoch boundary must restore.
        self._val_iter = None
        self.epoch_start_state = {
            "data_gen": self._data_gen.get_state(),
            "val_gen": self._val_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        it = self.splits.train.batches(
            self.batch_size,
            shuffle=True,
            generator=self._data_gen,
            drop_last=self.drop_last,
            device=self.device,
            num_workers=self.num_workers,
        )
        for i, batch in enumerate(it):
            if i >= self.steps_per_epoch:
                break
            yield batch

    def next_val_batch(self) -> Batch:
        """The next validation batch; a new shuffled pass starts when one ends."""
        while True:
            if self._val_iter is None:
                self._val_iter = self.splits.val.batches(
                    self.batch_size,
                    shuffle=True,
                    generator=self._val_gen,
                    drop_last=len(self.splits.val) > self.batch_size,  # type: ignore[arg-type]
                    device=self.device,
                )
            try:
                return next(self._val_iter)
            except StopIteration:
                self._val_iter = None

    def restore(self, state: Mapping[str, Any]) -> None:
        """Go back to the epoch boundary whose :attr:`epoch_start_state` ``state`` holds."""
        self._data_gen.set_state(state["data_gen"])
        self._val_gen.set_state(state["val_gen"])
        self._val_iter = None
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

"""XTREME's UD-POS score: seqeval's chunk F1 over POS tags, vectorised on the device.

The convention and its source are in the docstring of :mod:`mtlbench.evaluation.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from mtlbench.evaluation.metric_base import TaskMetric, _raise_if_bad_labels, _zeros

__all__ = ["UDPOS_LABELS", "TokenF1"]


# ------------------------------------------------------------------------------ token F1
#: XTREME's UD-POS label list: ``labels.txt`` is the sorted set of the 17 UPOS tags
#: (``scripts/preprocess_udpos.sh``) and ``utils_tag.get_labels`` puts ``"O"`` in front.
UDPOS_LABELS: tuple[str, ...] = (
    "O",
    "ADJ",
    "ADP",
    "ADV",
    "AUX",
    "CCONJ",
    "DET",
    "INTJ",
    "NOUN",
    "NUM",
    "PART",
    "PRON",
    "PROPN",
    "PUNCT",
    "SCONJ",
    "SYM",
    "VERB",
    "X",
)


def _seqeval_parts(label: str) -> tuple[str, str]:
    """seqeval's reading of a label (``suffix=False``): chunk tag letter and chunk type."""
    return label[0], label[1:].split("-", maxsplit=1)[-1] or "_"


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    # seqeval.metrics.sequence_labeling.end_of_chunk (conlleval's endOfChunk).
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    # seqeval.metrics.sequence_labeling.start_of_chunk (conlleval's startOfChunk).
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


class TokenF1(TaskMetric):
    """XTREME's tagging score (UD-POS): seqeval chunk F1 in percent (``f1``).

    ``pred``: logits ``(B, L, C)``; ``target``: ``(B, L)`` class ids, ``ignore_index`` where a
    position is not scored (XTREME labels only the first sub-word of each word). ``labels``
    maps class ids to tag strings, in the order of the dataset's label ids; the default is
    XTREME's UD-POS list :data:`UDPOS_LABELS`.

    Each row is one sentence. As in seqeval, the sentences of the split are concatenated with
    an ``"O"`` after each, chunks are read with conlleval's start/end rules (including its
    quirks: a chunk's start is the last position where a chunk started, which can lie in an
    earlier sentence), and ``F1 = 2 TP / (#gold chunks + #predicted chunks)``, where a true
    positive is a chunk with the same type, start and end in both. Positions are global over
    the split, so the chunk state is carried from one batch to the next: feed the batches
    in order.
    """

    names: ClassVar[tuple[str, ...]] = ("f1",)
    higher_is_better: ClassVar[dict[str, bool]] = {"f1": True}

    def __init__(self, ignore_index: int = -100, labels: Sequence[str] = UDPOS_LABELS) -> None:
        super().__init__()
        labels = tuple(labels)
        if not labels or not all(isinstance(s, str) and s for s in labels):
            raise ValueError(f"TokenF1: labels must be non-empty tag strings, got {labels!r}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"TokenF1: labels must be unique, got {labels!r}")
        if 0 <= ignore_index < len(labels):
            raise ValueError(f"TokenF1: ignore_index {ignore_index} collides with a label id")
        self.ignore_index = ignore_index
        self.labels = labels
        self._sep = len(labels)  # the "O" seqeval puts after each sentence
        self._bos = len(labels) + 1  # seqeval's initial state: tag "O", type ""
        parts = [*map(_seqeval_parts, labels), ("O", "_"), ("O", "")]
        type_ids = {t: i for i, t in enumerate(dict.fromkeys(t for _, t in parts))}
        n = len(parts)
        self._tables_cpu = (
            torch.tensor(
                [[_chunk_ends(pt, t, py, ty) for t, ty in parts] for pt, py in parts], dtype=torch.bool
            ).reshape(n, n),
            torch.tensor(
                [[_chunk_starts(pt, t, py, ty) for t, ty in parts] for pt, py in parts], dtype=torch.bool
            ).reshape(n, n),
            torch.tensor([type_ids[t] for _, t in parts], dtype=torch.int64),
        )
        self._tables: dict[torch.device, tuple[Tensor, Tensor, Tensor]] = {}
        self.reset()

    def _reset_state(self) -> None:
        self._offset = 0  # global position of the batch's first slot in the flattened split
        self._tp: Tensor | None = None
        self._n_gold: Tensor | None = None
        self._n_pred: Tensor | None = None
        self._bad: Tensor | None = None
        self._begin: dict[str, Tensor] = {}

    def _device_tables(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        # Copied once per device and kept across resets.
        if device not in self._tables:
            ends, starts, type_of = self._tables_cpu
            self._tables[device] = (ends.to(device), starts.to(device), type_of.to(device))
        return self._tables[device]

    def _chunks(
        self, lab: Tensor, valid: Tensor, prev_idx: Tensor, gpos: Tensor, carry: int, key: str
    ) -> tuple[Tensor, Tensor, Tensor]:
        """For each slot: does a chunk end just before it, its type and its start."""
        ends, starts, type_of = self._device_tables(lab.device)
        prev = torch.where(prev_idx >= 0, lab[prev_idx.clamp_min(0)], carry)
        end = ends[prev, lab] & valid
        start = starts[prev, lab] & valid
        last_start = torch.where(start, gpos, -1).cummax(dim=0).values
        carried = self._begin[key]
        begin = torch.maximum(torch.cat([carried.reshape(1), last_start[:-1]]), carried)
        self._begin[key] = torch.maximum(carried, last_start[-1])
        return end, type_of[prev], begin

    def _update(self, pred: Tensor, target: Tensor) -> None:
        c = len(self.labels)
        if pred.dim() != 3 or pred.shape[2] != c:
            raise ValueError(f"TokenF1: pred must be (B, L, {c}) logits, got {tuple(pred.shape)}")
        if tuple(target.shape) != tuple(pred.shape[:2]):
            raise ValueError(
                f"TokenF1: target must be {tuple(pred.shape[:2])} label ids, got {tuple(target.shape)}"
            )
        device = pred.device
        if self._tp is None or self._n_gold is None or self._n_pred is None or self._bad is None:
            self._tp, self._n_gold, self._n_pred, self._bad = (_zeros(device) for _ in range(4))
        b = target.shape[0]
        target = target.long()
        scored = target != self.ignore_index
        in_range = (target >= 0) & (target < c)
        self._bad += (scored & ~in_range).sum()
        # One extra slot per row holds the sentence-closing "O"; unscored slots stay in place
        # and are skipped (chunk positions keep their order, so matching is unchanged).
        sep = torch.full((b, 1), self._sep, dtype=torch.int64, device=device)
        gold = torch.cat([torch.where(in_range, target, self._sep), sep], dim=1).reshape(-1)
        guess = torch.cat([torch.where(in_range, pred.argmax(dim=2), self._sep), sep], dim=1).reshape(-1)
        valid = torch.cat([in_range, torch.ones((b, 1), dtype=torch.bool, device=device)], dim=1).reshape(-1)
        pos = torch.arange(valid.numel(), device=device)
        gpos = pos + self._offset
        last_valid = torch.where(valid, pos, -1).cummax(dim=0).values
        prev_idx = torch.cat([last_valid.new_full((1,), -1), last_valid[:-1]])
        if not self._begin:
            # seqeval starts with begin_offset 0: the first element of the flattened split.
            first = torch.where(valid, gpos, gpos.numel() + self._offset).amin()
            self._begin = {"gold": first, "pred": first.clone()}
        carry = self._bos if self._offset == 0 else self._sep  # each batch ends with an "O"
        end_g, type_g, begin_g = self._chunks(gold, valid, prev_idx, gpos, carry, "gold")
        end_p, type_p, begin_p = self._chunks(guess, valid, prev_idx, gpos, carry, "pred")
        self._n_gold += end_g.sum()
        self._n_pred += end_p.sum()
        # Both chunks end at the same (previous valid) position: compare type and start.
        self._tp += (end_g & end_p & (type_g == type_p) & (begin_g == begin_p)).sum()
        self._offset += valid.numel()

    def _compute(self) -> dict[str, float]:
        _raise_if_bad_labels("TokenF1", self._bad, f"[0, {len(self.labels)}) other than {self.ignore_index}")
        assert self._tp is not None and self._n_gold is not None and self._n_pred is not None
        tp = int(self._tp.item())
        total = int(self._n_gold.item()) + int(self._n_pred.item())
        # seqeval: precision or recall is 0 when undefined, and then F1 is 0.
        return {"f1": 200.0 * tp / total if tp > 0 else 0.0}

    def __repr__(self) -> str:
        return f"TokenF1(ignore_index={self.ignore_index}, labels={self.labels!r})"

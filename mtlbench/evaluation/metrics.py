"""Per-task metric accumulators of the frozen evaluator.

Each :class:`TaskMetric` accumulates sufficient statistics (sums, counts, a confusion
matrix, per-pixel angles) *on the device of the predictions* and reads them back to the host
only in :meth:`TaskMetric.compute`, once per evaluation: :meth:`TaskMetric.update` never
calls ``.item()``, ``.tolist()``, boolean-mask indexing, ``torch.bincount`` (which reads the
input's min and max back on CUDA) or anything else that waits for the device. Because only
sums and counts are kept, the result over a split does not depend on how it was cut into
batches (up to float64 rounding): no average of per-batch averages is ever taken.

Units (one convention for every env, as in the tables of Lin et al. 2022):

* accuracy-like metrics are in percent, 0-100: ``acc``, ``miou``, ``pix_acc``,
  ``within_11.25`` / ``within_22.5`` / ``within_30`` and ``f1``;
* errors are in their natural units: depth ``abs_err`` (metres in NYUv2) and ``rel_err``
  (a ratio), surface-normal ``mean_angle`` / ``median_angle`` in degrees, ``mae`` in the
  original units of the regression target.

Conventions and their sources:

* NYUv2 / CityScapes dense tasks follow MTAN (Liu, Johns, Davison, CVPR 2019; its
  ``ConfMatrix`` and ``depth_error`` / ``normal_error``) and LibMTL (Lin & Zhang 2023:
  ``SegMetric``, ``DepthMetric`` and ``NormalMetric`` in ``examples/nyu/utils.py``, on the
  base class ``AbsMetric`` of ``LibMTL/metrics.py``; checked at commit 4336804, May 2025):

  - segmentation: a confusion matrix over the whole split, ignore label ``-1``; mIoU is the
    mean IoU over classes. Unlike LibMTL (whose mean turns NaN when a class never occurs),
    a class absent from both the predictions and the targets of the split (union 0) is left
    out of the mean.
  - depth: missing depth is stored as 0 in the MTAN-preprocessed data, so valid pixels are
    ``target > 0``. The errors are pixel-weighted over the whole split. LibMTL stores
    per-batch means and weights each by ``pred.size()[0]`` taken after ``masked_select``,
    i.e. by the batch's number of valid pixels, so its split value is pixel-weighted too
    (equal to ours up to rounding); its mask ``sum(gt, dim=1) != 0`` is ``target != 0``.
  - surface normals: predictions are normalised to unit length; pixels whose target normal is
    all zero are invalid (LibMTL tests ``sum(target) != 0``, which would also drop a valid
    unit normal whose components sum to 0; we test "any component non-zero"). The angle is
    ``acos(clamp(<p, t>, -1, 1))`` in degrees; ``within_x`` counts angles strictly below
    ``x``; the median is ``numpy.median``'s (mean of the two middle values for an even
    count), over all valid pixels of the split.

* ``token_f1`` is the XTREME score for UD-POS tagging (Hu et al. 2020,
  ``google-research/xtreme``: ``evaluate.py`` and ``third_party/run_tag.py``):
  ``seqeval.metrics.f1_score(y_true, y_pred)`` in its default (conlleval-compatible,
  non-strict) mode, on per-sentence tag lists from which the positions labelled
  ``-100`` (sub-word continuations, special tokens, padding) are removed, times 100. seqeval
  reads POS tags as IOB chunk labels (first letter = chunk tag, the rest = chunk type), so
  the score is *not* token accuracy: e.g. a run ``NOUN NOUN`` is one chunk of type ``OUN``,
  and ``SCONJ`` / ``CCONJ`` share the type ``CONJ``. :class:`TokenF1` reproduces that
  chunking exactly (and vectorised), without depending on seqeval; the test suite checks it
  against seqeval when seqeval is installed.

* ``mae``: targets of regression tasks (QM9) are standardised with training-split
  statistics, so the model predicts in standard units; ``mae = mean|p - t| * scale`` with
  ``scale`` = the training standard deviation reports it in the original units (as in the
  QM9 tables of Nash-MTL, Navon et al. 2022).
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MAE",
    "METRICS",
    "UDPOS_LABELS",
    "Accuracy",
    "Depth",
    "Segmentation",
    "SurfaceNormal",
    "TaskMetric",
    "TokenF1",
    "build_metric",
]


class TaskMetric(ABC):
    """Accumulates one task's predictions over a split and reports its metrics.

    ``names`` lists the reported metrics in order; ``higher_is_better`` says, per name,
    which direction is better (delta_p and delta_m read it). Use as ``reset()``, any number
    of ``update(pred, target)``, then ``compute()``.
    """

    names: ClassVar[tuple[str, ...]]
    higher_is_better: ClassVar[dict[str, bool]]

    def __init__(self) -> None:
        self._updates = 0

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._updates = 0
        self._reset_state()

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Accumulate one batch; never waits for the device."""
        with torch.no_grad():
            self._update(pred.detach(), target.detach())
        self._updates += 1

    def compute(self) -> dict[str, float]:
        """The metrics over everything seen since the last reset (one host sync)."""
        if self._updates == 0:
            raise RuntimeError(f"{type(self).__name__}.compute() called before any update()")
        return self._compute()

    @abstractmethod
    def _reset_state(self) -> None: ...

    @abstractmethod
    def _update(self, pred: Tensor, target: Tensor) -> None: ...

    @abstractmethod
    def _compute(self) -> dict[str, float]: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# ------------------------------------------------------------------------------ helpers
def _zeros(device: torch.device, *shape: int, dtype: torch.dtype = torch.int64) -> Tensor:
    # Created by a fill kernel on the device (no host-to-device copy).
    return torch.zeros(shape, dtype=dtype, device=device)


def _ratio(num: float, den: float, metric: str, scale: float = 1.0) -> float:
    if den == 0:
        warnings.warn(f"{metric}: no valid element in the split; reporting NaN", stacklevel=3)
        return math.nan
    return scale * num / den


def _check_same_shape(metric: str, pred: Tensor, target: Tensor, expected: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"{metric}: pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the "
            f"same shape, {expected}"
        )


def _raise_if_bad_labels(metric: str, bad: Tensor | None, allowed: str) -> None:
    if bad is not None and int(bad.item()) > 0:
        raise ValueError(f"{metric}: {int(bad.item())} target labels outside {allowed}")


# ------------------------------------------------------------------------------ accuracy
class Accuracy(TaskMetric):
    """Classification accuracy in percent (``acc``).

    ``pred``: logits ``(B, C)``, the predicted class is the argmax; with ``binary=True``,
    logits ``(B,)`` or ``(B, 1)`` of the positive class, predicted positive when the logit is
    above 0 (probability above 0.5). ``target``: ``(B,)`` integer labels (``{0, 1}`` when
    binary). Labels outside ``[0, C)`` are an error, raised by :meth:`compute`.
    """

    names: ClassVar[tuple[str, ...]] = ("acc",)
    higher_is_better: ClassVar[dict[str, bool]] = {"acc": True}

    def __init__(self, binary: bool = False) -> None:
        super().__init__()
        self.binary = bool(binary)
        self.reset()

    def _reset_state(self) -> None:
        self._correct: Tensor | None = None
        self._total = 0
        self._bad: Tensor | None = None

    def _update(self, pred: Tensor, target: Tensor) -> None:
        if self.binary:
            if pred.dim() == 2 and pred.shape[1] == 1:
                pred = pred[:, 0]
            if pred.dim() != 1:
                raise ValueError(
                    f"Accuracy(binary=True): pred must be (B,) or (B, 1) logits, got {tuple(pred.shape)}"
                )
            guess = (pred > 0).long()
            n_classes = 2
        else:
            if pred.dim() != 2:
                raise ValueError(f"Accuracy: pred must be (B, C) logits, got {tuple(pred.shape)}")
            guess = pred.argmax(dim=1)
            n_classes = pred.shape[1]
        target = target.reshape(-1) if target.dim() == 2 and target.shape[1] == 1 else target
        if target.shape != guess.shape:
            raise ValueError(
                f"Accuracy: target must be ({guess.shape[0]},) labels for pred {tuple(pred.shape)}, "
                f"got {tuple(target.shape)}"
            )
        target = target.long()
        if self._correct is None or self._bad is None:
            self._correct = _zeros(pred.device)
            self._bad = _zeros(pred.device)
        self._correct += (guess == target).sum()
        self._bad += ((target < 0) | (target >= n_classes)).sum()
        self._total += target.numel()

    def _compute(self) -> dict[str, float]:
        _raise_if_bad_labels("Accuracy", self._bad, "{0, 1}" if self.binary else "[0, C)")
        assert self._correct is not None
        return {"acc": _ratio(float(self._correct.item()), self._total, "acc", 100.0)}

    def __repr__(self) -> str:
        return f"Accuracy(binary={self.binary})"


# ------------------------------------------------------------------------------ segmentation
class Segmentation(TaskMetric):
    """Semantic segmentation: mean IoU and pixel accuracy, in percent.

    ``pred``: logits ``(B, C, H, W)``; ``target``: ``(B, H, W)`` labels, ``ignore_index``
    (default ``-1``, the MTAN convention) marks unlabelled pixels. A ``C x C`` confusion
    matrix (rows: target, columns: prediction) is accumulated over the whole split.

    * ``miou``: mean over classes of ``TP / (TP + FP + FN)``, leaving out classes with
      ``TP + FP + FN == 0`` (absent from both predictions and targets of the split);
    * ``pix_acc``: correctly labelled pixels / labelled pixels.
    """

    names: ClassVar[tuple[str, ...]] = ("miou", "pix_acc")
    higher_is_better: ClassVar[dict[str, bool]] = {"miou": True, "pix_acc": True}

    def __init__(self, num_classes: int, ignore_index: int = -1) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"Segmentation: num_classes must be an int >= 2, got {num_classes!r}")
        if 0 <= ignore_index < num_classes:
            raise ValueError(
                f"Segmentation: ignore_index {ignore_index} collides with a class id in [0, {num_classes})"
            )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reset()

    def _reset_state(self) -> None:
        # One extra bin at the end collects unlabelled pixels: indexing them there instead of
        # masking them out keeps the shapes static, so nothing waits for the device.
        self._confusion: Tensor | None = None
        self._bad: Tensor | None = None

    def _update(self, pred: Tensor, target: Tensor) -> None:
        c = self.num_classes
        if pred.dim() != 4 or pred.shape[1] != c:
            raise ValueError(f"Segmentation: pred must be (B, {c}, H, W) logits, got {tuple(pred.shape)}")
        expected = (pred.shape[0], *pred.shape[2:])
        if tuple(target.shape) != expected:
            raise ValueError(f"Segmentation: target must be {expected} labels, got {tuple(target.shape)}")
        if self._confusion is None or self._bad is None:
            self._confusion = _zeros(pred.device, c * c + 1)
            self._bad = _zeros(pred.device)
        target = target.long().reshape(-1)
        guess = pred.argmax(dim=1).reshape(-1)
        labelled = target != self.ignore_index
        in_range = (target >= 0) & (target < c)
        self._bad += (labelled & ~in_range).sum()
        index = torch.where(in_range, target * c + guess, c * c)
        # Integer scatter-add: exact whatever the order of the atomic adds.
        self._confusion.scatter_add_(0, index, torch.ones_like(index))

    def _compute(self) -> dict[str, float]:
        _raise_if_bad_labels(
            "Segmentation", self._bad, f"[0, {self.num_classes}) other than ignore_index {self.ignore_index}"
        )
        assert self._confusion is not None
        c = self.num_classes
        cm = self._confusion[: c * c].reshape(c, c).to(torch.float64).cpu()
        tp = cm.diagonal()
        union = cm.sum(0) + cm.sum(1) - tp
        present = union > 0
        total = float(cm.sum().item())
        if not bool(present.any()):
            miou = _ratio(0.0, 0.0, "miou")
        else:
            miou = 100.0 * float((tp[present] / union[present]).mean().item())
        return {"miou": miou, "pix_acc": _ratio(float(tp.sum().item()), total, "pix_acc", 100.0)}

    def __repr__(self) -> str:
        return f"Segmentation(num_classes={self.num_classes}, ignore_index={self.ignore_index})"


# ------------------------------------------------------------------------------ depth
class Depth(TaskMetric):
    """Depth estimation errors over valid pixels (``target > 0``), lower is better.

    ``pred`` and ``target``: ``(B, 1, H, W)``. Missing depth is 0 in the MTAN-preprocessed
    NYUv2 / CityScapes data (MTAN, LibMTL). Over all valid pixels ``n`` of the split:
    ``abs_err = sum|p - t| / n`` and ``rel_err = sum(|p - t| / t) / n``.
    """

    names: ClassVar[tuple[str, ...]] = ("abs_err", "rel_err")
    higher_is_better: ClassVar[dict[str, bool]] = {"abs_err": False, "rel_err": False}

    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def _reset_state(self) -> None:
        self._abs: Tensor | None = None
        self._rel: Tensor | None = None
        self._count: Tensor | None = None

    def _update(self, pred: Tensor, target: Tensor) -> None:
        _check_same_shape("Depth", pred, target, "(B, 1, H, W)")
        if self._abs is None or self._rel is None or self._count is None:
            self._abs = _zeros(pred.device, dtype=torch.float64)
            self._rel = _zeros(pred.device, dtype=torch.float64)
            self._count = _zeros(pred.device)
        pred, target = pred.float(), target.float()
        valid = target > 0
        err = (pred - target).abs()
        self._abs += torch.where(valid, err, 0.0).sum(dtype=torch.float64)
        # where() before the division would not stop 0/0 from being computed, only from being used.
        self._rel += torch.where(valid, err / torch.where(valid, target, 1.0), 0.0).sum(dtype=torch.float64)
        self._count += valid.sum()

    def _compute(self) -> dict[str, float]:
        assert self._abs is not None and self._rel is not None and self._count is not None
        n = int(self._count.item())
        return {
            "abs_err": _ratio(float(self._abs.item()), n, "abs_err"),
            "rel_err": _ratio(float(self._rel.item()), n, "rel_err"),
        }


# ------------------------------------------------------------------------------ surface normal
class SurfaceNormal(TaskMetric):
    """Surface-normal angular errors in degrees over valid pixels.

    ``pred``: ``(B, 3, H, W)``, normalised to unit length here; ``target``: ``(B, 3, H, W)``
    unit normals, all-zero where there is no ground truth (invalid pixel). Reports the mean
    and the median angle (lower is better) and the percentage of valid pixels with an angle
    strictly below 11.25, 22.5 and 30 degrees (higher is better).

    The median is exact: the per-pixel angles of every batch are kept on the device as
    float32 (invalid pixels as +inf), i.e. 4 bytes per pixel of the split: about 290 MB for
    NYUv2's 654 test images of 288 x 384 (plus as much again, briefly, in :meth:`compute`).
    """

    THRESHOLDS: ClassVar[tuple[float, ...]] = (11.25, 22.5, 30.0)
    names: ClassVar[tuple[str, ...]] = (
        "mean_angle",
        "median_angle",
        "within_11.25",
        "within_22.5",
        "within_30",
    )
    higher_is_better: ClassVar[dict[str, bool]] = {
        "mean_angle": False,
        "median_angle": False,
        "within_11.25": True,
        "within_22.5": True,
        "within_30": True,
    }

    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def _reset_state(self) -> None:
        self._angles: list[Tensor] = []
        self._sum: Tensor | None = None
        self._count: Tensor | None = None
        self._within: Tensor | None = None

    def _update(self, pred: Tensor, target: Tensor) -> None:
        _check_same_shape("SurfaceNormal", pred, target, "(B, 3, H, W)")
        if pred.dim() < 2 or pred.shape[1] != 3:
            raise ValueError(f"SurfaceNormal: pred must be (B, 3, H, W), got {tuple(pred.shape)}")
        if self._sum is None or self._count is None or self._within is None:
            self._sum = _zeros(pred.device, dtype=torch.float64)
            self._count = _zeros(pred.device)
            self._within = _zeros(pred.device, len(self.THRESHOLDS))
        target = target.float()
        cos = (F.normalize(pred.float(), dim=1) * target).sum(dim=1).clamp(-1.0, 1.0)
        angle = torch.rad2deg(torch.acos(cos))
        valid = (target != 0).any(dim=1)
        angle = torch.where(valid, angle, math.inf).reshape(-1)
        self._angles.append(angle)
        self._sum += torch.where(valid.reshape(-1), angle, 0.0).sum(dtype=torch.float64)
        self._count += valid.sum()
        # +inf (invalid) is never below a threshold.
        self._within += torch.stack([(angle < thr).sum() for thr in self.THRESHOLDS])

    def _compute(self) -> dict[str, float]:
        assert self._sum is not None and self._count is not None and self._within is not None
        n = int(self._count.item())
        out = {
            "mean_angle": _ratio(float(self._sum.item()), n, "mean_angle"),
            "median_angle": math.nan,
        }
        for thr, count in zip(self.THRESHOLDS, self._within.tolist()):
            out[f"within_{thr:g}"] = _ratio(count, n, f"within_{thr:g}", 100.0)
        if n > 0:
            angles = torch.cat(self._angles)
            lo = angles.kthvalue((n + 1) // 2).values
            hi = angles.kthvalue(n // 2 + 1).values
            out["median_angle"] = float(((lo.double() + hi.double()) / 2).item())
        return {name: out[name] for name in self.names}


# ------------------------------------------------------------------------------ MAE
class MAE(TaskMetric):
    """Mean absolute error in the target's original units: ``mean|p - t| * scale``.

    ``pred`` and ``target``: ``(B,)`` or ``(B, 1)``. Regression targets are standardised with
    training-split statistics, so ``scale`` is the training standard deviation of the target.
    """

    names: ClassVar[tuple[str, ...]] = ("mae",)
    higher_is_better: ClassVar[dict[str, bool]] = {"mae": False}

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        scale = float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"MAE: scale must be a finite positive number, got {scale!r}")
        self.scale = scale
        self.reset()

    def _reset_state(self) -> None:
        self._sum: Tensor | None = None
        self._count = 0

    def _update(self, pred: Tensor, target: Tensor) -> None:
        if pred.dim() == 2 and pred.shape[1] == 1:
            pred = pred[:, 0]
        if target.dim() == 2 and target.shape[1] == 1:
            target = target[:, 0]
        if pred.dim() != 1 or pred.shape != target.shape:
            raise ValueError(
                f"MAE: pred and target must both be (B,) or (B, 1), got {tuple(pred.shape)} and "
                f"{tuple(target.shape)}"
            )
        if self._sum is None:
            self._sum = _zeros(pred.device, dtype=torch.float64)
        self._sum += (pred.double() - target.double()).abs().sum()
        self._count += pred.numel()

    def _compute(self) -> dict[str, float]:
        assert self._sum is not None
        return {"mae": _ratio(float(self._sum.item()), self._count, "mae", self.scale)}

    def __repr__(self) -> str:
        return f"MAE(scale={self.scale!r})"


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


# ------------------------------------------------------------------------------ registry
METRICS: dict[str, type[TaskMetric]] = {
    "accuracy": Accuracy,
    "segmentation": Segmentation,
    "depth": Depth,
    "normal": SurfaceNormal,
    "mae": MAE,
    "token_f1": TokenF1,
}


def build_metric(kind: str, **kwargs: Any) -> TaskMetric:
    """A fresh metric accumulator of the given kind (a key of :data:`METRICS`)."""
    if kind not in METRICS:
        raise ValueError(f"unknown metric kind {kind!r}; known kinds: {', '.join(sorted(METRICS))}")
    try:
        return METRICS[kind](**kwargs)
    except TypeError as exc:
        raise TypeError(
            f"metric kind {kind!r} ({METRICS[kind].__name__}): bad arguments {kwargs}: {exc}"
        ) from exc

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
from typing import Any, ClassVar

import torch
from torch import Tensor

from mtlbench.evaluation.dense_metrics import Depth, Segmentation, SurfaceNormal
from mtlbench.evaluation.metric_base import (
    TaskMetric,
    _raise_if_bad_labels,
    _ratio,
    _zeros,
)
from mtlbench.evaluation.token_f1 import UDPOS_LABELS, TokenF1

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

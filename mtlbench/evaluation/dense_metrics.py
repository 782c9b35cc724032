"""Dense-prediction metrics of NYUv2 and CityScapes: segmentation, depth, surface normals.

Conventions and sources: :mod:`mtlbench.evaluation.metrics` (MTAN and LibMTL).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from mtlbench.evaluation.metric_base import (
    TaskMetric,
    _check_same_shape,
    _raise_if_bad_labels,
    _ratio,
    _zeros,
)

__all__ = ["Depth", "Segmentation", "SurfaceNormal"]


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

"""Task specs several env families share (one builder per kind of task)."""

from __future__ import annotations

from mtlbench.registration import MetricSpec, TaskSpec

__all__ = ["classification_task", "depth_task", "regression_task", "segmentation_task"]


def classification_task(name: str) -> TaskSpec:
    """A classification task: cross-entropy loss, accuracy (percent, higher is better)."""
    return TaskSpec(
        name=name,
        type="classification",
        loss="cross_entropy",
        metric="accuracy",
        metrics=(MetricSpec("acc", higher_is_better=True),),
    )


def segmentation_task(num_classes: int) -> TaskSpec:
    """Semantic segmentation (NYUv2, CityScapes): cross-entropy, mIoU and pixel accuracy."""
    return TaskSpec(
        name="segmentation",
        type="segmentation",
        loss="cross_entropy",
        metric="segmentation",
        metrics=(MetricSpec("miou", higher_is_better=True), MetricSpec("pix_acc", higher_is_better=True)),
        metric_kwargs={"num_classes": num_classes},
    )


def depth_task() -> TaskSpec:
    """Depth estimation (NYUv2, CityScapes): L1 loss on valid pixels, absolute and relative error."""
    return TaskSpec(
        name="depth",
        type="depth",
        loss="depth_l1",
        metric="depth",
        metrics=(
            MetricSpec("abs_err", higher_is_better=False),
            MetricSpec("rel_err", higher_is_better=False),
        ),
    )


def regression_task(name: str, scale: float) -> TaskSpec:
    """A regression target (QM9): MSE on the standardised target, MAE scaled back by ``scale``.

    The model predicts standardised targets; ``scale`` is the training standard deviation, so
    the MAE is in the target's original units (:data:`mtlbench.data.qm9.UNITS`).
    """
    return TaskSpec(
        name=name,
        type="regression",
        loss="mse",
        metric="mae",
        metrics=(MetricSpec("mae", higher_is_better=False),),
        metric_kwargs={"scale": scale},
    )

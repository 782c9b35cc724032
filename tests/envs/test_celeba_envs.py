"""celeba-hps-v1 on a tiny fixture in the torchvision layout (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mtlbench
from mtlbench.data import DatasetNotFound
from mtlbench.data.celeba import ATTRIBUTES
from mtlbench.policies.base import GradientWeights
from tests.data.vision_fixtures import write_celeba

TINY = {
    "dataset.kwargs.image_size": 16,
    "dataset.kwargs.check_manifest": False,  # a fixture is not the official release
    "optimizer.batch_size": 4,
    "budget.epochs": 1,
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("celeba-env")
    write_celeba(r, {"train": 12, "val": 3, "test": 3})
    return r


def test_spec_follows_the_paper() -> None:
    spec = mtlbench.spec("celeba-hps")
    assert spec.id == "celeba-hps-v1"
    assert spec.task_names == ATTRIBUTES and len(spec.tasks) == 40
    assert {(t.loss, t.metric) for t in spec.tasks} == {("cross_entropy", "accuracy")}
    assert spec.dataset.kwargs["image_size"] == 64 and spec.model.kwargs["num_classes"] == 2
    assert (spec.optimizer.name, spec.optimizer.lr, spec.optimizer.batch_size) == ("adam", 1e-3, 512)
    assert spec.dataset.split_sizes == {"train": 162_770, "val": 19_867, "test": 19_962}


def test_steps_with_loss_weights(root: Path) -> None:
    env = mtlbench.make("celeba-hps", data_root=str(root), device="cpu", overrides=TINY)
    obs, info = env.reset(seed=0)
    assert obs["losses"].shape == (40,) and info["steps_per_epoch"] == 3
    for _ in range(2):
        obs, _, terminated, truncated, _ = env.step(torch.ones(40))
        assert torch.isfinite(obs["losses"]).all() and not terminated and not truncated


def test_steps_with_gradient_weights_and_evaluates(root: Path) -> None:
    env = mtlbench.make(
        "celeba-hps",
        data_root=str(root),
        device="cpu",
        overrides=TINY,
        observe=("gramian",),
        wrt="representation",
    )
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        obs, *_ = env.step(GradientWeights(torch.ones(40)))
    assert obs["gramian"].shape == (40, 40)
    result = env.evaluate("test")
    assert set(result) == set(ATTRIBUTES)
    assert all(0 <= m["acc"] <= 100 for m in result.values())


def test_missing_data_fails_at_make(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match="celeba"):
        mtlbench.make("celeba-hps", data_root=str(tmp_path), device="cpu")

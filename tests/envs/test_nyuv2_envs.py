"""The NYUv2 envs end to end on a tiny fixture: make, reset, two steps, evaluate (tiny backbone)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

import mtlbench
from mtlbench.data.base import DatasetNotFound
from mtlbench.policies.base import GradientWeights

ARCHS = ("hps", "cross_stitch", "mtan", "nddr")
METRICS = {
    "segmentation": {"miou", "pix_acc"},
    "depth": {"abs_err", "rel_err"},
    "normal": {"mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30"},
}
TINY = {
    "dataset.kwargs.val_ids": [1, 4],
    "dataset.kwargs.limit": 4,
    "budget.epochs": 1,
    "optimizer.batch_size": 2,
    "model.backbone": "tiny_resnet_dilated_aspp",
    "model.kwargs.pretrained": False,
    "model.kwargs.image_size": [32, 48],
}


def _fixtures():
    name = "mtlbench_tests_dense_fixtures"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "data" / "dense_fixtures.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nyuv2-data")
    _fixtures().write_nyuv2(root)  # 6 train + 3 test at 32x48
    return root


def _check_evaluation(result: dict) -> None:
    assert {t: set(m) for t, m in result.items()} == METRICS
    assert all(isinstance(v, float) for m in result.values() for v in m.values())


@pytest.mark.parametrize("arch", ARCHS)
def test_equal_weights_two_steps_and_evaluate(arch: str, data_root: Path) -> None:
    env = mtlbench.make(f"nyuv2-{arch}", data_root=str(data_root), device="cpu", overrides=TINY)
    assert env.official is False and env.steps_per_epoch == 2
    obs, info = env.reset(seed=0)
    assert obs["losses"].shape == (3,) and torch.isfinite(obs["losses"]).all()
    obs, _, terminated, truncated, info = env.step(torch.ones(3))
    assert not (terminated or truncated)
    obs, _, terminated, truncated, info = env.step(torch.ones(3))
    assert truncated and not terminated
    _check_evaluation(info["evaluation"]["val"])
    _check_evaluation(env.evaluate("test"))
    env.close()


@pytest.mark.parametrize("arch", ARCHS)
def test_gradient_weights_with_the_gramian(arch: str, data_root: Path) -> None:
    # HPS has a shared representation; the others are parameter-level only.
    wrt = "representation" if arch == "hps" else "parameters"
    env = mtlbench.make(
        f"nyuv2-{arch}", data_root=str(data_root), device="cpu", overrides=TINY, observe=("gramian",), wrt=wrt
    )
    obs, _ = env.reset(seed=1)
    for _ in range(2):
        gram = obs["gramian"]
        assert gram.shape == (3, 3) and torch.isfinite(gram).all()
        assert (gram.diagonal() > 0).all()
        obs, _, terminated, truncated, info = env.step(GradientWeights(torch.ones(3)))
        assert not terminated
    assert truncated
    _check_evaluation(env.evaluate("test"))


def test_representation_level_is_refused_without_a_shared_representation(data_root: Path) -> None:
    env = mtlbench.make(
        "nyuv2-mtan", data_root=str(data_root), device="cpu", overrides=TINY, wrt="representation"
    )
    with pytest.raises(ValueError, match="no shared representation"):
        env.reset(seed=0)


def test_missing_dataset_fails_first_with_the_prepare_command(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match="mtlbench data prepare nyuv2"):
        mtlbench.make("nyuv2-hps", data_root=str(tmp_path), device="cpu")


def test_registered_protocol() -> None:
    for arch in ARCHS:
        spec = mtlbench.spec(f"nyuv2-{arch}-v1")
        assert spec.task_names == ("segmentation", "depth", "normal")
        assert {t.name: {m.name for m in t.metrics} for t in spec.tasks} == METRICS
        assert spec.tasks[0].metric_kwargs["num_classes"] == 13
        assert [t.loss for t in spec.tasks] == ["cross_entropy", "depth_l1", "normal_cosine"]
        assert spec.model.architecture == arch and spec.model.backbone == "resnet50_dilated_aspp"
        assert dict(spec.model.kwargs) == {"pretrained": "IMAGENET1K_V1", "image_size": [288, 384]}
        opt = spec.optimizer
        assert (opt.name, opt.lr, opt.weight_decay, opt.batch_size) == ("adam", 1e-4, 1e-5, 8)
        assert opt.scheduler == "step" and dict(opt.scheduler_kwargs) == {"step_size": 100, "gamma": 0.5}
        assert spec.budget.epochs == 200
        assert spec.higher_is_better["normal"]["within_30"] is True
        assert spec.higher_is_better["depth"]["abs_err"] is False

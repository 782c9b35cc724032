"""The CityScapes env end to end on a tiny fixture: make, reset, two steps, evaluate (tiny backbone)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

import mtlbench
from mtlbench import policies
from mtlbench.data.base import DatasetNotFound
from mtlbench.harness.train import env_kwargs_for
from mtlbench.policies.base import GradientWeights

METRICS = {"segmentation": {"miou", "pix_acc"}, "depth": {"abs_err", "rel_err"}}
TINY = {
    "dataset.kwargs.val_ids": [0, 5],
    "dataset.kwargs.limit": 4,
    "budget.epochs": 1,
    "optimizer.batch_size": 2,
    "model.backbone": "tiny_resnet_dilated_aspp",
    "model.kwargs.pretrained": False,
    "model.kwargs.image_size": [32, 64],
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
    root = tmp_path_factory.mktemp("cityscapes-data")
    _fixtures().write_cityscapes(root)  # 6 train + 3 test at 32x64
    return root


def _check_evaluation(result: dict) -> None:
    assert {t: set(m) for t, m in result.items()} == METRICS


def test_equal_weights_two_steps_and_evaluate(data_root: Path) -> None:
    env = mtlbench.make("cityscapes-hps", data_root=str(data_root), device="cpu", overrides=TINY)
    obs, _ = env.reset(seed=0)
    assert obs["losses"].shape == (2,)
    env.step(torch.ones(2))
    _, _, terminated, truncated, info = env.step(torch.ones(2))
    assert truncated and not terminated
    _check_evaluation(info["evaluation"]["test"])
    _check_evaluation(env.evaluate("test"))


def test_gradient_weights_on_the_representation(data_root: Path) -> None:
    env = mtlbench.make(
        "cityscapes-hps",
        data_root=str(data_root),
        device="cpu",
        overrides=TINY,
        observe=("gramian",),
        wrt="representation",
    )
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        assert obs["gramian"].shape == (2, 2) and torch.isfinite(obs["gramian"]).all()
        obs, _, terminated, truncated, _ = env.step(GradientWeights(torch.ones(2)))
        assert not terminated
    assert truncated
    _check_evaluation(env.evaluate("test"))


def test_rotograd_rotates_the_feature_map_channels(data_root: Path) -> None:
    # The HPS representation here is a (B, C, H, W) map: RotoGrad's rotations act on its
    # channel axis (representation_dim) and its Jacobian arrives flattened channels-first.
    policy = policies.make("rotograd", lr=0.01)
    env = mtlbench.make(
        "cityscapes-hps", data_root=str(data_root), device="cpu", overrides=TINY, **env_kwargs_for(policy)
    )
    result = mtlbench.train(env, policy, seed=0)
    assert result.status == "ok", result.message
    assert policy.adapters is not None
    for adapter in policy.adapters:
        assert adapter.dim == env.representation_dim() and adapter.spatial > 1
        r = adapter.matrix().detach()
        assert not torch.allclose(r, torch.eye(adapter.dim))  # the rotations were trained
        torch.testing.assert_close(r @ r.T, torch.eye(adapter.dim), atol=1e-5, rtol=0)


def test_missing_dataset_fails_first_with_the_prepare_command(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match="mtlbench data prepare cityscapes"):
        mtlbench.make("cityscapes-hps", data_root=str(tmp_path), device="cpu")


def test_registered_protocol() -> None:
    spec = mtlbench.spec("cityscapes-hps-v1")
    assert spec.task_names == ("segmentation", "depth")
    assert {t.name: {m.name for m in t.metrics} for t in spec.tasks} == METRICS
    assert spec.tasks[0].metric_kwargs["num_classes"] == 7
    assert spec.model.backbone == "resnet50_dilated_aspp" and spec.model.architecture == "hps"
    assert dict(spec.model.kwargs) == {"pretrained": "IMAGENET1K_V1", "image_size": [128, 256]}
    opt = spec.optimizer
    assert (opt.lr, opt.weight_decay, opt.batch_size, opt.scheduler) == (1e-4, 1e-5, 64, "step")
    assert spec.budget.epochs == 200

"""qm9-hps-v1: the registered protocol, and short episodes on a tiny unofficial variant.

The tiny variant keeps the first 32 molecules of each split (``dataset.kwargs.limit``, which
parses only those rows, so no full parse is needed) and shrinks the MPNN; batch 120 then
means one step per epoch, so every step also evaluates val and test.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium
import pytest
import torch

import mtlbench
from mtlbench.data import qm9
from mtlbench.policies.base import GradientWeights
from mtlbench.registration import BenchmarkSpec

ENV_ID = "qm9-hps-v1"
TINY = {
    "dataset.kwargs.limit": 32,
    "model.kwargs.dim": 16,
    "model.kwargs.edge_hidden": 8,
    "model.kwargs.num_rbf": 12,
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


def tiny(data_root: Path, **kwargs: object) -> mtlbench.env.MTLEnv:  # type: ignore[name-defined]
    return mtlbench.make(ENV_ID, device="cpu", data_root=str(data_root), overrides=dict(TINY), **kwargs)


def test_registered_protocol() -> None:
    spec = mtlbench.spec(ENV_ID)
    assert spec.task_names == qm9.TASKS
    for task in spec.tasks:
        assert (task.type, task.loss, task.metric) == ("regression", "mse", "mae")
        assert [(m.name, m.higher_is_better) for m in task.metrics] == [("mae", False)]
        # MAE in original units: the scale is the published training std of that target
        assert task.metric_kwargs == {"scale": qm9.TARGET_STD[task.name]}
    assert spec.dataset.name == "qm9" and spec.dataset.revision == qm9.REVISION
    assert dict(spec.dataset.split_manifest_sha256) == qm9.SPLIT_SHA256
    assert dict(spec.dataset.split_sizes) == {"train": 110_831, "val": 10_000, "test": 10_000}
    assert (spec.model.architecture, spec.model.backbone) == ("hps", "mpnn")
    assert spec.model.kwargs["dim"] == 64 and spec.model.kwargs["steps"] == 3
    opt = spec.optimizer
    assert (opt.name, opt.lr, opt.batch_size, opt.scheduler) == ("adam", 1e-3, 120, "step")
    assert dict(opt.scheduler_kwargs) == {"step_size": 25, "gamma": 0.7}
    assert (spec.budget.epochs, spec.budget.eval_every_epochs) == (300, 1)
    assert BenchmarkSpec.from_dict(json.loads(spec.to_json())) == spec
    assert f"mtlbench/{ENV_ID}" in gymnasium.registry


def test_loss_weights_two_steps_and_test_evaluation(data_root: Path) -> None:
    env = tiny(data_root)
    assert env.official is False and env.num_tasks == 11
    obs, info = env.reset(seed=0)
    assert obs["losses"].shape == (11,) and bool(torch.isfinite(obs["losses"]).all())
    assert info["steps_per_epoch"] == 1
    for step in range(2):
        obs, _, terminated, truncated, info = env.step(torch.ones(11))
        assert not terminated and not truncated
        assert info["step"] == step and set(info["evaluation"]["test"]) == set(qm9.TASKS)
    test = env.evaluate("test")
    assert set(test) == set(qm9.TASKS)
    assert all(set(m) == {"mae"} and m["mae"] > 0 and m["mae"] < float("inf") for m in test.values())


def test_mae_is_reported_in_original_units(data_root: Path) -> None:
    env = tiny(data_root)
    env.reset(seed=1)
    reported = env.evaluate("test")
    split = env.splits.test
    with torch.no_grad():
        out = env.model(split.inputs)
    for task in qm9.TASKS:
        err = (out[task].reshape(-1).double() - split.targets[task].double()).abs().mean()
        assert reported[task]["mae"] == pytest.approx(float(err) * qm9.TARGET_STD[task], rel=1e-5)


def test_gradient_weights_on_the_representation_gramian(data_root: Path) -> None:
    env = tiny(data_root, observe=("gramian",), wrt="representation")
    obs, _ = env.reset(seed=0)
    gram = obs["gramian"]
    assert gram.shape == (11, 11)
    assert torch.allclose(gram, gram.T, atol=1e-6)
    assert float(torch.linalg.eigvalsh(gram.double()).min()) > -1e-6
    for _ in range(2):
        obs, _, terminated, truncated, _ = env.step(GradientWeights(torch.ones(11)))
        assert not terminated and not truncated and obs["gramian"].shape == (11, 11)
    grad_level = env.evaluate("test")
    # equal gradient weights and unweighted heads are exactly equal loss weights
    loss_level = tiny(data_root)
    loss_level.reset(seed=0)
    for _ in range(2):
        loss_level.step(torch.ones(11))
    expected = loss_level.evaluate("test")
    for task in qm9.TASKS:
        assert grad_level[task]["mae"] == pytest.approx(expected[task]["mae"], rel=1e-4)

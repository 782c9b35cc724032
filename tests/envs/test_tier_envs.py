"""The offline tier (issue 12): four registered envs, each trains end to end on a tiny variant.

The tiny variants keep a few samples per split (``dataset.kwargs.limit``) and two epochs, so
each test takes a few seconds; the registered protocols are checked field by field.
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

import mtlbench
from mtlbench.cli import main
from mtlbench.data import digit_attributes, digit_domains, multimnist, qm9_small
from mtlbench.envs.multimnist import multimnist_spec
from mtlbench.envs.tier import OFFLINE_TIER
from mtlbench.harness.train import env_kwargs_for, train
from mtlbench.policies import make as make_policy

TINY: dict[str, dict[str, object]] = {
    "multimnist-hps-v2": {"dataset.kwargs.limit": 64, "optimizer.batch_size": 16},
    "digit-attributes-hps-v1": {"dataset.kwargs.limit": 64, "optimizer.batch_size": 16},
    "digit-domains-hps-v1": {"dataset.kwargs.limit": 24, "optimizer.batch_size": 8},
    "qm9-small-hps-v1": {"dataset.kwargs.limit": 64, "optimizer.batch_size": 16},
}
SPLIT_SHA256 = {
    "multimnist-hps-v2": multimnist.SPLIT_SHA256,
    "digit-attributes-hps-v1": digit_attributes.SPLIT_SHA256,
    "digit-domains-hps-v1": digit_domains.SPLIT_SHA256,
    "qm9-small-hps-v1": qm9_small.SPLIT_SHA256,
}


def test_tier_lists_four_registered_envs(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(OFFLINE_TIER) == set(TINY) and len(OFFLINE_TIER) == 4
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for env_id in OFFLINE_TIER:
        assert env_id in out
        assert mtlbench.spec(env_id).superseded_by is None


def test_tier_protocols() -> None:
    for env_id in OFFLINE_TIER:
        spec = mtlbench.spec(env_id)
        # the budget rule compares a budget with 3x it inside one run: no learning-rate schedule
        assert spec.optimizer.scheduler is None, env_id
        assert spec.budget.eval_every_epochs == 1 and spec.budget.steps_per_epoch is None
        assert dict(spec.dataset.split_manifest_sha256) == SPLIT_SHA256[env_id]
        # the spec pins the same hashes the data module checks on load
        splits = mtlbench.make(env_id, device="cpu", overrides=TINY[env_id]).splits
        assert splits.manifest == SPLIT_SHA256[env_id]
    attrs = mtlbench.spec("digit-attributes-hps-v1")
    assert attrs.task_names == digit_attributes.ATTRIBUTES and len(attrs.task_names) >= 10
    domains = mtlbench.spec("digit-domains-hps-v1")
    assert domains.task_names == digit_domains.DOMAINS and domains.model.kwargs["multi_input"] is True
    qm9s = mtlbench.spec("qm9-small-hps-v1")
    assert qm9s.task_names == qm9_small.TASKS
    assert {t.name: dict(t.metric_kwargs) for t in qm9s.tasks} == {
        t: {"scale": qm9_small.TARGET_STD[t]} for t in qm9_small.TASKS
    }
    assert qm9s.stl_reference is not None and set(qm9s.stl_reference) == set(qm9_small.TASKS)
    assert all(set(m) == {"mae"} and m["mae"] > 0 for m in qm9s.stl_reference.values())


@pytest.mark.parametrize("env_id", sorted(TINY))
@pytest.mark.parametrize("method", ["ew", "rgw"])
def test_tier_env_trains_end_to_end(env_id: str, method: str) -> None:
    policy = make_policy(method)
    overrides = {**TINY[env_id], "budget.epochs": 2}
    env = mtlbench.make(env_id, device="cpu", overrides=overrides, **env_kwargs_for(policy))
    result = train(env, policy, seed=0)
    assert result.status == "ok", result.message
    assert [ev.epoch for ev in result.evaluations] == [1, 2]
    assert result.selected is not None and set(result.selected.test) == set(env.task_names)
    for task, metrics in result.selected.test.items():
        assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values()), (task, metrics)


def test_same_seed_gives_identical_runs() -> None:
    for env_id in ("digit-domains-hps-v1", "qm9-small-hps-v1"):
        runs = [
            train(
                mtlbench.make(env_id, device="cpu", overrides={**TINY[env_id], "budget.epochs": 1}),
                make_policy("rlw"),
                seed=3,
            )
            for _ in range(2)
        ]
        assert runs[0].selected == runs[1].selected


def test_multimnist_v1_is_superseded_by_v2_and_keeps_its_hash() -> None:
    """Marking v1 superseded must not change its spec hash (stored v1 results stay valid)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        v1 = mtlbench.spec("multimnist-hps-v1")
    assert v1.superseded_by == "multimnist-hps-v2"
    assert v1.hash == multimnist_spec(1, 10).hash == "cc5cbbb196c2dfec"
    with pytest.warns(DeprecationWarning, match="superseded by multimnist-hps-v2"):
        mtlbench.spec("multimnist-hps-v1")
    v2 = mtlbench.spec("multimnist-hps")
    assert v2.id == "multimnist-hps-v2" and v2.budget.epochs > v1.budget.epochs
    # the protocol is otherwise the same
    assert (v2.dataset, v2.tasks, v2.model, v2.optimizer) == (v1.dataset, v1.tasks, v1.model, v1.optimizer)


def test_qm9_small_stl_reference_is_the_mean_of_the_recorded_runs() -> None:
    """The spec's reference is the mean test MAE of the single-task runs recorded in docs/."""
    import json
    import statistics
    from pathlib import Path

    record = json.loads((Path(__file__).parents[2] / "docs/envs/qm9-small-stl-reference.json").read_text())
    spec = mtlbench.spec("qm9-small-hps-v1")
    assert spec.stl_reference is not None
    assert (
        record["provenance"]["spec_hash_without_reference"]
        == dataclasses.replace(spec, stl_reference=None).hash
    )
    for task in qm9_small.TASKS:
        maes = [r["test"]["mae"] for r in record["runs"] if r["task"] == task]
        assert len(maes) == 3
        assert spec.stl_reference[task]["mae"] == pytest.approx(statistics.fmean(maes), rel=1e-12)

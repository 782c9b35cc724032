"""pawsx-hps-v1 and udpos-hps-v1 on tiny PAWS-X / CoNLL-U fixtures with a tiny BERT (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mtlbench
from mtlbench.data import DatasetNotFound
from mtlbench.data.xtreme import LABELS
from mtlbench.policies.base import GradientWeights
from tests.data.text_fixtures import vocabulary, write_pawsx, write_udpos, write_vocab

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("xtreme-env")
    write_pawsx(r, counts={"train": 12, "val": 4, "test": 3})
    # equal test sizes per language: no language runs out during evaluation (see below)
    write_udpos(r, treebanks={"en": ["ewt"], "zh": ["gsd"], "te": ["mtg"], "vi": ["vtb"]})
    write_vocab(r / "vocab.txt")
    return r


def tiny(root: Path) -> dict[str, object]:
    return {
        "dataset.kwargs.tokenizer": str(root / "vocab.txt"),
        "dataset.kwargs.max_length": 24,
        "model.kwargs.pretrained": False,
        "model.kwargs.tiny": True,
        "model.kwargs.config_overrides": {"vocab_size": len(vocabulary())},
        "optimizer.batch_size": 2,
        "budget.epochs": 1,
    }


def test_specs_follow_the_paper() -> None:
    pawsx, udpos = mtlbench.spec("pawsx-hps"), mtlbench.spec("udpos-hps")
    assert pawsx.task_names == ("en", "zh", "de", "es") and udpos.task_names == ("en", "zh", "te", "vi")
    for spec in (pawsx, udpos):
        assert (spec.optimizer.lr, spec.optimizer.batch_size) == (2e-5, 32)
        assert spec.dataset.kwargs["max_length"] == 128
        assert spec.model.kwargs["multi_input"] is True and spec.model.backbone == "mbert"
    assert {t.metric for t in udpos.tasks} == {"token_f1"} and {t.loss for t in udpos.tasks} == {
        "token_cross_entropy"
    }
    assert udpos.model.kwargs["num_labels"] == len(LABELS) == 18
    assert (pawsx.budget.epochs, udpos.budget.epochs) == (5, 10)


@pytest.mark.parametrize("name", ["pawsx", "udpos"])
def test_steps_with_loss_and_gradient_weights_and_evaluates(root: Path, name: str) -> None:
    env = mtlbench.make(f"{name}-hps", data_root=str(root), device="cpu", overrides=tiny(root))
    obs, info = env.reset(seed=0)
    assert obs["losses"].shape == (4,) and info["steps_per_epoch"] >= 3
    for _ in range(2):
        obs, _, terminated, truncated, _ = env.step(torch.ones(4))
        assert torch.isfinite(obs["losses"]).all() and not terminated and not truncated

    env = mtlbench.make(
        f"{name}-hps",
        data_root=str(root),
        device="cpu",
        overrides=tiny(root),
        observe=("gramian",),
        wrt="representation",
    )
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        obs, *_ = env.step(GradientWeights(torch.ones(4)))
    assert obs["gramian"].shape == (4, 4)
    result = env.evaluate("test")
    metric = "acc" if name == "pawsx" else "f1"
    assert set(result) == set(env.task_names) and all(metric in m for m in result.values())


def test_missing_data_fails_at_make(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match="pawsx"):
        mtlbench.make("pawsx-hps", data_root=str(tmp_path), device="cpu")


def test_udpos_evaluates_when_a_language_runs_out(tmp_path: Path) -> None:
    write_udpos(tmp_path, treebanks={"en": ["ewt", "gum"], "zh": ["gsd"], "te": ["mtg"], "vi": ["vtb"]})
    write_vocab(tmp_path / "vocab.txt")
    env = mtlbench.make("udpos-hps", data_root=str(tmp_path), device="cpu", overrides=tiny(tmp_path))
    env.reset(seed=0)
    assert set(env.evaluate("test")) == {"en", "zh", "te", "vi"}  # en has twice the sentences

"""digit_attributes: the attribute rules on hand-made digits, the pinned split, determinism."""

from __future__ import annotations

import itertools

import pytest
import torch

from mtlbench.data import digit_attributes as da
from mtlbench.data.base import DatasetCorrupt, ids_sha256


def _blank(n: int = 1) -> torch.Tensor:
    return torch.zeros(n, 28, 28)


def test_class_rules_on_every_digit() -> None:
    y = da.attributes(_blank(10), torch.arange(10))
    col = {a: y[:, j].tolist() for j, a in enumerate(da.ATTRIBUTES)}
    assert col["even"] == [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert col["greater_than_4"] == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert col["prime"] == [0, 0, 1, 1, 0, 1, 0, 1, 0, 0]
    assert col["closed_loop"] == [1, 0, 0, 0, 0, 0, 1, 0, 1, 1]
    assert col["multiple_of_3"] == [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]


def test_image_features_on_hand_made_shapes() -> None:
    # a filled 4x6 rectangle (rows 2-5, columns 10-15): area 24, boundary 16, width 6, all in the top half
    rect = _blank()
    rect[0, 2:6, 10:16] = 1.0
    f = da.image_features(rect)
    assert f["ink_area"].item() == 24 and f["width"].item() == 6
    assert f["thickness"].item() == pytest.approx(24 / 16)
    assert f["top_share"].item() == pytest.approx(1.0)
    assert f["slant"].item() == pytest.approx(0.0)
    # a thicker rectangle has a larger area / boundary ratio
    thick = _blank()
    thick[0, 4:14, 8:18] = 1.0
    assert da.image_features(thick)["thickness"].item() == pytest.approx(100 / 36)
    # a shape symmetric about the vertical centre line scores 1; a one-sided one scores 0
    sym = _blank()
    sym[0, 10:18, 10:18] = 1.0
    assert da.image_features(sym)["symmetry"].item() == pytest.approx(1.0)
    left = _blank()
    left[0, 10:18, 0:6] = 1.0
    assert da.image_features(left)["symmetry"].item() == pytest.approx(0.0)


def test_slant_sign_follows_the_lean() -> None:
    # "/" (top to the right) has positive slant; "\" negative
    right, left = _blank(), _blank()
    for r in range(4, 24):
        right[0, r, 24 - r] = 1.0
        left[0, r, r] = 1.0
    assert da.image_features(right)["slant"].item() == pytest.approx(1.0)
    assert da.image_features(left)["slant"].item() == pytest.approx(-1.0)


def test_thresholds_are_the_training_medians() -> None:
    assert da.training_thresholds() == pytest.approx(da.THRESHOLDS, rel=1e-12)


def test_splits_are_pinned_disjoint_and_sized() -> None:
    idx = da.split_indices()
    assert {s: len(v) for s, v in idx.items()} == da.SPLIT_SIZES
    assert {s: ids_sha256(v.tolist()) for s, v in idx.items()} == da.SPLIT_SHA256
    for a, b in itertools.combinations(idx.values(), 2):
        assert not set(a.tolist()) & set(b.tolist())
    splits = da.load()
    assert splits.manifest == da.SPLIT_SHA256
    assert len(splits.train) == 3000 and splits.train.inputs.shape[1:] == (1, 28, 28)


def test_attributes_are_distinct_and_balanced() -> None:
    train = da.load().train
    y = torch.stack([train.targets[a] for a in da.ATTRIBUTES], 1).double()
    rates = y.mean(0)
    assert bool(((rates >= 0.3) & (rates <= 0.7)).all()), dict(zip(da.ATTRIBUTES, rates.tolist()))
    for i, j in itertools.combinations(range(len(da.ATTRIBUTES)), 2):
        disagree = (y[:, i] != y[:, j]).double().mean().item()
        assert 0.1 <= disagree <= 0.9, (da.ATTRIBUTES[i], da.ATTRIBUTES[j], disagree)


def test_image_attributes_vary_within_every_class() -> None:
    """An image attribute is not a function of the class: both values occur for every digit."""
    images, labels = da.source_digits()
    idx = da.split_indices()["train"]
    y = da.attributes(images[idx], labels[idx])
    for j, a in enumerate(da.ATTRIBUTES):
        if a in da.IMAGE_RULES:
            for digit in range(10):
                col = y[labels[idx] == digit, j]
                assert 0 < col.sum() < col.numel(), (a, digit)


def test_load_is_deterministic_and_returns_copies() -> None:
    a, b = da.load(), da.load()
    assert torch.equal(a.test.inputs, b.test.inputs)
    assert all(torch.equal(a.test.targets[t], b.test.targets[t]) for t in da.ATTRIBUTES)
    a.test.inputs.zero_()
    assert not torch.equal(a.test.inputs, da.load().test.inputs)
    assert len(da.load(limit=7).val) == 7


def test_changed_rule_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(da.THRESHOLDS, "slant", 0.0)
    da._build.cache_clear()
    try:
        with pytest.raises(DatasetCorrupt, match="attribute matrix hash"):
            da.load()
    finally:
        da._build.cache_clear()


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="unknown arguments"):
        da.load(image_size=14)
    with pytest.raises(ValueError, match="positive integer"):
        da.load(limit=0)

"""qm9_small: the pinned subset, descriptors on hand-made molecules, pinned standardisation."""

from __future__ import annotations

import math

import pytest
import torch

from mtlbench.data import qm9, qm9_small
from mtlbench.data.base import ids_sha256


def test_descriptors_of_a_hand_made_molecule() -> None:
    # H2 along x, 0.74 Angstrom apart, padded to 29 atoms
    z = torch.zeros(1, 29, dtype=torch.uint8)
    pos = torch.zeros(1, 29, 3)
    z[0, :2] = 1
    pos[0, 1, 0] = 0.74
    d = qm9_small.descriptors(z, pos)[0]
    assert d.shape == (qm9_small.NUM_FEATURES,)
    # Coulomb matrix [[0.5, 1/0.74], [1/0.74, 0.5]]: eigenvalues 0.5 +- 1/0.74, decreasing, zero-padded
    assert d[0].item() == pytest.approx(0.5 + 1 / 0.74, rel=1e-5)
    assert d[28].item() == pytest.approx(0.5 - 1 / 0.74, rel=1e-5)
    assert torch.count_nonzero(d[1:28]).item() == 0
    assert d[29:34].tolist() == [2, 0, 0, 0, 0]  # H, C, N, O, F counts
    hist = d[34:46]
    # one pair at 0.74 A: the 0.5 A centre gets exp(-(0.24)^2 / (2 * 0.25^2))
    assert hist[0].item() == pytest.approx(math.exp(-(0.24**2) / (2 * 0.25**2)), rel=1e-4)
    # gyration: atoms at +-0.37 on x -> eigenvalues (0, 0, 0.37^2)
    assert d[46:].tolist() == pytest.approx([0.0, 0.0, 0.37**2], abs=1e-6)


def test_subset_is_pinned_and_inside_the_qm9_split() -> None:
    ids = qm9_small.subset_ids()
    assert {s: len(v) for s, v in ids.items()} == qm9_small.SPLIT_SIZES
    assert {s: ids_sha256(v.tolist()) for s, v in ids.items()} == qm9_small.SPLIT_SHA256
    full = qm9.split_ids(qm9.molecule_ids())
    for s, v in ids.items():
        assert torch.equal(v, full[s][: len(v)])


def test_standardisation_is_the_training_subsets() -> None:
    mean, std = qm9_small.training_target_stats()
    assert mean == pytest.approx(qm9_small.TARGET_MEAN, rel=1e-9)
    assert std == pytest.approx(qm9_small.TARGET_STD, rel=1e-9)
    splits = qm9_small.load()
    assert splits.manifest == qm9_small.SPLIT_SHA256
    x = splits.train.inputs  # type: ignore[attr-defined]
    assert x.shape == (10_000, qm9_small.NUM_FEATURES)
    assert x.mean(0).abs().max().item() < 1e-4
    y = splits.train.targets["U0"]  # type: ignore[attr-defined]
    assert abs(y.mean().item()) < 1e-4 and y.std().item() == pytest.approx(1.0, abs=1e-4)


def test_load_is_deterministic_and_limited() -> None:
    a, b = qm9_small.load(limit=50), qm9_small.load(limit=50)
    assert torch.equal(a.val.inputs, b.val.inputs)  # type: ignore[attr-defined]
    assert len(a.train) == len(a.test) == 50
    with pytest.raises(TypeError, match="unknown arguments"):
        qm9_small.load(cutoff=5.0)

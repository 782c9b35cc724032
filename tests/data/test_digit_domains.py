"""digit_domains: domain rules, the pinned split, disjoint pools, determinism."""

from __future__ import annotations

import pytest
import torch

from mtlbench.data import digit_domains as dd
from mtlbench.data.multi_input import MultiInputDataset


def test_domain_transforms() -> None:
    x = torch.zeros(1, 16, 16)
    x[0, 0, 3] = 1.0  # one pixel in the top row
    assert torch.equal(dd.transform("mnist", x), x)
    assert torch.equal(dd.transform("inverted", x), 1.0 - x)
    # counter-clockwise: the top row becomes the left column, column 3 becomes row 12
    assert dd.transform("rotated", x)[0, 12, 0].item() == 1.0
    noisy = dd.transform("noisy", x)
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy, x)
    assert torch.equal(noisy, dd.transform("noisy", x))  # the noise is fixed data
    with pytest.raises(KeyError, match="unknown MNIST domain"):
        dd.transform("blurred", x)


def test_splits_are_pinned_sized_and_disjoint() -> None:
    splits = dd.load()
    assert splits.manifest == dd.SPLIT_SHA256
    for split in dd.SPLITS:
        ds = splits[split]
        assert isinstance(ds, MultiInputDataset) and ds.task_names == dd.DOMAINS
        assert ds.task_sizes() == {d: dd.SPLIT_SIZES[d][split] for d in dd.DOMAINS}
    sources = dd.domain_sources()
    pools = [set(sources[d][0].tolist()) for d in dd.MNIST_DOMAINS]
    assert sum(len(p) for p in pools) == len(set().union(*pools)) == 5000
    for d in dd.DOMAINS:
        n = sources[d][1].shape[0]
        pos = dd.split_positions(n)
        assert sorted(torch.cat(list(pos.values())).tolist()) == list(range(n))


def test_images_and_labels() -> None:
    train = dd.load().train
    for d in dd.DOMAINS:
        part = train.parts[d]
        x, y = part.fetch(torch.arange(len(part)))
        assert x.shape[1:] == (1, 16, 16) and x.min() >= 0 and x.max() <= 1
        assert set(y.tolist()) == set(range(10))
    # inverted digits are mostly bright, the others mostly dark
    means = {d: train.parts[d].inputs.mean().item() for d in dd.DOMAINS}  # type: ignore[attr-defined]
    assert means["inverted"] > 0.7 and means["mnist"] < 0.3


def test_load_is_deterministic() -> None:
    a, b = dd.load(), dd.load()
    for d in dd.DOMAINS:
        assert torch.equal(a.val.parts[d].inputs, b.val.parts[d].inputs)  # type: ignore[attr-defined]
    assert dd.load(limit=5).test.task_sizes() == dict.fromkeys(dd.DOMAINS, 5)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="unknown arguments"):
        dd.load(image_size=32)
    with pytest.raises(ValueError, match="positive integer"):
        dd.load(limit=-1)

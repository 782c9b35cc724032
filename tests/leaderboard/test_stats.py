"""The statistics, checked against hand computations with the same random generator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtlbench.leaderboard import stats


def test_mean_std_uses_the_sample_std() -> None:
    assert stats.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    mean, std = stats.mean_std([4.0])
    assert mean == 4.0 and math.isnan(std)
    assert all(math.isnan(v) for v in stats.mean_std([]))


@pytest.mark.parametrize("c", [0.1, -3.7, 5.0, 0.0])
def test_identical_differences_give_exactly_c_c(c: float) -> None:
    ci = stats.bootstrap_mean_ci([c] * 5, n_boot=1000, seed=0)
    assert (ci.low, ci.high) == (c, c)
    result = stats.litmus([c] * 5, reference="rlw@1", n_boot=1000, seed=0)
    assert result.mean_diff == c and result.ci == stats.Interval(c, c)


def test_bootstrap_matches_a_direct_computation() -> None:
    d = np.array([1.0, 2.0, 4.0])
    n_boot, seed = 7, 3
    # direct: the same generator, one resample at a time, plain Python means
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 3, size=(n_boot, 3))
    means = sorted(sum(d[i] for i in row) / 3 for row in idx.tolist())
    # with 7 resamples the 2.5% "lower" and 97.5% "higher" order statistics are the extremes
    ci = stats.bootstrap_mean_ci(d, n_boot=n_boot, seed=seed)
    assert ci.low == pytest.approx(means[0], abs=1e-12)
    assert ci.high == pytest.approx(means[-1], abs=1e-12)


def test_percentile_interval_order_statistics() -> None:
    samples = np.arange(1000, dtype=float)  # 0..999
    ci = stats.percentile_interval(samples)
    # quantile positions 0.025 * 999 = 24.975 -> lower 24; 0.975 * 999 = 974.025 -> higher 975
    assert (ci.low, ci.high) == (24.0, 975.0)


def test_litmus_verdicts() -> None:
    kw = dict(reference="rlw@1", n_boot=2000, seed=0)
    assert stats.litmus([4.9, 5.0, 5.1], **kw).verdict == "pass"
    assert stats.litmus([-4.9, -5.0, -5.1], **kw).verdict == "fail"
    assert stats.litmus([-1.0, 1.0, 0.5], **kw).verdict == "inconclusive"
    assert stats.litmus([0.0, 0.0, 0.0], **kw).verdict == "inconclusive"
    one = stats.litmus([9.0], **kw)
    assert one.verdict == "insufficient seeds" and one.ci is None and one.n_pairs == 1
    assert stats.litmus([], **kw).verdict == "insufficient seeds"


def test_a_failed_seed_cannot_pass() -> None:
    result = stats.litmus([5.0, 5.0, -math.inf], reference="rlw@1", n_boot=2000, seed=0)
    assert result.mean_diff == -math.inf
    assert result.ci is not None and result.ci.low == -math.inf
    assert result.verdict != "pass"
    # mostly failed: the upper bound is -inf as well -> fail
    assert (
        stats.litmus([5.0, -math.inf, -math.inf, -math.inf], reference="r", n_boot=2000, seed=0).verdict
        == "fail"
    )


def test_iqm_known_values() -> None:
    assert stats.iqm([1, 2, 3, 4, 5, 6, 7, 8]) == 4.5  # mean of 3, 4, 5, 6
    assert stats.iqm([1, 2, 3, 100]) == 2.5  # the outlier is trimmed
    assert stats.iqm([-math.inf, 1, 2, 3]) == 1.5  # one failure in four is trimmed away


def test_stratified_bootstrap_matches_a_direct_computation() -> None:
    envs = [np.array([1.0, 2.0, 3.0]), np.array([10.0, 11.0])]
    n_boot, seed = 5, 1
    rng = np.random.default_rng(seed)
    draws = [x[rng.integers(0, x.size, size=(n_boot, x.size))] for x in envs]
    direct = sorted(float(stats.iqm(np.concatenate([d[b] for d in draws]))) for b in range(n_boot))
    ci = stats.stratified_bootstrap_iqm_ci(envs, n_boot=n_boot, seed=seed)
    assert (ci.low, ci.high) == (pytest.approx(direct[0]), pytest.approx(direct[-1]))
    # within-env resampling: each replicate keeps 3 values from env 0 and 2 from env 1
    assert all(set(d[0]) <= {1.0, 2.0, 3.0} for d in draws[:1])
    assert stats.stratified_bootstrap_iqm_ci([[2.0, 2.0], [2.0]], n_boot=10, seed=0) == stats.Interval(
        2.0, 2.0
    )


def test_average_ranks() -> None:
    assert stats.average_ranks([3.0, 1.0, 3.0, -math.inf]).tolist() == [1.5, 3.0, 1.5, 4.0]
    with pytest.raises(ValueError, match="NaN"):
        stats.average_ranks([1.0, math.nan])

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
    assert result.mean_diff == c and result.ci == stats.Interval(c, c, method="bootstrap-t", n=5)
    across = stats.litmus_across([[c] * 5, [c] * 6], reference="rlw", n_boot=1000, seed=0)
    assert across.mean_diff == c
    assert across.ci == stats.Interval(c, c, method="stratified bootstrap-t", n=11, strata=2)


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


def _bootstrap_t_by_hand(d: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """The bootstrap-t interval one resample at a time, in plain Python arithmetic."""
    n = len(d)
    m = sum(d) / n
    se = math.sqrt(sum((v - m) ** 2 for v in d) / (n - 1) / n)
    ts = []
    for row in np.random.default_rng(seed).integers(0, n, size=(n_boot, n)).tolist():
        x = [float(d[i]) for i in row]
        mb = sum(x) / n
        seb = math.sqrt(sum((v - mb) ** 2 for v in x) / (n - 1) / n)
        ts.append((mb - m) / seb if seb > 0 else math.copysign(math.inf, mb - m) if mb != m else 0.0)
    ts.sort()
    # order statistics: the 2.5% "lower" and the 97.5% "higher" quantile of the t* values
    lo_t = ts[math.floor(0.025 * (n_boot - 1))]
    hi_t = ts[math.ceil(0.975 * (n_boot - 1))]
    return m - hi_t * se, m - lo_t * se


def test_bootstrap_t_matches_a_direct_computation() -> None:
    d = np.array([0.5, 0.7, 0.9, 1.5, -0.2, 0.3])
    ci = stats.mean_interval(d, n_boot=400, seed=3)
    low, high = _bootstrap_t_by_hand(d, 400, 3)
    assert (ci.low, ci.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert (ci.method, ci.n, ci.level, ci.strata) == ("bootstrap-t", 6, 0.95, 1)
    assert ci.describe() == "95% bootstrap-t, n=6"
    # not [min, max]: the interval of a mean, narrower than the range and around the mean
    assert d.min() < ci.low < d.mean() < ci.high < d.max()


def test_stratified_interval_with_one_env_is_the_plain_interval() -> None:
    d = [0.5, 0.7, 0.9, 1.5, -0.2]
    assert stats.stratified_mean_interval([d], n_boot=300, seed=1) == stats.mean_interval(
        d, n_boot=300, seed=1
    )


def test_stratified_interval_is_centred_on_the_mean_of_env_means() -> None:
    envs = [np.array([1.0, 2.0, 3.0, 2.5, 1.5]), np.array([10.0, 11.0, 10.5, 9.5, 10.0, 11.0])]
    ci = stats.stratified_mean_interval(envs, n_boot=2000, seed=0)
    theta = (envs[0].mean() + envs[1].mean()) / 2  # each env weighs the same, whatever its n
    assert ci.low < theta < ci.high
    assert ci.describe() == "95% stratified bootstrap-t, 2 envs, n=11"
    with pytest.raises(ValueError, match="at least 2 values in every env"):
        stats.stratified_mean_interval([[1.0, 2.0], [3.0]], n_boot=10, seed=0)
    with pytest.raises(ValueError, match="finite"):
        stats.stratified_mean_interval([[1.0, -math.inf]], n_boot=10, seed=0)


def test_three_seeds_give_an_unbounded_bootstrap_t_interval() -> None:
    # 3 of the 27 equally likely resamples of 3 distinct values have se* = 0 (t* = +-inf),
    # more than the 2.5% tails: the data cannot bound the mean
    ci = stats.mean_interval([1.0, 2.0, 4.0], n_boot=5000, seed=0)
    assert (ci.low, ci.high) == (-math.inf, math.inf)


def test_a_resample_of_equal_values_has_an_infinite_t() -> None:
    # these values are not exactly their own mean in floating point ((x + x + x) / 3 != x), so
    # np.var of three copies is ~1e-32, not 0: t* must still be +-inf, not +-1e16 (seen on
    # the stored MultiMNIST runs before the fix)
    d = [2.4843302028803014, 0.9460702413787125, 2.68586679106431]
    assert any(np.var([v] * 3, ddof=1) > 0 for v in d)
    ci = stats.mean_interval(d, n_boot=10_000, seed=0)
    assert (ci.low, ci.high) == (-math.inf, math.inf)


def test_litmus_verdicts() -> None:
    kw = dict(reference="rlw@1", n_boot=2000, seed=0)
    assert stats.MIN_PAIRED_SEEDS == 5
    assert stats.litmus([4.9, 5.0, 5.1, 5.2, 4.8], **kw).verdict == "pass"
    assert stats.litmus([-4.9, -5.0, -5.1, -5.2, -4.8], **kw).verdict == "fail"
    assert stats.litmus([-1.0, 1.0, 0.5, -0.3, 0.2], **kw).verdict == "inconclusive"
    assert stats.litmus([0.0] * 5, **kw).verdict == "inconclusive"
    one = stats.litmus([9.0], **kw)
    assert one.verdict == "insufficient seeds" and one.ci is None and one.n_pairs == 1
    assert stats.litmus([], **kw).verdict == "insufficient seeds"


@pytest.mark.parametrize("n", [2, 3, 4])
def test_below_the_minimum_a_clear_win_is_insufficient_never_pass(n: int) -> None:
    result = stats.litmus([5.0 + 0.1 * i for i in range(n)], reference="rlw@1", n_boot=2000, seed=0)
    assert result.verdict == "insufficient seeds"
    assert result.ci is not None and result.ci.n == n  # the interval is still reported, with n
    assert result.differences == tuple(5.0 + 0.1 * i for i in range(n))


def test_a_failed_seed_is_a_fail_at_any_n() -> None:
    for d in ([5.0, 5.0, -math.inf], [5.0, 5.1, 4.9, 5.2, 5.0, -math.inf], [-math.inf]):
        result = stats.litmus(d, reference="rlw@1", n_boot=2000, seed=0)
        assert result.mean_diff == -math.inf and result.verdict == "fail"
        assert result.ci is not None and (result.ci.low, result.ci.high) == (-math.inf, -math.inf)
        assert result.ci.n == len(d)
    with pytest.raises(ValueError, match="finite or -inf"):
        stats.litmus([1.0, math.nan, 2.0], reference="r", n_boot=10, seed=0)


def test_litmus_across_envs() -> None:
    kw = dict(reference="rlw", n_boot=2000, seed=0)
    win = [1.0, 1.2, 0.9, 1.1, 1.05]
    loss = [-0.1, -0.2, 0.05, -0.15, -0.1]
    across = stats.litmus_across([win, [2 * v for v in win]], **kw)
    assert across.verdict == "pass" and across.n_envs == 2 and across.n_pairs == 10
    assert across.mean_diff == pytest.approx((np.mean(win) + 2 * np.mean(win)) / 2)
    assert stats.litmus_across([[-v for v in win], loss], **kw).verdict == "fail"
    assert stats.litmus_across([win, [-v for v in win]], **kw).verdict == "inconclusive"
    # an env below the minimum makes the whole verdict insufficient (no choosing envs after the fact)
    short = stats.litmus_across([win, win[:3]], **kw)
    assert short.verdict == "insufficient seeds" and short.ci is not None
    assert stats.litmus_across([win, [3.0]], **kw).ci is None
    # a failed run anywhere: fail
    failed = stats.litmus_across([win, [*win[:4], -math.inf]], **kw)
    assert failed.verdict == "fail" and failed.mean_diff == -math.inf


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
        2.0, 2.0, method="stratified percentile bootstrap", n=3, strata=2
    )


def test_average_ranks() -> None:
    assert stats.average_ranks([3.0, 1.0, 3.0, -math.inf]).tolist() == [1.5, 3.0, 1.5, 4.0]
    with pytest.raises(ValueError, match="NaN"):
        stats.average_ranks([1.0, math.nan])

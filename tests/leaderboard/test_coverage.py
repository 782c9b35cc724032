"""Coverage of the litmus intervals, by simulation (issue 12, item 3).

Paired differences are drawn from distributions with a known mean (0 after centring),
``R`` samples of ``n`` seeds at once, and the production code
(:func:`mtlbench.leaderboard.stats.bootstrap_t_bounds`, the function behind
``mean_interval`` and ``stratified_mean_interval``) gives one interval per sample. The
coverage is the fraction of intervals that contain the true mean. With ``R = 4000`` its
Monte Carlo standard error is about 0.4 points at 94%; generators are seeded, so the test
is deterministic. The same check run on the percentile bootstrap used before fails
(:func:`test_the_old_percentile_bootstrap_fails_the_same_check`).

Skewed shapes: gamma(2) (skewness 1.41) and lognormal(sigma = 0.5) (skewness 1.75),
centred, in both directions (a long tail of losses is the case that risks a false "pass").
Measured and not asserted: the centred exponential (skewness 2) gives 92.2% at n = 5 and
93.9% at n = 10 (docs/leaderboard.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from mtlbench.leaderboard import stats

R = 4000
N_BOOT = 1000
NOMINAL = 0.95
FLOOR = 0.93

Draw = Callable[[np.random.Generator, int], np.ndarray]
SHAPES: dict[str, Draw] = {
    "normal": lambda g, n: g.standard_normal((R, n)),
    "gamma2": lambda g, n: g.gamma(2.0, size=(R, n)) - 2.0,
    "lognormal": lambda g, n: g.lognormal(0.0, 0.5, (R, n)) - np.exp(0.125),
    "-lognormal": lambda g, n: np.exp(0.125) - g.lognormal(0.0, 0.5, (R, n)),
}


def _coverage(low: np.ndarray, high: np.ndarray, mean: float = 0.0) -> tuple[float, float]:
    """(coverage, rate of intervals wholly above the true mean: a false "pass" when it is 0)."""
    return float(np.mean((low <= mean) & (high >= mean))), float(np.mean(low > mean))


@pytest.mark.parametrize("n", [stats.MIN_PAIRED_SEEDS, 10])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_bootstrap_t_covers_the_mean(shape: str, n: int) -> None:
    x = SHAPES[shape](np.random.default_rng(n), n)
    low, high = stats.bootstrap_t_bounds([x], n_boot=N_BOOT, rng=np.random.default_rng(1), level=NOMINAL)
    coverage, above = _coverage(low, high)
    assert coverage >= FLOOR, f"{shape}, n={n}: coverage {coverage:.3f}"
    assert above <= 0.06, f"{shape}, n={n}: lower bound above the mean in {above:.3f} of samples"


@pytest.mark.parametrize(
    ("scales", "floor"),
    [
        ((1.0, 1.0, 1.0, 1.0), FLOOR),
        ((1.0, 1.0, 1.0, 3.0), FLOOR),
        # one skewed env dominating the variance: the across-env mean is then about an n-seed
        # mean of that env's skewed differences, and coverage falls below the target (about
        # 92% at n = 5 and 93% at n = 10, docs/leaderboard.md); asserted at 91% so that it
        # cannot get worse unnoticed
        ((1.0, 3.0, 0.2, 1.0), 0.91),
    ],
)
@pytest.mark.parametrize("n", [stats.MIN_PAIRED_SEEDS, 10])
def test_the_stratified_interval_covers_the_mean_over_envs(
    n: int, scales: tuple[float, ...], floor: float
) -> None:
    # four envs with different shapes (and scales), as the offline tier's delta_p differences
    g = np.random.default_rng(100 + n)
    shapes = ("normal", "gamma2", "lognormal", "-lognormal")
    # half the samples of the one-env tests (4 envs cost 4 times as much): MC error ~0.5 points
    strata = [scale * SHAPES[shape](g, n)[: R // 2] for scale, shape in zip(scales, shapes)]
    low, high = stats.bootstrap_t_bounds(strata, n_boot=N_BOOT, rng=np.random.default_rng(1), level=NOMINAL)
    coverage, above = _coverage(low, high)
    assert coverage >= floor, f"n={n}: coverage {coverage:.3f}"
    assert above <= 0.06


def test_the_batched_bounds_are_the_single_interval() -> None:
    """The coverage above is the production interval's: row r of a batch equals mean_interval."""
    x = SHAPES["gamma2"](np.random.default_rng(3), 6)[:3]
    low, high = stats.bootstrap_t_bounds([x], n_boot=500, rng=np.random.default_rng(9))
    for r in range(3):
        ci = stats.mean_interval(x[r], n_boot=500, seed=9)
        assert (ci.low, ci.high) == (pytest.approx(low[r]), pytest.approx(high[r]))
        assert (ci.method, ci.n, ci.level) == ("bootstrap-t", 6, 0.95)


def _percentile_bounds(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The old rule (stats.bootstrap_mean_ci) on every row, with shared resampling indices."""
    idx = rng.integers(0, x.shape[1], size=(N_BOOT, x.shape[1]))
    means = x[:, idx].mean(axis=2)
    return (
        np.quantile(means, 0.025, axis=1, method="lower"),
        np.quantile(means, 0.975, axis=1, method="higher"),
    )


def test_the_percentile_helper_is_the_old_rule() -> None:
    x = SHAPES["normal"](np.random.default_rng(4), 5)[:2]
    low, high = _percentile_bounds(x, np.random.default_rng(5))
    ci = stats.bootstrap_mean_ci(x[0], n_boot=N_BOOT, seed=5)
    assert (ci.low, ci.high) == (low[0], high[0])


@pytest.mark.parametrize("shape", ["normal", "-lognormal"])
def test_the_old_percentile_bootstrap_fails_the_same_check(shape: str) -> None:
    """Why the verdicts changed method: at n = 5 the percentile bootstrap covers about 84%."""
    x = SHAPES[shape](np.random.default_rng(5), 5)
    coverage, above = _coverage(*_percentile_bounds(x, np.random.default_rng(1)))
    assert coverage < FLOOR - 0.05, coverage

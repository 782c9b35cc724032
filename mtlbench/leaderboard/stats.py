"""The leaderboard's statistics: summaries, the litmus test, ranks and the IQM.

Pure functions of NumPy arrays, so that every rule can be checked on a hand-written case.
The rules (docs/leaderboard.md states them for readers):

* **mean ± std** over seeds: the sample standard deviation (``ddof=1``); undefined (NaN)
  with one seed.
* **Percentile bootstrap** (Efron & Tibshirani 1993): ``n_boot`` resamples of the seeds
  with replacement, drawn from a fresh ``numpy.random.default_rng(seed)`` for every
  interval, so one interval never depends on which others were computed. The 95% bounds
  are order statistics of the resampled statistic: the lower one is
  ``np.quantile(..., 0.025, method="lower")`` and the upper one
  ``np.quantile(..., 0.975, method="higher")`` (slightly conservative, and well defined
  when the sample holds ``-inf``). When every value is the same ``c``, the interval is
  exactly ``[c, c]``.
* **Litmus verdict** on paired differences ``d_s`` (method minus reference, same seed):
  fewer than 2 pairs: ``"insufficient seeds"``; lower bound > 0: ``"pass"``; upper bound
  < 0: ``"fail"``; otherwise ``"inconclusive"``. A failed run of the method enters as
  ``d_s = -inf``: its mean is ``-inf``, so the lower bound is ``-inf`` and it cannot pass.
* **IQM** (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice"): the
  mean of the middle 50% of the pooled per-(env, seed) scores,
  ``scipy.stats.trim_mean(x, 0.25)``, as in ``rliable``; its interval is a *stratified*
  bootstrap: every replicate resamples seeds with replacement within each env.
* **Ranks**: 1 is best (highest delta_p); ties get the average of their ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

__all__ = [
    "CI_LEVEL",
    "Interval",
    "LitmusResult",
    "Verdict",
    "average_ranks",
    "bootstrap_mean_ci",
    "iqm",
    "litmus",
    "mean_std",
    "percentile_interval",
    "stratified_bootstrap_iqm_ci",
]

CI_LEVEL = 0.95
Verdict = Literal["pass", "fail", "inconclusive", "insufficient seeds"]


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class LitmusResult:
    """Paired comparison of a method with random weighting on one env."""

    reference: str
    n_pairs: int
    mean_diff: float
    ci: Interval | None
    verdict: Verdict


def mean_std(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); NaN where undefined."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    return mean, std


def percentile_interval(samples: np.ndarray, level: float = CI_LEVEL) -> Interval:
    """Order-statistic percentile interval of bootstrap ``samples`` (see the module docstring)."""
    alpha = (1.0 - level) / 2.0
    low = float(np.quantile(samples, alpha, method="lower"))
    high = float(np.quantile(samples, 1.0 - alpha, method="higher"))
    return Interval(low, high)


def _constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray, *, n_boot: int, seed: int, level: float = CI_LEVEL
) -> Interval:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement).

    The resampling indices are ``default_rng(seed).integers(0, n, size=(n_boot, n))``.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_mean_ci needs at least one value")
    if _constant(x):  # the bootstrap distribution is a point mass: exact, no rounding
        return Interval(float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    return percentile_interval(x[idx].mean(axis=1), level)


def litmus(
    differences: Sequence[float] | np.ndarray,
    *,
    reference: str,
    n_boot: int,
    seed: int,
    level: float = CI_LEVEL,
) -> LitmusResult:
    """Verdict from paired differences ``d_s`` (``-inf`` for a failed run of the method)."""
    d = np.asarray(differences, dtype=float)
    if d.size < 2:
        mean = float(d.mean()) if d.size else float("nan")
        return LitmusResult(reference, int(d.size), mean, None, "insufficient seeds")
    mean = float(d[0]) if _constant(d) else float(d.mean())
    ci = bootstrap_mean_ci(d, n_boot=n_boot, seed=seed, level=level)
    verdict: Verdict
    if ci.low > 0:
        verdict = "pass"
    elif ci.high < 0:
        verdict = "fail"
    else:
        verdict = "inconclusive"
    return LitmusResult(reference, int(d.size), mean, ci, verdict)


def iqm(values: Sequence[float] | np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """Interquartile mean: ``scipy.stats.trim_mean(values, 0.25)`` (Agarwal et al. 2021)."""
    out: float | np.ndarray = sps.trim_mean(np.asarray(values, dtype=float), 0.25, axis=axis)
    return out


def stratified_bootstrap_iqm_ci(
    per_env: Sequence[Sequence[float] | np.ndarray], *, n_boot: int, seed: int, level: float = CI_LEVEL
) -> Interval:
    """Stratified percentile bootstrap of the IQM of pooled per-(env, seed) scores.

    Each replicate draws ``n_e`` seeds with replacement within every env ``e`` (envs in
    the given order, indices from one ``default_rng(seed)``) and takes the IQM of the pool.
    """
    strata = [np.asarray(v, dtype=float) for v in per_env if len(v)]
    if not strata:
        raise ValueError("stratified_bootstrap_iqm_ci needs at least one value")
    pooled = np.concatenate(strata)
    if _constant(pooled):
        return Interval(float(pooled[0]), float(pooled[0]))
    rng = np.random.default_rng(seed)
    replicates = np.concatenate([x[rng.integers(0, x.size, size=(n_boot, x.size))] for x in strata], axis=1)
    return percentile_interval(np.asarray(iqm(replicates, axis=1)), level)


def average_ranks(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rank 1 for the highest score; ties share the average rank; ``-inf`` ranks last."""
    x = np.asarray(scores, dtype=float)
    if np.isnan(x).any():
        raise ValueError("average_ranks: scores must not be NaN")
    ranks: np.ndarray = sps.rankdata(-x, method="average")
    return ranks

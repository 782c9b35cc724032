"""The leaderboard's statistics: summaries, intervals, the litmus test, ranks and the IQM.

Pure functions of NumPy arrays, so that every rule can be checked on a hand-written case.
The rules (docs/leaderboard.md states them for readers):

* **mean ± std** over seeds: the sample standard deviation (``ddof=1``); undefined (NaN)
  with one seed.
* **Interval of a mean** (:func:`mean_interval`, used for the litmus test and the delta_p
  error bars): the *bootstrap-t* (studentized bootstrap) interval, Efron & Tibshirani
  (1993), *An Introduction to the Bootstrap*, Section 12.5; Hall (1988), "Theoretical
  comparison of bootstrap confidence intervals", Ann. Statist. 16(3). For values ``x`` with
  mean ``m`` and standard error ``se = s / sqrt(n)``, every resample ``x*`` (``n`` draws
  with replacement) gives ``t* = (m* - m) / se*``; the interval is
  ``[m - q(1 - a/2) se, m - q(a/2) se]`` with ``q`` the order-statistic quantiles of ``t*``.
  Why not Student's t: paired differences of seeds can be skewed (a method that is usually a
  little better and now and then much worse), and the t-interval's one-sided errors are then
  off by O(n^-1/2); the bootstrap-t corrects skewness to O(n^-1). Why not the percentile
  bootstrap (used before): at n = 3 it is exactly ``[min, max]`` and at n = 5 it covers
  about 84% of the time for normal differences. Coverage is checked by simulation in
  ``tests/leaderboard/test_coverage.py``. A resample with ``se* = 0`` (all draws the same
  value) has ``t* = ±inf``; the order statistics keep those well defined. When every value
  is the same ``c`` the interval is exactly ``[c, c]``.
* **Stratified interval** (:func:`stratified_mean_interval`, the across-env litmus verdict):
  the same bootstrap-t for ``theta = mean over envs of the per-env mean``, resampling seeds
  within each env, with ``se = sqrt(sum_e s_e^2 / n_e) / E``.
* Every interval draws its resampling indices from a fresh ``numpy.random.default_rng(seed)``,
  so one interval never depends on which others were computed; it carries its method, ``n``
  and level (:class:`Interval`), so the page and the CSV can say "95% bootstrap-t, n=5".
* **Litmus verdict** on paired differences ``d_s`` (method minus reference, same seed): a
  failed run of the method enters as ``d_s = -inf``; then the mean is ``-inf`` (a failure
  observed once has positive probability), the interval is ``[-inf, -inf]`` and the verdict
  ``"fail"`` at any n. Otherwise fewer than :data:`MIN_PAIRED_SEEDS` pairs:
  ``"insufficient seeds"`` (the interval is still given from 2 pairs on); lower bound > 0:
  ``"pass"``; upper bound < 0: ``"fail"``; otherwise ``"inconclusive"``.
* **IQM** (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice"): the
  mean of the middle 50% of the pooled per-(env, seed) scores,
  ``scipy.stats.trim_mean(x, 0.25)``, as in ``rliable``; its interval is a *stratified
  percentile* bootstrap as in ``rliable``: every replicate resamples seeds with
  replacement within each env; bounds ``np.quantile(..., 0.025, method="lower")`` and
  ``np.quantile(..., 0.975, method="higher")``.
* **Ranks**: 1 is best (highest delta_p); ties get the average of their ranks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

__all__ = [
    "BOOTSTRAP_T",
    "CI_LEVEL",
    "MIN_PAIRED_SEEDS",
    "STRATIFIED_BOOTSTRAP_T",
    "Interval",
    "LitmusResult",
    "Verdict",
    "average_ranks",
    "bootstrap_mean_ci",
    "bootstrap_t_bounds",
    "iqm",
    "litmus",
    "litmus_across",
    "mean_interval",
    "mean_std",
    "percentile_interval",
    "stratified_bootstrap_iqm_ci",
    "stratified_mean_interval",
]

CI_LEVEL = 0.95
#: Fewest paired seeds for a "pass" or "fail" from the interval: the smallest n at which the
#: coverage test (tests/leaderboard/test_coverage.py) holds for the bootstrap-t. Below it the
#: data cannot bound the mean: at n = 3, 3 of the 27 equally likely resamples have se* = 0,
#: so the bootstrap-t bounds are infinite (and the percentile bootstrap is [min, max]); at
#: n = 4 the resampling distribution has 35 distinct points and the skewness correction is
#: guesswork. It is also issue 12's default for ``mtlbench litmus`` (at least 5 seeds).
MIN_PAIRED_SEEDS = 5
BOOTSTRAP_T = "bootstrap-t"
STRATIFIED_BOOTSTRAP_T = "stratified bootstrap-t"
PERCENTILE = "percentile bootstrap"
STRATIFIED_PERCENTILE = "stratified percentile bootstrap"
Verdict = Literal["pass", "fail", "inconclusive", "insufficient seeds"]


@dataclass(frozen=True)
class Interval:
    """A confidence interval with what it is: ``method``, sample size ``n``, ``level``.

    ``strata`` is the number of envs a stratified interval pools (1 otherwise); ``n`` counts
    every value used (all envs together).
    """

    low: float
    high: float
    method: str
    n: int
    level: float = CI_LEVEL
    strata: int = 1

    def describe(self) -> str:
        """E.g. ``"95% bootstrap-t, n=5"`` or ``"95% stratified bootstrap-t, 4 envs, n=20"``."""
        envs = f", {self.strata} envs" if self.strata > 1 else ""
        return f"{self.level:.0%} {self.method}{envs}, n={self.n}"


@dataclass(frozen=True)
class LitmusResult:
    """Paired comparison of a method with random weighting on one env (or across envs).

    ``n_pairs`` counts the paired differences (all envs together for an across-env result);
    ``ci`` is ``None`` below 2 pairs; ``differences`` are the ``d_s`` (one tuple per env for
    an across-env result is kept by the caller; here the flat values).
    """

    reference: str
    n_pairs: int
    mean_diff: float
    ci: Interval | None
    verdict: Verdict
    differences: tuple[float, ...] = ()
    n_envs: int = 1


def mean_std(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); NaN where undefined."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    return mean, std


def percentile_interval(
    samples: np.ndarray, level: float = CI_LEVEL, *, method: str = PERCENTILE, n: int = 0, strata: int = 1
) -> Interval:
    """Order-statistic percentile interval of bootstrap ``samples`` (see the module docstring)."""
    alpha = (1.0 - level) / 2.0
    low = float(np.quantile(samples, alpha, method="lower"))
    high = float(np.quantile(samples, 1.0 - alpha, method="higher"))
    return Interval(low, high, method=method, n=n, level=level, strata=strata)


def _constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray, *, n_boot: int, seed: int, level: float = CI_LEVEL
) -> Interval:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement).

    The resampling indices are ``default_rng(seed).integers(0, n, size=(n_boot, n))``. Not
    used for verdicts: it under-covers at small n (tests/leaderboard/test_coverage.py).
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_mean_ci needs at least one value")
    if _constant(x):  # the bootstrap distribution is a point mass: exact, no rounding
        return Interval(float(x[0]), float(x[0]), method=PERCENTILE, n=int(x.size), level=level)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    return percentile_interval(x[idx].mean(axis=1), level, n=int(x.size))


def _sample_var(x: np.ndarray) -> np.ndarray:
    """Sample variance (ddof=1) over the last axis; exactly 0 where all values are equal
    (``np.var`` can leave ~1e-32 there, which would turn ``t* = +-inf`` into ``+-1e16``)."""
    var: np.ndarray = x.var(axis=-1, ddof=1)
    return np.where(x.max(axis=-1) == x.min(axis=-1), 0.0, var)


def bootstrap_t_bounds(
    strata: Sequence[np.ndarray], *, n_boot: int, rng: np.random.Generator, level: float = CI_LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap-t bounds for ``theta = mean over strata of each stratum's mean``, batched.

    ``strata[e]`` has shape ``(R, n_e)``: ``R`` independent samples (rows) of ``n_e >= 2``
    finite values of stratum ``e``. Returns ``(low, high)``, each of shape ``(R,)``. The
    indices of stratum ``e`` are ``rng.integers(0, n_e, size=(n_boot, n_e))``, drawn in
    stratum order and shared by all rows (so ``R = 1`` is the production case and the
    coverage test runs the same code on many rows at once).
    """
    xs = [np.asarray(x, dtype=float) for x in strata]
    if not xs or any(x.ndim != 2 or x.shape[1] < 2 for x in xs) or len({x.shape[0] for x in xs}) != 1:
        raise ValueError("bootstrap_t_bounds needs strata of shape (R, n_e) with n_e >= 2 and one R")
    n_strata = len(xs)
    rows = xs[0].shape[0]
    means = np.stack([x.mean(axis=1) for x in xs])  # (E, R)
    var_of_mean = np.stack([_sample_var(x) / x.shape[1] for x in xs])
    theta = means.mean(axis=0)
    se = np.sqrt(var_of_mean.sum(axis=0)) / n_strata
    indices = [rng.integers(0, x.shape[1], size=(n_boot, x.shape[1])) for x in xs]
    alpha = (1.0 - level) / 2.0
    low = np.empty(rows)
    high = np.empty(rows)
    chunk = max(1, 2_000_000 // (n_boot * sum(x.shape[1] for x in xs)))  # bounded memory
    for start in range(0, rows, chunk):
        sl = slice(start, start + chunk)
        theta_b = np.zeros((min(chunk, rows - start), n_boot))
        var_b = np.zeros_like(theta_b)
        for x, idx in zip(xs, indices):
            draws = x[sl][:, idx]  # (r, n_boot, n_e)
            theta_b += draws.mean(axis=2)
            var_b += _sample_var(draws) / x.shape[1]
        theta_b /= n_strata
        se_b = np.sqrt(var_b) / n_strata
        diff = theta_b - theta[sl, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            t_b = np.where(se_b > 0, diff / se_b, np.sign(diff) * np.inf)  # se* = 0: +-inf (or 0)
        t_b = np.nan_to_num(t_b, nan=0.0, posinf=np.inf, neginf=-np.inf)
        q_low = np.quantile(t_b, alpha, axis=1, method="lower")
        q_high = np.quantile(t_b, 1.0 - alpha, axis=1, method="higher")
        with np.errstate(invalid="ignore"):
            lo = theta[sl] - q_high * se[sl]
            hi = theta[sl] - q_low * se[sl]
        point = se[sl] == 0  # every stratum constant: the bootstrap is a point mass
        low[sl] = np.where(point, theta[sl], lo)
        high[sl] = np.where(point, theta[sl], hi)
    return low, high


def stratified_mean_interval(
    per_env: Sequence[Sequence[float] | np.ndarray], *, n_boot: int, seed: int, level: float = CI_LEVEL
) -> Interval:
    """Bootstrap-t interval of the mean over envs of each env's mean (seeds resampled within env).

    Every env needs at least 2 finite values; with one env this is :func:`mean_interval`.
    """
    strata = [np.asarray(v, dtype=float) for v in per_env]
    if not strata or any(x.size < 2 for x in strata):
        raise ValueError("an interval of a mean needs at least 2 values in every env")
    if not all(np.isfinite(x).all() for x in strata):
        raise ValueError("an interval of a mean needs finite values (handle failed runs first)")
    method = BOOTSTRAP_T if len(strata) == 1 else STRATIFIED_BOOTSTRAP_T
    n = int(sum(x.size for x in strata))
    if all(_constant(x) for x in strata):  # exact, no rounding
        c = float(np.mean([x[0] for x in strata])) if len(strata) > 1 else float(strata[0][0])
        return Interval(c, c, method=method, n=n, level=level, strata=len(strata))
    rng = np.random.default_rng(seed)
    low, high = bootstrap_t_bounds([x[None, :] for x in strata], n_boot=n_boot, rng=rng, level=level)
    return Interval(float(low[0]), float(high[0]), method=method, n=n, level=level, strata=len(strata))


def mean_interval(
    values: Sequence[float] | np.ndarray, *, n_boot: int, seed: int, level: float = CI_LEVEL
) -> Interval:
    """Bootstrap-t interval of the mean of ``values`` (at least 2 finite values)."""
    return stratified_mean_interval([values], n_boot=n_boot, seed=seed, level=level)


def _verdict(ci: Interval) -> Verdict:
    if ci.low > 0:
        return "pass"
    if ci.high < 0:
        return "fail"
    return "inconclusive"


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
    n = int(d.size)
    if np.isnan(d).any() or np.isposinf(d).any():
        raise ValueError(f"paired differences must be finite or -inf (a failed run), got {d.tolist()}")
    values = tuple(float(v) for v in d)
    if np.isneginf(d).any():  # a failed run: the mean is -inf, whatever n
        ci = Interval(-math.inf, -math.inf, method=BOOTSTRAP_T, n=n, level=level)
        return LitmusResult(reference, n, -math.inf, ci, "fail", values)
    if n < 2:
        mean = float(d.mean()) if n else math.nan
        return LitmusResult(reference, n, mean, None, "insufficient seeds", values)
    mean = float(d[0]) if _constant(d) else float(d.mean())
    ci = mean_interval(d, n_boot=n_boot, seed=seed, level=level)
    verdict: Verdict = "insufficient seeds" if n < MIN_PAIRED_SEEDS else _verdict(ci)
    return LitmusResult(reference, n, mean, ci, verdict, values)


def litmus_across(
    per_env: Sequence[Sequence[float] | np.ndarray],
    *,
    reference: str,
    n_boot: int,
    seed: int,
    level: float = CI_LEVEL,
) -> LitmusResult:
    """One verdict over several envs: the stratified interval of the mean of per-env means.

    A failed run in any env: ``"fail"`` (its env's mean, hence the overall mean, is
    ``-inf``). Any env with fewer than :data:`MIN_PAIRED_SEEDS` pairs:
    ``"insufficient seeds"`` (dropping it would let the envs be chosen after the fact).
    """
    strata = [np.asarray(v, dtype=float) for v in per_env]
    if not strata:
        raise ValueError("litmus_across needs at least one env")
    for x in strata:
        if np.isnan(x).any() or np.isposinf(x).any():
            raise ValueError(f"paired differences must be finite or -inf (a failed run), got {x.tolist()}")
    n = int(sum(x.size for x in strata))
    n_envs = len(strata)
    values = tuple(float(v) for x in strata for v in x)
    method = BOOTSTRAP_T if n_envs == 1 else STRATIFIED_BOOTSTRAP_T
    if any(np.isneginf(x).any() for x in strata):
        ci = Interval(-math.inf, -math.inf, method=method, n=n, level=level, strata=n_envs)
        return LitmusResult(reference, n, -math.inf, ci, "fail", values, n_envs)
    if any(x.size < 2 for x in strata):
        mean = float(np.mean([x.mean() for x in strata])) if all(x.size for x in strata) else math.nan
        return LitmusResult(reference, n, mean, None, "insufficient seeds", values, n_envs)
    mean = float(np.mean([x.mean() for x in strata]))
    ci = stratified_mean_interval(strata, n_boot=n_boot, seed=seed, level=level)
    if all(_constant(x) for x in strata):
        mean = ci.low
    short = any(x.size < MIN_PAIRED_SEEDS for x in strata)
    verdict: Verdict = "insufficient seeds" if short else _verdict(ci)
    return LitmusResult(reference, n, mean, ci, verdict, values, n_envs)


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
    n, n_strata = int(pooled.size), len(strata)
    if _constant(pooled):
        c = float(pooled[0])
        return Interval(c, c, method=STRATIFIED_PERCENTILE, n=n, level=level, strata=n_strata)
    rng = np.random.default_rng(seed)
    replicates = np.concatenate([x[rng.integers(0, x.size, size=(n_boot, x.size))] for x in strata], axis=1)
    return percentile_interval(
        np.asarray(iqm(replicates, axis=1)), level, method=STRATIFIED_PERCENTILE, n=n, strata=n_strata
    )


def average_ranks(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rank 1 for the highest score; ties share the average rank; ``-inf`` ranks last."""
    x = np.asarray(scores, dtype=float)
    if np.isnan(x).any():
        raise ValueError("average_ranks: scores must not be NaN")
    ranks: np.ndarray = sps.rankdata(-x, method="average")
    return ranks

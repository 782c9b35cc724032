"""Coverage of 95% intervals of a mean paired difference at the seed counts of the litmus test.

Prints the table of docs/leaderboard.md ("Coverage, by simulation"): for centred
differences of several shapes, the share of 4,000 simulated samples of ``n`` seeds whose
interval contains the true mean (0), for the bootstrap-t the litmus test uses
(:func:`mtlbench.leaderboard.stats.bootstrap_t_bounds`, the production code), Student's t,
and the percentile bootstrap used before. The same generators and seeds as
tests/leaderboard/test_coverage.py, which asserts the bootstrap-t rows.

    python benchmarks/interval_coverage.py            # about 30 s on one core
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats as sps

from mtlbench.leaderboard import stats

R = 4000
N_BOOT = 1000
Draw = Callable[[np.random.Generator, int], np.ndarray]
SHAPES: dict[str, tuple[float, Draw]] = {  # name: (skewness, draw)
    "normal": (0.0, lambda g, n: g.standard_normal((R, n))),
    "gamma(2)": (1.41, lambda g, n: g.gamma(2.0, size=(R, n)) - 2.0),
    "lognormal(sigma=0.5)": (1.75, lambda g, n: g.lognormal(0.0, 0.5, (R, n)) - np.exp(0.125)),
    "-lognormal(sigma=0.5)": (-1.75, lambda g, n: np.exp(0.125) - g.lognormal(0.0, 0.5, (R, n))),
    "exponential": (2.0, lambda g, n: g.exponential(size=(R, n)) - 1.0),
}


def covered(low: np.ndarray, high: np.ndarray) -> float:
    return float(np.mean((low <= 0) & (high >= 0)))


def student_t(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[1]
    half = sps.t.ppf(0.975, n - 1) * x.std(axis=1, ddof=1) / np.sqrt(n)
    return x.mean(axis=1) - half, x.mean(axis=1) + half


def percentile(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    means = x[:, rng.integers(0, x.shape[1], size=(N_BOOT, x.shape[1]))].mean(axis=2)
    return (
        np.quantile(means, 0.025, axis=1, method="lower"),
        np.quantile(means, 0.975, axis=1, method="higher"),
    )


def main() -> None:
    print("| differences (centred) | skewness | n | bootstrap-t | Student t | percentile bootstrap |")
    print("|---|---|---|---|---|---|")
    for name, (skew, draw) in SHAPES.items():
        for n in (3, stats.MIN_PAIRED_SEEDS, 10):
            x = draw(np.random.default_rng(n), n)
            bt = covered(*stats.bootstrap_t_bounds([x], n_boot=N_BOOT, rng=np.random.default_rng(1)))
            t = covered(*student_t(x))
            pb = covered(*percentile(x, np.random.default_rng(1)))
            print(f"| {name} | {skew:+.2f} | {n} | {bt:.1%} | {t:.1%} | {pb:.1%} |")


if __name__ == "__main__":
    main()

"""The budget rule of the offline tier: is each env's epoch budget long enough for EW to converge?

Rule (issue 12, item 2). An env with a budget of ``E`` epochs at a constant learning rate
passes when, for EW (equal weighting) trained ``3E`` epochs on every seed of ``--seeds``
(at least 2), the model the harness would select within the first ``E`` epochs is, on
average over the seeds, within ``--tolerance`` (1.0) percent of the model it would select
within all ``3E`` epochs:

    gap(seed) = delta_p(val metrics selected in epochs 1..E, val metrics selected in 1..3E)
    pass      <=>  mean over seeds of gap(seed) >= -tolerance

``delta_p`` is the mean relative change per task (:func:`mtlbench.evaluation.delta_p`,
percent, higher is better), and "selected" is the harness's model selection (the
evaluation with the best validation score, earliest on ties). Nothing in a tier env's
protocol depends on the number of epochs (constant learning rate, no schedule) and EW does
not look at it, so the first ``E`` epochs of a ``3E``-epoch run are exactly the ``E``-epoch
run: one ``3E`` run per seed gives both sides. Why a tolerance of 1%: the differences the
litmus test resolves between a method and random weighting are of that order (issue 12:
RLW was -1.34% behind EW on MultiMNIST at 10 epochs and -0.24% at 30), so a budget that
leaves more than 1% on the table for EW measures convergence speed, not the method.

The script also prints the smallest budget ``E' <= E`` that passes on the same runs
(``gap`` of ``E'`` against ``3E'``), and the wall time EW took to reach epoch ``E``
(training and the per-epoch evaluations; the dataset build is not counted) with
``--threads`` torch threads, and the CPU time of the process over the same span. On a
shared machine the wall time depends on the load (printed at the start and the end); with
``--threads 1`` the CPU time is close to the wall time the run takes on one idle core.

    python benchmarks/budget_rule.py [--envs multimnist-hps-v2,...] [--seeds 0,1]
        [--threads 2] [--tolerance 1.0] [--factor 3] [--epochs ENV=E ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

import mtlbench
from mtlbench.envs.tier import OFFLINE_TIER
from mtlbench.evaluation import delta_p
from mtlbench.harness.results import Evaluation
from mtlbench.harness.train import train
from mtlbench.policies import make as make_policy


def selected(evaluations: Sequence[Evaluation], upto: int) -> Evaluation:
    """The evaluation the harness selects among the first ``upto`` (best val score, earliest on ties)."""
    window = list(evaluations[:upto])
    return max(enumerate(window), key=lambda p: (p[1].val_score, -p[0]))[1]


def gap(evaluations: Sequence[Evaluation], budget: int, factor: int, hib: Any) -> float:
    """delta_p (percent) of the selection within ``budget`` epochs against the one within ``factor * budget``."""
    short, long = selected(evaluations, budget), selected(evaluations, factor * budget)
    return delta_p(short.val, long.val, hib)


def mean_val(ev: Evaluation) -> float:
    values = [v for metrics in ev.val.values() for v in metrics.values()]
    return sum(values) / len(values)


def check_env(
    env_id: str, seeds: Sequence[int], budget: int | None, factor: int, tolerance: float
) -> dict[str, Any]:
    spec = mtlbench.spec(env_id)
    if spec.optimizer.scheduler is not None:
        raise SystemExit(
            f"{env_id}: the rule needs a constant learning rate, the env has {spec.optimizer.scheduler!r}"
        )
    budget = budget or spec.budget.epochs
    hib = spec.higher_is_better
    runs = []
    for seed in seeds:
        t0 = time.perf_counter()
        env = mtlbench.make(env_id, device="cpu", overrides={"budget.epochs": factor * budget})
        build_s = time.perf_counter() - t0
        stamps: list[tuple[float, float]] = []
        start, cpu_start = time.perf_counter(), time.process_time()
        result = train(
            env,
            make_policy("ew"),
            seed,
            on_evaluation=lambda _ev, s=stamps: s.append((time.perf_counter(), time.process_time())),
        )
        if result.status != "ok":
            raise SystemExit(f"{env_id} seed {seed}: EW run ended {result.status}: {result.message}")
        evs = result.evaluations
        runs.append(
            {
                "seed": seed,
                "build_s": round(build_s, 1),
                "time_to_budget_s": round(stamps[budget - 1][0] - start, 1),
                "cpu_time_to_budget_s": round(stamps[budget - 1][1] - cpu_start, 1),
                "gap": gap(evs, budget, factor, hib),
                "selected_epoch": selected(evs, budget).epoch,
                "selected_epoch_long": selected(evs, factor * budget).epoch,
                "mean_val_at_budget": mean_val(selected(evs, budget)),
                "mean_val_long": mean_val(selected(evs, factor * budget)),
                "gaps_by_budget": {e: gap(evs, e, factor, hib) for e in range(1, budget + 1)},
            }
        )
        print(
            f"  {env_id} seed {seed}: gap {runs[-1]['gap']:+.3f}%  (selected epoch "
            f"{runs[-1]['selected_epoch']} of {budget} vs {runs[-1]['selected_epoch_long']} of "
            f"{factor * budget}); {runs[-1]['time_to_budget_s']} s wall, "
            f"{runs[-1]['cpu_time_to_budget_s']} s CPU to epoch {budget}",
            flush=True,
        )
    mean_gap = statistics.fmean(r["gap"] for r in runs)
    smallest = next(
        (
            e
            for e in range(1, budget + 1)
            if statistics.fmean(r["gaps_by_budget"][e] for r in runs) >= -tolerance
        ),
        None,
    )
    return {
        "env": env_id,
        "budget": budget,
        "factor": factor,
        "tolerance": tolerance,
        "seeds": list(seeds),
        "mean_gap": mean_gap,
        "passes": mean_gap >= -tolerance,
        "smallest_passing_budget": smallest,
        "mean_time_to_budget_s": statistics.fmean(r["time_to_budget_s"] for r in runs),
        "mean_cpu_time_to_budget_s": statistics.fmean(r["cpu_time_to_budget_s"] for r in runs),
        "runs": runs,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--envs", default=",".join(OFFLINE_TIER), help="comma-separated env ids (default: the tier)"
    )
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (at least 2)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--tolerance", type=float, default=1.0, help="allowed mean gap, percent (default 1.0)")
    p.add_argument("--factor", type=int, default=3, help="the long run is factor x the budget (default 3)")
    p.add_argument(
        "--epochs", nargs="*", default=[], help="ENV=E: check budget E instead of the registered one"
    )
    p.add_argument("--json", default=None, help="also write the figures to this (new) JSON file")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if len(seeds) < 2:
        p.error("the rule needs at least 2 seeds")
    if args.factor < 2:
        p.error("--factor must be at least 2")
    if args.json and os.path.exists(args.json):
        p.error(f"{args.json} exists; the script never overwrites a file")
    budgets = {}
    for item in args.epochs:
        env_id, sep, value = item.partition("=")
        if not sep or not value.isdigit() or int(value) < 1:
            p.error(f"--epochs expects ENV=E with a positive integer E, got {item!r}")
        budgets[env_id] = int(value)
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    print(
        f"budget rule: EW, seeds {seeds}, factor {args.factor}, tolerance {args.tolerance}%, "
        f"{args.threads} threads, load average {load0:.2f} on {os.cpu_count()} cores",
        flush=True,
    )
    reports = [
        check_env(e, seeds, budgets.get(e), args.factor, args.tolerance) for e in args.envs.split(",") if e
    ]
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    header = (
        f"{'env':26} {'E':>4} {'3E':>4} {'mean gap %':>11} {'rule':>5} {'smallest E':>10} "
        f"{'wall s to E':>11} {'CPU s to E':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in reports:
        print(
            f"{r['env']:26} {r['budget']:>4} {r['factor'] * r['budget']:>4} {r['mean_gap']:>+11.3f} "
            f"{'pass' if r['passes'] else 'FAIL':>5} {r['smallest_passing_budget']!s:>10} "
            f"{r['mean_time_to_budget_s']:>11.1f} {r['mean_cpu_time_to_budget_s']:>10.1f}"
        )
    if args.json:
        with open(args.json, "x") as fh:
            json.dump({"argv": sys.argv[1:], "load_average_start": load0, "reports": reports}, fh, indent=1)
    return 0 if all(r["passes"] for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())

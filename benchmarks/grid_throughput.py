"""Grid throughput: runs per hour with 1 worker and with N workers, and their ratio.

Runs the same small grid (``--runs`` seeds of EW on ``multimnist-hps`` with tiny,
unofficial overrides) through :func:`mtlbench.harness.grid.run_grid` once per worker
count, into a fresh results folder each time so that nothing is skipped, in one process.
Configurations alternate over ``--repeats`` rounds (1, N, 1, N, ...) so that drift in the
machine's load hits both alike; the figure reported is the median wall time per
configuration. On the ``local`` backend every run is a child process (interpreter start,
imports and data build included, as in a real grid), and a run gets cores/workers threads.

    python benchmarks/grid_throughput.py [--runs 4] [--workers 2] [--repeats 3] \
        [--limit 256] [--epochs 2] [--backend local|ray] [--address auto]

The ratio (N workers / 1 worker) is the speed-up of the grid: N on an idle machine with at
least N x threads cores, less when runs contend for cores or memory bandwidth.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from mtlbench.harness.grid import run_grid
from mtlbench.harness.runner import MethodRef, RunRequest


def grid(results_dir: Path, runs: int, limit: int, epochs: int) -> list[RunRequest]:
    overrides = {"dataset.kwargs.limit": limit, "optimizer.batch_size": 16, "budget.epochs": epochs}
    return [
        RunRequest(
            env_id="multimnist-hps",
            method=MethodRef.builtin("ew"),
            seed=seed,
            results_dir=str(results_dir),
            device="cpu",
            overrides=overrides,
        )
        for seed in range(runs)
    ]


def timed_grid(args: argparse.Namespace, workers: int, root: Path, tag: str) -> float:
    requests = grid(root / tag, args.runs, args.limit, args.epochs)
    if args.backend == "ray":  # the local backend splits the cores itself
        threads = max(1, (os.cpu_count() or 1) // workers)
        requests = [replace(r, threads=threads) for r in requests]
    start = time.perf_counter()
    report = run_grid(
        requests, backend=args.backend, workers=workers, progress=False, ray_address=args.address
    )
    wall = time.perf_counter() - start
    if report.failed or len(report.written) != args.runs:
        raise SystemExit(f"{tag}: the grid did not complete: {report.failed}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="runs in the grid (seeds of EW)")
    parser.add_argument("--workers", type=int, default=2, help="the worker count compared with 1")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (1 worker, N workers)")
    parser.add_argument("--limit", type=int, default=256, help="images per split (dataset.kwargs.limit)")
    parser.add_argument("--epochs", type=int, default=2, help="budget.epochs")
    parser.add_argument("--backend", choices=["local", "ray"], default="local")
    parser.add_argument(
        "--address", default=None, help="Ray address (backend ray; default: a local instance)"
    )
    args = parser.parse_args()

    if args.backend == "ray":
        import ray

        ray.init(address=args.address)  # once, so that start-up is not timed

    walls: dict[int, list[float]] = {1: [], args.workers: []}
    with tempfile.TemporaryDirectory(prefix="mtlbench-throughput-") as tmp:
        for round_ in range(args.repeats):
            for workers in walls:
                wall = timed_grid(args, workers, Path(tmp), f"r{round_}-w{workers}")
                walls[workers].append(wall)
                print(
                    f"round {round_ + 1}: {workers} worker(s): {args.runs} runs in {wall:.1f} s", flush=True
                )

    per_hour = {w: args.runs / statistics.median(t) * 3600 for w, t in walls.items()}
    print(
        f"\nbackend {args.backend}, {os.cpu_count()} CPU cores, {args.runs} runs of multimnist-hps "
        f"(limit {args.limit}, batch 16, {args.epochs} epochs), median of {args.repeats}:"
    )
    for workers, rate in per_hour.items():
        print(
            f"  {workers} worker(s): {rate:8.1f} runs/hour  (median wall {statistics.median(walls[workers]):.1f} s)"
        )
    print(f"  ratio {args.workers} workers / 1 worker: {per_hour[args.workers] / per_hour[1]:.2f}")


if __name__ == "__main__":
    main()

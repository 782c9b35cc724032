"""Single-task reference of an env: one model per task, trained alone under the env's protocol.

For every task of ``--env`` (default ``qm9-small-hps-v1``) and every seed of ``--seeds``, the
script builds the env's spec with that task alone (same data, model with one head, optimiser,
budget and model selection), trains it with EW (one task: plain single-task training) and
takes the test metrics at the selected evaluation (best validation score, earliest on ties,
as the harness selects). The reference of a task is the mean over seeds of those test
metrics. It prints the mapping to paste into the env's ``STL_REFERENCE`` (its spec's
``stl_reference``, against which results report Delta_m) and, with ``--json``, writes every
run's figures and the provenance (commit, seeds, threads, versions, times) to a new file.

The budget is the env's registered one unless ``--epochs`` says otherwise; the spec's own
``stl_reference`` is dropped for the single-task runs (model selection is then against the
run's first evaluation, which for one task is the same as taking the best validation metric).

    python benchmarks/stl_reference.py [--env qm9-small-hps-v1] [--seeds 0,1,2] [--threads 2]
        [--epochs E] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

import mtlbench
from mtlbench.harness.train import train
from mtlbench.policies import make as make_policy
from mtlbench.registration import BenchmarkSpec, BudgetSpec


def single_task_spec(spec: BenchmarkSpec, task: str, epochs: int | None = None) -> BenchmarkSpec:
    """``spec`` with only ``task`` (and no STL reference); ``epochs`` replaces the budget's."""
    chosen = [t for t in spec.tasks if t.name == task]
    if not chosen:
        raise KeyError(f"{spec.id} has no task {task!r}; tasks: {', '.join(spec.task_names)}")
    budget = spec.budget if epochs is None else dataclasses.replace(spec.budget, epochs=epochs)
    return dataclasses.replace(
        spec,
        id=f"stl-{task}-{spec.name}-v{spec.version}",
        tasks=tuple(chosen),
        stl_reference=None,
        budget=BudgetSpec(**dataclasses.asdict(budget)),
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="qm9-small-hps-v1")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--epochs", type=int, default=None, help="budget (default: the env's)")
    p.add_argument("--tasks", default=None, help="comma-separated subset of the tasks (default: all)")
    p.add_argument("--json", default=None, help="write every run and the provenance to this new file")
    args = p.parse_args(argv)
    if args.json and os.path.exists(args.json):
        p.error(f"{args.json} exists; the script never overwrites a file")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    torch.set_num_threads(args.threads)
    spec = mtlbench.spec(args.env)
    tasks = args.tasks.split(",") if args.tasks else list(spec.task_names)
    runs: list[dict[str, Any]] = []
    reference: dict[str, dict[str, float]] = {}
    start = time.time()
    for task in tasks:
        stl = single_task_spec(spec, task, args.epochs)
        per_seed = []
        for seed in seeds:
            env = mtlbench.make(stl, device="cpu")
            result = train(env, make_policy("ew"), seed)
            if result.status != "ok" or result.selected is None:
                raise SystemExit(f"{task} seed {seed}: run ended {result.status}: {result.message}")
            test = result.selected.test[task]
            per_seed.append(test)
            runs.append(
                {
                    "task": task,
                    "seed": seed,
                    "selected_epoch": result.selected.epoch,
                    "test": test,
                    "val": result.selected.val[task],
                    "wall_time_s": result.cost.wall_time_s,
                }
            )
            print(f"  {task} seed {seed}: epoch {result.selected.epoch}, test {test}", flush=True)
        reference[task] = {m: statistics.fmean(r[m] for r in per_seed) for m in per_seed[0]}
    print("STL_REFERENCE = {")
    for task, metrics in reference.items():
        print(f"    {task!r}: {{{', '.join(f'{m!r}: {v:.6g}' for m, v in metrics.items())}}},")
    print("}")
    if args.json:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        provenance = {
            "env": args.env,
            "spec_hash_without_reference": dataclasses.replace(spec, stl_reference=None).hash,
            "epochs": args.epochs or spec.budget.epochs,
            "seeds": seeds,
            "threads": args.threads,
            "commit": commit,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": round(time.time() - start, 1),
            "argv": sys.argv[1:],
        }
        with open(args.json, "x") as fh:
            json.dump({"provenance": provenance, "reference": reference, "runs": runs}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Isolation cost: step time of a policy in its own process, as a ratio to the same policy in-process.

For each workload, two runners of :mod:`policy_cost` (``policy.act`` + ``env.step`` +
``policy.update``, what :func:`mtlbench.harness.train.train` runs) take turns in blocks of
``--block`` steps until each has ``--steps`` timed steps: one holds the policy in this
process, the other an :class:`~mtlbench.harness.isolation.IsolatedPolicy` of the same
method (its own process; observations and actions through shared buffers). Each has its own
env at seed 0. Runners restart before an epoch end, so no evaluation is timed; every step is
timed alone (on CUDA with a synchronisation after it). ``ratio`` is the median over rounds of
(median isolated step / median in-process step in the round), so slow phases of a shared
machine hit both sides.

Workloads (issue 10's targets, both <= 1.05x):

* ``multimnist``: ``multimnist-hps-v1``, a loss-level method (default ``rlw``);
* ``resnet18``: the fixed ResNet-18-to-layer2 workload of ``policy_cost.py`` with a
  parameter-level method that reads the ``T x D`` Jacobian (default ``db-mtl``, which also
  answers a ``(D,)`` direction), so the Jacobian travels every step.

    python benchmarks/isolation_cost.py [--workload both] [--device cpu] [--threads 2]
        [--steps 30] [--warmup 3] [--block 5] [--loss-method rlw] [--jacobian-method db-mtl]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import policy_cost  # the workloads and runners of the policy-cost benchmark

from mtlbench.harness.isolation import IsolatedPolicy, IsolationLimits
from mtlbench.harness.runner import MethodRef


def measure(
    env_id: str, method: str, device: torch.device, steps: int, warmup: int, block: int
) -> tuple[float, float, float]:
    """(median in-process ms, median isolated ms, median per-round ratio)."""
    ref = MethodRef.builtin(method)
    inline = policy_cost.EnvRunner(env_id, ref.make_policy(), device, warmup)
    isolated_policy = IsolatedPolicy(
        ref.make_policy, label=method, limits=IsolationLimits(), threads=torch.get_num_threads()
    )
    isolated = policy_cost.EnvRunner(env_id, isolated_policy, device, warmup)
    try:
        inline.restart()
        isolated.restart()
        times: dict[str, list[float]] = {"inline": [], "isolated": []}
        ratios = []
        rnd = 0
        while len(times["isolated"]) < steps:
            order = [("inline", inline), ("isolated", isolated)]
            if rnd % 2:
                order.reverse()
            got = {name: runner.block(block) for name, runner in order}
            for name, t in got.items():
                times[name].extend(t)
            ratios.append(statistics.median(got["isolated"]) / statistics.median(got["inline"]))
            rnd += 1
        return (
            1e3 * statistics.median(times["inline"]),
            1e3 * statistics.median(times["isolated"]),
            statistics.median(ratios),
        )
    finally:
        inline.close()
        isolated.close()
        isolated_policy.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["multimnist", "resnet18", "both"], default="both")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--block", type=int, default=5)
    parser.add_argument("--loss-method", default="rlw")
    parser.add_argument("--jacobian-method", default="db-mtl")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    workloads = ["multimnist", "resnet18"] if args.workload == "both" else [args.workload]
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.steps} timed steps per runner")
    print(f"{'workload':<12} {'method':<10} {'in-process ms':>14} {'isolated ms':>12} {'ratio':>7}")
    for workload in workloads:
        if workload == "resnet18":
            policy_cost.register_resnet_workload()
        method = args.loss_method if workload == "multimnist" else args.jacobian_method
        inline_ms, isolated_ms, ratio = measure(
            policy_cost.WORKLOADS[workload], method, device, args.steps, args.warmup, args.block
        )
        print(f"{workload:<12} {method:<10} {inline_ms:>14.2f} {isolated_ms:>12.2f} {ratio:>6.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

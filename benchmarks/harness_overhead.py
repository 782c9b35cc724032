"""Harness overhead: MTLEnv + EW policy vs a plain PyTorch loop, same model and batches.

Both loops train the same LeNet HPS model of ``multimnist-hps`` (same initial weights, same
optimiser settings) on the same batches, sliced from the same in-memory tensors in the same
order. The plain loop is what a user would write by hand: forward, sum of task losses,
backward, Adam step. The harness loop is ``policy.act`` + ``env.step`` (which also builds
the observation and checks the action and the losses). The two loops alternate
in one process, one step each in turn, and the reported figure is the ratio of the median
step times (harness / plain). Goal: <= 1.05.

    python benchmarks/harness_overhead.py [--steps 200] [--warmup 5] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Iterator

import torch

import mtlbench
from mtlbench.harness import env_kwargs_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps of each loop")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    policy = mtlbench.policies.make("ew")
    env = mtlbench.make("multimnist-hps", device=device, **env_kwargs_for(policy))
    policy.reset(env.task_names, 0, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def harness_steps() -> Iterator[None]:
        obs, _ = env.reset(seed=0)
        while True:
            for _ in range(env.steps_per_epoch - 1):  # never cross an evaluation
                obs, *_ = env.step(policy.act(obs))
                yield
            obs, _ = env.reset(seed=0)

    env.reset(seed=0)
    model0 = copy.deepcopy(env.model)
    spec = env.bench_spec
    loss_fns = [env.loss_fns[t] for t in env.task_names]

    def plain_steps() -> Iterator[None]:
        while True:
            model = copy.deepcopy(model0).train()
            opt = torch.optim.Adam(
                model.parameters(), lr=spec.optimizer.lr, weight_decay=spec.optimizer.weight_decay
            )
            gen = torch.Generator().manual_seed(0)
            for x, y in env.splits.train.batches(
                spec.optimizer.batch_size, shuffle=True, generator=gen, drop_last=True, device=device
            ):
                out = model(x)
                loss = sum(fn(out[t], y[t]) for fn, t in zip(loss_fns, env.task_names, strict=True))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                yield

    def timed(steps: Iterator[None]) -> float:
        sync()
        start = time.perf_counter()
        next(steps)
        sync()
        return time.perf_counter() - start

    # Steps of the two loops alternate one by one, so load changes on a shared machine hit
    # both alike; the figure is the ratio of the median step times.
    harness, plain = harness_steps(), plain_steps()
    for _ in range(args.warmup):
        timed(harness), timed(plain)
    h_times, p_times = [], []
    for _ in range(args.steps):
        p_times.append(timed(plain))
        h_times.append(timed(harness))
    ratio = statistics.median(h_times) / statistics.median(p_times)
    print(
        f"device={device} threads={args.threads} steps={args.steps} (alternating, after {args.warmup} warm-up)"
    )
    print(f"plain PyTorch loop : {statistics.median(p_times) * 1e3:8.3f} ms/step (median)")
    print(f"MTLEnv + EW policy : {statistics.median(h_times) * 1e3:8.3f} ms/step (median)")
    print(f"overhead ratio     : {ratio:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()

"""Harness overhead: MTLEnv + EW policy vs a plain PyTorch loop, same model and batches.

Both loops train the same LeNet HPS model of ``multimnist-hps`` (same initial weights, same
optimiser settings) on the same batches, sliced from the same in-memory tensors in the same
order. The plain loop is what a user would write by hand: forward, sum of task losses,
backward, Adam step. The harness loop is ``policy.act`` + ``env.step`` (which also builds
the observation and checks the action and the losses). Blocks of the two loops alternate
in one process, and the reported figure is the median over blocks of the per-step time
ratio (harness / plain). Goal: <= 1.05.

    python benchmarks/harness_overhead.py [--steps 30] [--repeats 7] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

import mtlbench
from mtlbench.harness import env_kwargs_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="steps per timed block (< one epoch)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    policy = mtlbench.policies.make("ew")
    env = mtlbench.make("multimnist-hps", device=device, **env_kwargs_for(policy))
    assert args.steps < env.steps_per_epoch, "a block must not cross an evaluation"
    policy.reset(env.task_names, 0, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def harness_block() -> float:
        obs, _ = env.reset(seed=0)
        sync()
        start = time.perf_counter()
        for _ in range(args.steps):
            obs, *_ = env.step(policy.act(obs))
        sync()
        return (time.perf_counter() - start) / args.steps

    env.reset(seed=0)
    model0 = copy.deepcopy(env.model)
    spec = env.bench_spec
    loss_fns = [env.loss_fns[t] for t in env.task_names]

    def plain_block() -> float:
        model = copy.deepcopy(model0).train()
        opt = torch.optim.Adam(
            model.parameters(), lr=spec.optimizer.lr, weight_decay=spec.optimizer.weight_decay
        )
        gen = torch.Generator().manual_seed(0)
        batches = env.splits.train.batches(
            spec.optimizer.batch_size, shuffle=True, generator=gen, drop_last=True, device=device
        )
        x, y = next(batches)
        sync()
        start = time.perf_counter()
        for _ in range(args.steps):
            out = model(x)
            loss = sum(fn(out[t], y[t]) for fn, t in zip(loss_fns, env.task_names, strict=True))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            x, y = next(batches)
        sync()
        return (time.perf_counter() - start) / args.steps

    harness_block(), plain_block()  # warm-up
    ratios, h_times, p_times = [], [], []
    for _ in range(args.repeats):
        p = plain_block()
        h = harness_block()
        ratios.append(h / p)
        h_times.append(h)
        p_times.append(p)
    print(f"device={device} threads={args.threads} steps/block={args.steps} repeats={args.repeats}")
    print(f"plain PyTorch loop : {statistics.median(p_times) * 1e3:8.3f} ms/step (median)")
    print(f"MTLEnv + EW policy : {statistics.median(h_times) * 1e3:8.3f} ms/step (median)")
    print(
        f"overhead ratio     : {statistics.median(ratios):.3f}  (goal <= 1.05; per block: "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + ")"
    )


if __name__ == "__main__":
    main()

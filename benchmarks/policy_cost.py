"""Policy cost: step time and peak memory of every weighting method, as ratios to EW.

For every method (and a few composites), on ``multimnist-hps`` and on a fixed ResNet
workload, the script times the real training path, ``policy.act`` + ``env.step`` +
``policy.update`` (what :func:`mtlbench.harness.train.train` runs), and measures the peak
tensor memory of a short run. Both are reported as ratios to EW measured in the same
process.

Fixed workload (``resnet18``): torchvision's ResNet-18 (random init) truncated after
``layer2`` is the shared encoder; its representation is the ``128 x 8 x 8`` feature map of
a ``3 x 64 x 64`` image. Three heads read it: two 10-class classifiers (global average pool,
``Linear(128, 10)``, cross-entropy) and one regression head (pool, ``Linear(128, 1)``, L1).
Batch 16, Adam 1e-4, random in-memory data. It is registered for this process only as
``policy-cost-resnet18-layer2-v1`` (a synthetic dataset and a backbone are added to
``mtlbench.data.DATASETS`` and ``mtlbench.models.BACKBONES``), so it goes through the very
same ``MTLEnv`` code as the built-in envs.

Timing. Per method, an EW runner (its own env), the method's runner and, for methods that
need the parameter Jacobian, the *floor* runner take turns in blocks of ``--block`` steps
(default 1; the order rotates each round) until each has ``--steps`` timed steps; every runner first
takes ``--warmup`` untimed steps after each (re)start. A runner restarts (env and policy
reset, same seed, untimed) before a block would cross an epoch end, so no evaluation is
ever timed. Every step is timed alone (on CUDA with a synchronisation after it). The
reported ``ms`` is the median of the method's step times; ``x EW`` (``x floor``) is the
median over rounds of (median method step in the round / median EW (floor) step in the
round), so slow phases of a shared machine hit both sides of each ratio. The ``ew`` row is
EW against a second EW env: its distance from 1.00 is the noise of the measurement.

Reference rows (not methods): ``ref:jacobian`` asks the env for the parameter Gramian and
answers EW's weights as a :class:`GradientWeights`, so it costs exactly what the env adds for
any Gramian-based parameter-level method (Jacobian, Gramian, gradient-level
backward); ``ref:rep-jacobian`` is the same on the representation. A method's distance from
its reference row is the cost of the method's own computation.

Floor: what a parameter-level method cannot avoid when written by hand: forward, ``T``
separate ``torch.autograd.grad`` calls w.r.t. the shared parameters with ``retain_graph``
(:func:`mtlbench.autodiff.jacobian_loop`), the heads' backward, the unweighted sum of the
task gradients written into ``.grad``, one Adam step; a plain PyTorch loop on the same
model, initial weights and batch size.

Peak memory: a fresh env and policy per method; the window is ``policy.reset`` +
``env.reset`` + ``--mem-steps`` steps, so it covers the model, optimiser state, autograd
graph, Jacobian and policy state, but not the dataset (loaded before the window). On CUDA it
is ``torch.cuda.max_memory_allocated`` minus the allocation at the start of the window. On
CPU it is the peak of the running sum of the CPU allocator's allocation and free events
recorded by ``torch.profiler.profile(profile_memory=True)`` over the window (bytes of
tensor storage; neither Python objects nor allocator caching are counted). ``extra`` is the
method's peak minus EW's; the target for parameter-level methods is ``extra <= |J|``, the
size of the ``T x D`` float32 Jacobian of the method's ``wrt``.

Targets (issue): loss-level <= 1.05x EW (FAMO, second forward, <= 1.3x); representation-
level <= 1.1x EW; parameter-level <= 1.0x floor (solver-based: MGDA, CAGrad, Nash-MTL,
UPGrad, FairGrad, <= 1.1x floor) and extra peak memory <= |J|. A composite takes the target
of its gradient part.

    python benchmarks/policy_cost.py [--workload both] [--device cpu] [--threads 2]
        [--steps 20] [--warmup 3] [--block 1] [--methods ew,mgda,rlw+cagrad]
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

# The memory profiler's Kineto backend logs a spurious 'gpuGetDeviceCount failed' ERROR on
# machines without a GPU; level 5 keeps only its fatal messages. Set before torch loads it.
os.environ.setdefault("KINETO_LOG_LEVEL", "5")

import torch
from torch import nn

import mtlbench
from mtlbench.autodiff import jacobian_loop
from mtlbench.data import DATASETS
from mtlbench.data.base import Splits, TensorMTLDataset
from mtlbench.env import MTLEnv
from mtlbench.harness import env_kwargs_for
from mtlbench.models import BACKBONES, MTLModel
from mtlbench.policies import GradientWeights, Observation, Policy
from mtlbench.policies.base import Wrt
from mtlbench.registration import (
    BenchmarkSpec,
    BudgetSpec,
    DatasetSpec,
    MetricSpec,
    ModelSpec,
    OptimizerSpec,
    TaskSpec,
)

COMPOSITES = ("rlw+cagrad", "uw+pcgrad", "famo+mgda", "rlw+mgda-ub")
#: gradient-level methods that run an iterative solver on the Gramian every step
SOLVER_BASED = frozenset({"mgda", "mgda-ub", "cagrad", "nash-mtl", "upgrad", "fairgrad"})
WORKLOADS = {"multimnist": "multimnist-hps-v1", "resnet18": "policy-cost-resnet18-layer2-v1"}


# ------------------------------------------------------------------ reference "methods"
class JacobianOnly(Policy):
    """Reference row: the env computes the parameter Jacobian and Gramian; the action is EW's.

    Its cost is what the env itself adds for every Gramian-based parameter-level method; a
    method's distance from this row is the cost of the method's own computation.
    """

    name = "ref:jacobian"
    level = "gradient"
    needs = frozenset({"losses", "gramian"})
    wrt: ClassVar[Wrt] = "parameters"

    def act(self, observation: Observation) -> GradientWeights:
        return GradientWeights(torch.ones_like(observation["losses"]))


class RepJacobianOnly(JacobianOnly):
    """Reference row: the same on the shared representation (what MGDA-UB, GradNorm pay)."""

    name = "ref:rep-jacobian"
    wrt = "representation"


#: defined here rather than registered: ``policies.load`` resolves a module without a dot
#: (such as ``__main__``) inside ``mtlbench.policies``
REFERENCES: dict[str, type[Policy]] = {p.name: p for p in (JacobianOnly, RepJacobianOnly)}


def make_policy(name: str) -> Policy:
    return REFERENCES[name]() if name in REFERENCES else mtlbench.policies.make(name)


# ------------------------------------------------------------------ the fixed ResNet workload
SYNTH_DATASET = "policy-cost-synthetic"
SYNTH_MODULE = "_policy_cost_synthetic"  # lives in sys.modules as mtlbench.data.<this>
BACKBONE = "policy-cost-resnet18-layer2"
RESNET_BATCH, RESNET_IMAGE, RESNET_TRAIN = 16, 64, 16 * 64


def resnet18_layer2(
    tasks: Sequence[TaskSpec], *, num_classes: int = 10
) -> tuple[nn.Module, dict[str, nn.Module]]:
    """Backbone factory: ResNet-18 (random init) up to ``layer2``; pooled linear heads."""
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    encoder = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2)
    width = 128  # channels out of layer2

    def head(out: int) -> nn.Module:
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, out))

    heads = {t.name: head(num_classes if t.type == "classification" else 1) for t in tasks}
    return encoder, heads


_SPLITS_CACHE: dict[tuple[Any, ...], Splits] = {}


def _synthetic_load(
    root: Path | None = None,
    *,
    name: str = SYNTH_DATASET,
    n_train: int = RESNET_TRAIN,
    n_eval: int = RESNET_BATCH,
    image_size: int = RESNET_IMAGE,
    seed: int = 0,
) -> Splits:
    """Random images, labels and regression targets (cached: every env shares one copy)."""
    del root, name
    key = (n_train, n_eval, image_size, seed)
    if key not in _SPLITS_CACHE:
        gen = torch.Generator().manual_seed(seed)

        def split(n: int) -> TensorMTLDataset:
            x = torch.randn(n, 3, image_size, image_size, generator=gen)
            return TensorMTLDataset(
                x,
                {
                    "cls_a": torch.randint(0, 10, (n,), generator=gen),
                    "cls_b": torch.randint(0, 10, (n,), generator=gen),
                    "reg": torch.randn(n, generator=gen),
                },
            )

        _SPLITS_CACHE[key] = Splits(split(n_train), split(n_eval), split(n_eval))
    return _SPLITS_CACHE[key]


def register_resnet_workload() -> None:
    """Register the synthetic dataset, the backbone and the env id, for this process only."""
    module = types.ModuleType(f"mtlbench.data.{SYNTH_MODULE}")
    module.NAME = SYNTH_DATASET  # type: ignore[attr-defined]
    module.load = _synthetic_load  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    DATASETS[SYNTH_DATASET] = SYNTH_MODULE
    # models._load imports the module by name; when run as a script that is __main__
    BACKBONES[BACKBONE] = f"{__name__}:{resnet18_layer2.__name__}"

    def classification(name: str) -> TaskSpec:
        return TaskSpec(
            name=name,
            type="classification",
            loss="cross_entropy",
            metric="accuracy",
            metrics=(MetricSpec("acc", higher_is_better=True),),
        )

    mtlbench.registration.register(
        BenchmarkSpec(
            id=WORKLOADS["resnet18"],
            description="policy_cost.py fixed workload: ResNet-18 to layer2, 3 tasks, random data",
            dataset=DatasetSpec(name=SYNTH_DATASET, revision="random-seed-0"),
            tasks=(
                classification("cls_a"),
                classification("cls_b"),
                TaskSpec(
                    name="reg",
                    type="regression",
                    loss="l1",
                    metric="mae",
                    metrics=(MetricSpec("mae", higher_is_better=False),),
                ),
            ),
            model=ModelSpec(architecture="hps", backbone=BACKBONE),
            optimizer=OptimizerSpec(name="adam", lr=1e-4, weight_decay=0.0, batch_size=RESNET_BATCH),
            budget=BudgetSpec(epochs=10_000),  # never reached: runners restart before an epoch end
        ),
        override=True,
    )


# ------------------------------------------------------------------------------ runners
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EnvRunner:
    """One policy on one env: the harness loop of ``train`` (act, step, update)."""

    def __init__(self, env_id: str, policy: Policy, device: torch.device, warmup: int) -> None:
        self.policy = policy
        self.device = device
        self.warmup = warmup
        self.env: MTLEnv = mtlbench.make(env_id, device=device, **env_kwargs_for(policy))
        self.obs: dict[str, torch.Tensor] = {}

    def reset_policy(self) -> None:
        env, spec = self.env, self.env.bench_spec
        self.policy.reset(
            env.task_names,
            0,
            device=env.device,
            lr=spec.optimizer.lr,
            steps_per_epoch=env.steps_per_epoch,
            num_epochs=spec.budget.epochs,
            representation_dim=env.representation_dim() if self.policy.wrt == "representation" else None,
        )

    def reset_env(self) -> None:
        adapters = self.policy.representation_adapters()
        self.obs, _ = self.env.reset(seed=0, options={"adapters": adapters} if adapters is not None else None)

    def restart(self) -> None:
        self.reset_policy()
        self.reset_env()
        for _ in range(self.warmup):
            self.step()

    def room(self) -> int:
        """Steps left before one would end the epoch (and run the evaluator)."""
        if self.env.model is None:
            return -1
        return self.env.steps_per_epoch - 1 - self.env.step_in_epoch

    def step(self) -> None:
        action = self.policy.act(self.obs)
        self.obs, _, terminated, truncated, info = self.env.step(action)
        self.policy.update(info)
        if terminated or truncated:
            raise RuntimeError(f"the run ended during the benchmark: {info}")

    def block(self, n: int) -> list[float]:
        if self.room() < n:
            self.restart()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            self.step()
            _sync(self.device)
            times.append(time.perf_counter() - start)
        return times

    def close(self) -> None:
        self.env.close()


class FloorRunner:
    """Hand-written parameter-level loop: forward, T autograd.grad calls, heads, Adam step."""

    def __init__(self, ew: EnvRunner, warmup: int) -> None:
        env = ew.env
        self.device = env.device
        self.batch = env.bench_spec.optimizer.batch_size
        self.data = env.splits.train
        self.loss_fns = [env.loss_fns[t] for t in env.task_names]
        self.task_names = env.task_names
        opt = env.bench_spec.optimizer
        if opt.name != "adam":
            raise ValueError(f"the floor loop uses Adam; the workload uses {opt.name!r}")
        self.lr, self.weight_decay = opt.lr, opt.weight_decay
        ew.reset_env()  # seed 0: the same initial weights as every env runner
        assert ew.env.model is not None
        self.model0 = copy.deepcopy(ew.env.model)
        self.warmup = warmup
        self.model: MTLModel | None = None

    def restart(self, warmup: int | None = None) -> None:
        self.model = copy.deepcopy(self.model0).train()
        self.shared = self.model.shared_parameters()
        self.heads = self.model.task_parameters()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.batches = self._batches()
        for _ in range(self.warmup if warmup is None else warmup):
            self.step()

    def _batches(self) -> Iterator[Any]:
        gen = torch.Generator().manual_seed(0)
        while True:
            yield from self.data.batches(
                self.batch, shuffle=True, generator=gen, drop_last=True, device=self.device
            )

    def step(self) -> None:
        assert self.model is not None
        x, y = next(self.batches)
        out = self.model(x)
        losses = torch.stack([fn(out[t], y[t]) for fn, t in zip(self.loss_fns, self.task_names)])
        jac = jacobian_loop(losses, self.shared, retain_graph=True)
        torch.autograd.backward(losses.sum(), inputs=self.heads)
        direction = jac.sum(0)
        offset = 0
        for p in self.shared:
            n = p.numel()
            p.grad = direction[offset : offset + n].view_as(p).clone()
            offset += n
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def block(self, n: int) -> list[float]:
        if self.model is None:
            self.restart()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            self.step()
            _sync(self.device)
            times.append(time.perf_counter() - start)
        return times


# ------------------------------------------------------------------------------ memory
def peak_bytes(device: torch.device, run: Callable[[], None]) -> int:
    """Peak tensor bytes allocated during ``run`` above the allocation at its start."""
    gc.collect()  # garbage of earlier runners must not be freed inside the window
    if device.type == "cuda":
        _sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - base
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    # The event tree (a semi-private torch API) gives each allocation's pointer, so frees can
    # be matched with allocations; the public key_averages() has only per-op totals.
    events: list[tuple[int, int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            events.append((node.start_time_ns, node.extra_fields.ptr, node.extra_fields.alloc_size))
        stack.extend(node.children)
    events.sort(key=lambda e: e[0])
    live: dict[int, int] = {}  # ptr -> bytes of the blocks allocated inside the window
    total = peak = 0
    for _, ptr, size in events:
        if size > 0:
            live[ptr] = size
            total += size
            peak = max(peak, total)
        elif ptr in live:  # frees of blocks allocated before the window are ignored
            total -= live.pop(ptr)
    return peak


def method_peak(env_id: str, name: str, device: torch.device, steps: int) -> int:
    runner = EnvRunner(env_id, make_policy(name), device, warmup=0)

    def run() -> None:
        runner.reset_policy()
        runner.reset_env()
        for _ in range(steps):
            runner.step()

    try:
        return peak_bytes(device, run)
    finally:
        runner.close()


def floor_peak(floor: FloorRunner, device: torch.device, steps: int) -> int:
    def run() -> None:
        floor.restart(warmup=0)
        for _ in range(steps):
            floor.step()

    return peak_bytes(device, run)


# ------------------------------------------------------------------------------ targets
@dataclass(frozen=True)
class Target:
    against: str  # "ew" | "floor"
    bound: float
    memory: bool  # also check extra peak memory <= |J|

    def __str__(self) -> str:
        text = f"<= {self.bound:.2f}x {'EW' if self.against == 'ew' else 'floor'}"
        return text + ", extra <= J" if self.memory else text


def target_for(name: str, policy: Policy) -> Target:
    grad_part = name.partition("+")[2] or name
    if name in REFERENCES:
        return Target(
            "floor" if policy.wrt == "parameters" else "ew",
            1.0 if policy.wrt == "parameters" else 1.1,
            memory=policy.wrt == "parameters",
        )
    if policy.level == "loss":
        return Target("ew", 1.3 if "next_losses" in policy.needs else 1.05, memory=False)
    if policy.wrt == "representation":
        return Target("ew", 1.1, memory=False)
    return Target("floor", 1.1 if grad_part in SOLVER_BASED else 1.0, memory=True)


def needs_parameter_jacobian(policy: Policy) -> bool:
    wants = policy.needs & {"jacobian", "gramian", "val_jacobian"}
    wrt = policy.wrt if policy.level == "gradient" else "parameters"
    return bool(wants) and wrt == "parameters"


# ------------------------------------------------------------------------------ the run
@dataclass
class Row:
    method: str
    level: str = ""
    wrt: str = ""
    ms: float | None = None
    x_ew: float | None = None
    x_floor: float | None = None
    peak: int | None = None
    jac: int | None = None  # bytes of the T x D Jacobian the method observes; None if none
    target: Target | None = None
    error: str | None = None
    blocks: dict[str, list[list[float]]] = field(default_factory=dict)


def _median_ratio(num: list[list[float]], den: list[list[float]]) -> float:
    return statistics.median(statistics.median(a) / statistics.median(b) for a, b in zip(num, den))


def _jacobian_bytes(runner: EnvRunner) -> int | None:
    env, policy = runner.env, runner.policy
    assert env.model is not None
    if not policy.needs & {"jacobian", "gramian", "val_jacobian"}:
        return None
    if policy.level == "gradient" and policy.wrt == "representation":
        x, _ = next(
            env.splits.train.batches(
                env.bench_spec.optimizer.batch_size,
                shuffle=False,
                generator=None,
                drop_last=True,
                device=env.device,
            )
        )
        with torch.no_grad():
            rep = env.model.encode(x)
        reps = list(rep.values()) if isinstance(rep, Mapping) else [rep]
        width = sum(r.numel() for r in reps)
    else:
        width = sum(p.numel() for p in env.model.shared_parameters())
    return env.num_tasks * width * 4


def _error_line(err: BaseException, limit: int = 160) -> str:
    text = "".join(traceback.format_exception_only(type(err), err)).strip().splitlines()[-1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def measure_method(
    name: str,
    env_id: str,
    ew: EnvRunner,
    floor: FloorRunner,
    args: argparse.Namespace,
    device: torch.device,
) -> Row:
    """Time ``name`` against EW (and the floor), in alternating blocks; then its peak memory."""
    row = Row(name)
    runner: EnvRunner | None = None
    try:
        policy = make_policy(name)
        row.level = policy.level
        row.wrt = policy.wrt if policy.level == "gradient" else "-"
        row.target = target_for(name, policy)
        runner = EnvRunner(env_id, policy, device, args.warmup)
        runner.restart()
        row.jac = _jacobian_bytes(runner)
        players: list[tuple[str, EnvRunner | FloorRunner]] = [("ew", ew), ("method", runner)]
        if needs_parameter_jacobian(policy):
            players.append(("floor", floor))
        row.blocks = {key: [] for key, _ in players}
        done = rounds = 0
        while done < args.steps:
            n = min(args.block, args.steps - done)
            k = rounds % len(players)  # rotate who goes first
            for key, player in players[k:] + players[:k]:
                row.blocks[key].append(player.block(n))
            done += n
            rounds += 1
        row.ms = statistics.median(t for b in row.blocks["method"] for t in b) * 1e3
        row.x_ew = _median_ratio(row.blocks["method"], row.blocks["ew"])
        if "floor" in row.blocks:
            row.x_floor = _median_ratio(row.blocks["method"], row.blocks["floor"])
    except Exception as err:
        row.error = _error_line(err)
    finally:
        if runner is not None:
            runner.close()
    if row.error is None:
        try:
            row.peak = method_peak(env_id, name, device, args.mem_steps)
        except Exception as err:
            row.error = "peak memory: " + _error_line(err)
    return row


def _mib(n: float | None) -> str:
    return "" if n is None else f"{n / 2**20:.1f}"


def _fmt(x: float | None, spec: str) -> str:
    return "" if x is None else format(x, spec)


HEADERS = [
    "method",
    "level",
    "wrt",
    "ms/step",
    "x EW",
    "x floor",
    "peak MiB",
    "peak x EW",
    "extra MiB",
    "J MiB",
    "target",
    "time met",
    "memory met",
]


def _table_row(row: Row, ew_peak: int) -> list[str]:
    if row.error is not None:
        return [row.method, row.level, row.wrt, *[""] * (len(HEADERS) - 4), f"error: {row.error}"]
    assert row.target is not None
    extra = None if row.peak is None else row.peak - ew_peak
    ratio = row.x_floor if row.target.against == "floor" else row.x_ew
    time_ok = ratio is not None and ratio <= row.target.bound
    mem_ok = extra is not None and row.jac is not None and extra <= row.jac
    return [
        row.method,
        row.level,
        row.wrt,
        _fmt(row.ms, ".1f"),
        _fmt(row.x_ew, ".2f"),
        _fmt(row.x_floor, ".2f"),
        _mib(row.peak),
        _fmt(None if row.peak is None else row.peak / ew_peak, ".2f"),
        _mib(extra),
        _mib(row.jac),
        str(row.target),
        _mark(time_ok),
        _mark(mem_ok) if row.target.memory else "",
    ]


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def report(workload: str, env_id: str, rows: list[Row], ew_peak: int, floor_peak_: int, jac: int) -> str:
    from tabulate import tabulate

    ew_times = [t for r in rows for b in r.blocks.get("ew", []) for t in b]
    floor_blocks = [(r.blocks["floor"], r.blocks["ew"]) for r in rows if "floor" in r.blocks]
    lines = [f"#### {workload} (`{env_id}`)", ""]
    if ew_times:
        lines.append(
            f"- EW: {statistics.median(ew_times) * 1e3:.1f} ms/step (median of {len(ew_times)} steps, "
            f"all blocks), peak {_mib(ew_peak)} MiB"
        )
    if floor_blocks:
        floor_times = [t for fb, _ in floor_blocks for b in fb for t in b]
        x_ew = statistics.median(
            statistics.median(f) / statistics.median(e) for fb, eb in floor_blocks for f, e in zip(fb, eb)
        )
        lines.append(
            f"- floor (T separate `autograd.grad`, `retain_graph`, no weighting): "
            f"{statistics.median(floor_times) * 1e3:.1f} ms/step (median of {len(floor_times)} steps), "
            f"{x_ew:.2f}x EW, peak {_mib(floor_peak_)} MiB (extra {_mib(floor_peak_ - ew_peak)} MiB)"
        )
    lines.append(f"- parameter Jacobian J: T x D x 4 B = {_mib(jac)} MiB")
    table = [_table_row(r, ew_peak) for r in rows]
    lines += ["", tabulate(table, headers=HEADERS, tablefmt="github", disable_numparse=True), ""]
    return "\n".join(lines)


def run_workload(workload: str, methods: list[str], args: argparse.Namespace, device: torch.device) -> str:
    env_id = WORKLOADS[workload]
    ew = EnvRunner(env_id, make_policy("ew"), device, args.warmup)
    ew.restart()
    floor = FloorRunner(ew, args.warmup)
    ew.restart()
    assert ew.env.model is not None
    n_shared = sum(p.numel() for p in ew.env.model.shared_parameters())
    jac = ew.env.num_tasks * n_shared * 4
    print(
        f"[{workload}] {env_id}: T={ew.env.num_tasks}, D={n_shared:,} shared parameters, "
        f"|J| = {_mib(jac)} MiB, {ew.env.steps_per_epoch} steps/epoch",
        file=sys.stderr,
        flush=True,
    )
    ew_peak = method_peak(env_id, "ew", device, args.mem_steps)
    floor_mem = floor_peak(floor, device, args.mem_steps)
    floor.model = None  # restart (and warm up) before its first timed block
    rows = []
    for i, name in enumerate(methods, 1):
        start = time.perf_counter()
        row = measure_method(name, env_id, ew, floor, args, device)
        rows.append(row)
        status = row.error or f"{row.ms:.1f} ms, x EW {row.x_ew:.2f}" + (
            f", x floor {row.x_floor:.2f}" if row.x_floor is not None else ""
        )
        print(
            f"[{workload}] {i}/{len(methods)} {name}: {status} ({time.perf_counter() - start:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    ew.close()
    return report(workload, env_id, rows, ew_peak, floor_mem, jac)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["multimnist", "resnet18", "both"], default="both")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (CPU)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after each (re)start")
    parser.add_argument("--block", type=int, default=1, help="steps per block; EW/method/floor alternate")
    parser.add_argument("--mem-steps", type=int, default=3, help="steps in the peak-memory window")
    parser.add_argument(
        "--methods",
        default=None,
        help="comma-separated method ids (default: every registered method, then "
        + ", ".join(COMPOSITES)
        + ")",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    methods = (
        [m.strip() for m in args.methods.split(",") if m.strip()]
        if args.methods
        else [*REFERENCES, *mtlbench.policies.registry, *COMPOSITES]
    )
    register_resnet_workload()
    workloads = ["multimnist", "resnet18"] if args.workload == "both" else [args.workload]
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device={device_name} threads={torch.get_num_threads()} steps={args.steps} "
        f"warmup={args.warmup} block={args.block} mem_steps={args.mem_steps} torch={torch.__version__} "
        f"load average at start={os.getloadavg()[0]:.1f} (of {os.cpu_count()} CPUs)\n"
    )
    start = time.perf_counter()
    for workload in workloads:
        print(run_workload(workload, methods, args, device), flush=True)
    print(f"wall time {time.perf_counter() - start:.0f} s, load average at end={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

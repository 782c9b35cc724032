"""The training loop: one episode of a policy on an :class:`~mtlbench.env.MTLEnv`.

``train(env, policy, seed)`` resets both with the seed, alternates ``policy.act`` and
``env.step`` until the budget is spent, and returns a :class:`RunResult` whose status says
how the run ended (``ok``, ``diverged``, ``invalid_action``, ``oom``, ``timeout``,
``error``). It never raises for a failure of the *run*; it raises only for a
misconfiguration (an env built for other needs than the policy's).

Time limits (:class:`TimeLimit`): the harness gives every run one, the request's
``timeout_s`` or else :func:`default_time_limit_s` of the env's budget. It is measured from
the start of training (the env already built) and enforced three ways: the loop checks the
clock after every step; on the main thread a ``SIGALRM`` timer interrupts a ``policy.act``
(or anything else in Python) that does not return; and in a child process of the local
backend a watchdog thread ends the process (exit code :data:`TIMEOUT_EXIT_CODE`) when the
run has not stopped :func:`hard_grace_s` after its limit (a call stuck in native code).

The policy may be an :class:`~mtlbench.harness.isolation.IsolatedPolicy` (the policy in its
own process): its failures arrive as :class:`~mtlbench.harness.isolation.PolicyProcessFailure`
with the status to store, and the result records ``isolation="process"``. Every action is
checked against the policy's declared level here and by :mod:`mtlbench.protocol` in the env.

Model selection (docs/design.md): the reported test metrics are those at the evaluation with
the best validation score (the env's run-local validation delta_p; earliest on ties); the
last evaluation's metrics are stored beside them.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from mtlbench.env import InvalidAction, MTLEnv
from mtlbench.harness.isolation import IsolatedPolicy, PolicyProcessFailure
from mtlbench.harness.results import (
    Cost,
    Evaluation,
    MethodInfo,
    RunResult,
    Selected,
    software_environment,
)
from mtlbench.policies.base import Policy
from mtlbench.protocol import env_kwargs_for, level_problem

__all__ = ["TimeLimit", "default_time_limit_s", "env_kwargs_for", "train"]

#: default time limit of a run: this allowance for the start ...
SETUP_ALLOWANCE_S = 1800.0
#: ... plus this much per optimisation step of the budget (evaluations included)
STEP_ALLOWANCE_S = 10.0
#: exit code of a child process ended by the time-limit watchdog (as coreutils' ``timeout``)
TIMEOUT_EXIT_CODE = 124


def default_time_limit_s(total_steps: int) -> float:
    """The time limit of a run whose request sets none, from its budget's number of steps.

    ``SETUP_ALLOWANCE_S + STEP_ALLOWANCE_S * total_steps`` (30 min + 10 s per step), where
    ``total_steps = budget.epochs * steps per epoch``. Generous on purpose: a run is cut only
    when it averages more than 10 s per step, evaluations included (``nyuv2-hps``: 200 epochs
    x 87 steps, limit 48.8 h); it catches a policy that hangs, not a slow machine. CPU runs of
    the large envs may need ``--timeout`` (seconds per run) to be set higher.
    """
    return SETUP_ALLOWANCE_S + STEP_ALLOWANCE_S * total_steps


def hard_grace_s(seconds: float) -> float:
    """How long after its limit a child run that did not stop is ended: 10%, within [5 s, 30 s]."""
    return min(30.0, max(5.0, 0.1 * seconds))


@dataclass(frozen=True)
class TimeLimit:
    """A run's time limit in seconds, how it was set (for messages), and whether to end the process."""

    seconds: float
    source: str = "timeout"
    #: in a child process only: a watchdog ends the whole process if the run does not stop
    hard_exit: bool = False

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"a time limit must be positive, got {self.seconds!r} s")


def _check_compatible(env: MTLEnv, policy: Policy) -> None:
    missing = set(policy.needs) - set(env.observe)
    if missing:
        raise ValueError(
            f"policy {policy.name!r} needs {sorted(missing)} but the env observes only {sorted(env.observe)}; "
            f"build it with mtlbench.make({env.bench_spec.id!r}, policy=policy)"
        )
    if env.level is not None and env.level != policy.level:
        raise ValueError(
            f"policy {policy.name!r} is {policy.level}-level, the env expects {env.level}-level actions"
        )
    if policy.level == "gradient" and env.wrt != policy.wrt:
        raise ValueError(
            f"policy {policy.name!r} works w.r.t. the {policy.wrt}, the env w.r.t. the {env.wrt}"
        )


def train(
    env: MTLEnv,
    policy: Policy,
    seed: int,
    *,
    method_name: str | None = None,
    method_version: str = "1",
    code_hash: str | None = None,
    progress: bool = False,
    checkpoint_path: str | os.PathLike[str] | None = None,
    on_evaluation: Callable[[Evaluation], None] | None = None,
    time_limit: TimeLimit | None = None,
) -> RunResult:
    """Train ``policy`` on ``env`` for the env's budget; return the run's result.

    With ``time_limit``, a run still going past it ends with status ``timeout`` (its
    evaluations so far are kept); see the module docstring for how it is enforced.
    """
    _check_compatible(env, policy)
    spec = env.bench_spec
    evaluations: list[Evaluation] = []
    status, message = "ok", None
    if env.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(env.device)
    start = time.perf_counter()
    steps_done = 0
    bar = None
    deadline = None if time_limit is None else time.monotonic() + time_limit.seconds
    try:
        policy.reset(
            env.task_names,
            seed,
            device=env.device,
            lr=spec.optimizer.lr,
            steps_per_epoch=env.steps_per_epoch,
            num_epochs=spec.budget.epochs,
            representation_dim=env.representation_dim() if policy.wrt == "representation" else None,
        )
        adapters = policy.representation_adapters()
        obs, _ = env.reset(seed=seed, options={"adapters": adapters} if adapters is not None else None)
        resumed = _resume(env, policy, checkpoint_path, evaluations)
        if resumed is not None:
            steps_done, obs = resumed
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=env.total_steps,
                initial=steps_done,
                desc=f"{policy.name} | {spec.id} | seed {seed}",
                leave=False,
            )
        with _watchdog(time_limit, deadline, policy.name):
            while True:
                try:
                    action = policy.act(obs)
                except PolicyProcessFailure:  # an isolated policy's failure, already named and classified
                    raise
                except Exception as err:  # the policy's own failure: record it, name the policy
                    raise _PolicyFailure(
                        f"policy {policy.name!r} raised in act() at step {env.global_step}: {err!r}"
                    ) from err
                problem = level_problem(action, policy.level)  # the env may not know the policy's level
                if problem is not None:
                    raise InvalidAction(problem, env.global_step)
                obs, _, terminated, truncated, info = env.step(action)
                policy.update(info)
                steps_done += 1
                if bar is not None:
                    bar.update(1)
                if "evaluation" in info:
                    ev = Evaluation(**info["evaluation"])
                    evaluations.append(ev)
                    if bar is not None:
                        best = max(e.val_score for e in evaluations)
                        # the validation score model selection uses (delta_p vs the selection
                        # baseline, %), now and the best so far
                        bar.set_postfix(
                            {
                                "epoch": f"{ev.epoch}/{spec.budget.epochs}",
                                "val Δp": f"{ev.val_score:+.2f}%",
                                "best": f"{best:+.2f}%",
                            }
                        )
                    if on_evaluation is not None:
                        on_evaluation(ev)
                    if checkpoint_path is not None and not truncated:
                        _save_checkpoint(checkpoint_path, env, policy, evaluations, steps_done)
                if terminated:
                    status = "diverged"
                    message = f"a training loss became NaN or infinite at step {info.get('diverged_at_step')}"
                    break
                if truncated:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeLimitExceeded
            if isinstance(policy, IsolatedPolicy):
                policy.flush()  # the last update()'s failure, if any, is this run's
    except TimeLimitExceeded:
        assert time_limit is not None
        status = "timeout"
        message = (
            f"policy {policy.name!r} exceeded the run's time limit of {time_limit.seconds:g} s "
            f"({time_limit.source}) at step {env.global_step} of {env.total_steps}"
        )
    except InvalidAction as err:
        status, message = "invalid_action", f"policy {policy.name!r}: {err}"
    except _PolicyFailure as err:
        status, message = "error", str(err)
    except PolicyProcessFailure as err:
        status, message = err.status, str(err)
    except torch.cuda.OutOfMemoryError as err:
        status, message = "oom", f"CUDA out of memory: {err}"
    except Exception as err:
        status, message = "error", "".join(traceback.format_exception_only(type(err), err)).strip()
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(env.device) / 2**20 if env.device.type == "cuda" else None

    selected = last = None
    if evaluations:
        best = max(range(len(evaluations)), key=lambda i: (evaluations[i].val_score, -i))
        selected = Selected(
            epoch=evaluations[best].epoch, val=evaluations[best].val, test=evaluations[best].test
        )
        last = Selected(epoch=evaluations[-1].epoch, val=evaluations[-1].val, test=evaluations[-1].test)
    if status == "ok" and checkpoint_path is not None:
        Path(checkpoint_path).unlink(missing_ok=True)
    return RunResult(
        env_id=spec.id,
        spec=spec.to_dict(),
        spec_hash=spec.hash,
        evaluator_version=spec.evaluator_version,
        official=env.official,
        method=MethodInfo(
            name=method_name or policy.name,
            version=method_version,
            level=policy.level,
            hparams=policy.hparams(),
            code_hash=code_hash,
        ),
        seed=seed,
        status=status,  # type: ignore[arg-type]
        message=message,
        evaluations=evaluations,
        selected=selected,
        last=last,
        cost=Cost(
            steps=steps_done,
            wall_time_s=round(wall, 4),
            time_per_step_s=round(wall / max(steps_done, 1), 6),
            peak_memory_mb=None if peak is None else round(peak, 2),
            device=str(env.device) if env.device.type != "cuda" else torch.cuda.get_device_name(env.device),
        ),
        environment=software_environment(),
        isolation=getattr(policy, "isolation", "none"),
    )


class _PolicyFailure(RuntimeError):
    pass


class TimeLimitExceeded(BaseException):
    """Raised inside the loop at the time limit; a ``BaseException`` so that a policy's own
    ``except Exception`` does not swallow it."""


@contextmanager
def _watchdog(limit: TimeLimit | None, deadline: float | None, policy_name: str) -> Iterator[None]:
    """While the loop runs: a SIGALRM timer (main thread, SIGALRM not in use) and, in a child
    process, a thread that ends the process ``hard_grace_s`` after the limit."""
    if limit is None or deadline is None:
        yield
        return
    armed = {"alarm": False}

    def on_alarm(signum: int, frame: object) -> None:
        if armed["alarm"]:
            raise TimeLimitExceeded

    use_alarm = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
    )
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, on_alarm)
        armed["alarm"] = True
        signal.setitimer(signal.ITIMER_REAL, max(1e-3, deadline - time.monotonic()))
    done = threading.Event()
    if limit.hard_exit:
        grace = hard_grace_s(limit.seconds)

        def end_process() -> None:
            if not done.wait(max(0.0, deadline - time.monotonic()) + grace):
                sys.stderr.write(
                    f"mtlbench: policy {policy_name!r} did not stop {grace:g} s after the run's time "
                    f"limit of {limit.seconds:g} s ({limit.source}); ending the worker process\n"
                )
                sys.stderr.flush()
                os._exit(TIMEOUT_EXIT_CODE)

        threading.Thread(target=end_process, name="mtlbench-time-limit", daemon=True).start()
    try:
        yield
    finally:
        armed["alarm"] = False
        done.set()
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------ checkpoints
def _save_checkpoint(
    path: str | os.PathLike[str], env: MTLEnv, policy: Policy, evaluations: list[Evaluation], steps: int
) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "spec_hash": env.bench_spec.hash,
        "seed": env.seed,
        "policy": policy.name,
        "env": env.checkpoint(),
        "policy_state": policy.state_dict(),
        "evaluations": [e.model_dump() for e in evaluations],
        "steps": steps,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _resume(
    env: MTLEnv, policy: Policy, path: str | os.PathLike[str] | None, evaluations: list[Evaluation]
) -> tuple[int, dict[str, torch.Tensor]] | None:
    """Restore from a checkpoint of the same env spec, policy and seed: (steps done, next obs)."""
    if path is None or not Path(path).exists():
        return None
    try:
        state = torch.load(path, map_location=env.device, weights_only=False)
    except Exception:  # a checkpoint torn by a kill: start over rather than fail
        Path(path).unlink(missing_ok=True)
        return None
    if (state.get("spec_hash"), state.get("seed"), state.get("policy")) != (
        env.bench_spec.hash,
        env.seed,
        policy.name,
    ):
        return None
    obs = env.restore(state["env"])
    policy.load_state_dict(state["policy_state"])
    evaluations.extend(Evaluation(**e) for e in state["evaluations"])
    return int(state["steps"]), obs

"""The isolated policy runner: a policy in its own process, seeing only its observations.

:class:`IsolatedPolicy` stands in for a :class:`~mtlbench.policies.base.Policy` in the
training loop; the real policy runs in a child process (:mod:`mtlbench.harness.policy_process`,
the other side of this protocol) started with the ``spawn`` method
(a fresh interpreter: no copy of the parent's memory, no inherited file descriptors but its
pipe), so it never holds a reference to the model, the optimiser, the data or the
evaluator. The two talk over a pipe with a small protocol:

=====================  ==========================================================
parent -> child        child -> parent (JSON, never a pickle: the parent unpickles
                       nothing the policy wrote)
=====================  ==========================================================
start (factory)        the declaration: name, level, needs, wrt, hparams
``reset``              ok, or the failure
``buffers`` (once)     ok: shared tensors for each observation key and the action
``act``                which action type was written into the action buffers
``update``             ok, read with the next request's reply (so the child runs update and
                       the next act back to back); ``info`` holds only
                       :data:`~mtlbench.protocol.INFO_KEYS`
``state_dict``         the state as ``torch.save`` bytes, loaded with ``weights_only``
``load_state_dict``    ok
=====================  ==========================================================

Observations and actions travel through shared memory: one buffer per observation key and
per action tensor is allocated at the first ``act`` (shared CPU tensors from
:mod:`torch.multiprocessing`; on CUDA the tensors are shared by CUDA IPC and ordered by
inter-process CUDA events, so no host synchronisation is added), and each step sends only a
tiny message. The parent copies the observation into the buffers (the env's own tensors
never leave its process) and copies the action out of them before the env reads it.

Limits inside the policy process: an address-space limit (``RLIMIT_AS``, ``memory_mb``
beyond what the process holds once its buffers are mapped; default
:data:`DEFAULT_MEMORY_MB`; not applied on CUDA, whose driver reserves more virtual memory
than any useful limit), the run's time limit (every reply is awaited with a timeout), a
scratch working directory (removed at the end; the child's stdout and stderr go to a log
file there whose tail is quoted in failure messages), no core dumps. A policy that dies,
hangs, segfaults or exceeds a limit raises :class:`PolicyProcessFailure`, which the training
loop stores as an ``error`` / ``timeout`` / ``oom`` / ``invalid_action`` result naming the
policy; the parent never waits without a timeout.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import tempfile
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.multiprocessing as tmp

from mtlbench.harness import policy_process
from mtlbench.harness.results import ISOLATION_MODES
from mtlbench.policies.base import Policy
from mtlbench.protocol import (
    INFO_KEYS,
    GradientDirection,
    GradientWeights,
    Observation,
)

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "DEFAULT_MEMORY_MB",
    "DEFAULT_START_TIMEOUT_S",
    "ISOLATION_MODES",
    "IsolatedPolicy",
    "IsolationLimits",
    "PolicyProcessFailure",
    "call_isolated",
]

#: address space (MiB) a policy process may add once its buffers are mapped
DEFAULT_MEMORY_MB = 8192
#: the longest wait for one reply of the policy process when the run has no time limit
DEFAULT_CALL_TIMEOUT_S = 600.0
#: the longest wait for the policy process to start (a fresh interpreter importing torch)
DEFAULT_START_TIMEOUT_S = 120.0
#: the largest message the parent accepts from the policy process (a state_dict)
_MAX_REPLY_BYTES = 1 << 30
_STATUSES = frozenset({"error", "oom", "invalid_action"})


@dataclass(frozen=True)
class IsolationLimits:
    """Limits of an isolated policy process.

    ``memory_mb``: address space the process may add beyond what it holds after its shared
    buffers are mapped (``None``: no limit). ``call_timeout_s``: the longest wait for one
    reply. ``start_timeout_s``: the longest wait for the process to start and build the
    policy. ``deadline``: a :func:`time.monotonic` time by which the whole run must end (the
    run's time limit); every wait is cut to it.
    """

    memory_mb: int | None = DEFAULT_MEMORY_MB
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.memory_mb is not None and self.memory_mb <= 0:
            raise ValueError(f"memory_mb must be > 0 or None, got {self.memory_mb}")
        if not self.call_timeout_s > 0:
            raise ValueError(f"call_timeout_s must be > 0, got {self.call_timeout_s}")


class PolicyProcessFailure(RuntimeError):
    """The isolated policy failed; ``status`` is the run status to store, the message names the policy."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------ the parent
class IsolatedPolicy(Policy):
    """A policy built by ``factory`` (a picklable zero-argument callable) in its own process.

    Use it where a :class:`Policy` is expected (:func:`mtlbench.harness.train.train`), and
    :meth:`close` it afterwards (or use it as a context manager). ``label`` names the policy
    in failure messages until the process has declared the policy's own name.
    """

    isolation = "process"

    def __init__(
        self,
        factory: Callable[[], Policy],
        *,
        label: str = "policy",
        limits: IsolationLimits | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        self.limits = limits or IsolationLimits()
        self.name = label  # type: ignore[misc]  # until the process declares the policy's own name
        self.scratch = tempfile.mkdtemp(prefix="mtlbench-policy-")
        ctx = tmp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe(duplex=True)
        self._process = ctx.Process(
            target=policy_process.child_main,
            args=(child_conn, factory, self.scratch, threads or torch.get_num_threads()),
            name=f"mtlbench-policy-{label}",
            daemon=True,
        )
        self._process.start()
        child_conn.close()
        self._finalizer = weakref.finalize(self, _shutdown, self._process, self._conn, self.scratch)
        self._buffers: dict[str, torch.Tensor] | None = None
        self._actions: dict[str, torch.Tensor] = {}
        self._events: tuple[Any, Any] | None = None
        self._pending_updates = 0
        try:
            declaration = self._reply("starting", check=True)
        except PolicyProcessFailure:
            self.close()
            raise
        self.name = str(declaration.get("name") or label)  # type: ignore[misc]
        self.level = declaration.get("level")  # type: ignore[misc,assignment]
        self.needs = frozenset(declaration.get("needs", ()))  # type: ignore[misc]
        self.wrt = declaration.get("wrt", "parameters")  # type: ignore[misc]
        self._hparams = declaration.get("hparams", {})
        if self.level not in ("loss", "gradient") or not isinstance(self._hparams, dict):
            self.close()
            raise PolicyProcessFailure("error", f"policy {label!r} declared an invalid level {self.level!r}")

    # ---------------------------------------------------------------- the protocol
    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        self.task_names = tuple(task_names)
        self.device = torch.device(device)
        plain = {k: v for k, v in context.items() if v is None or isinstance(v, bool | int | float | str)}
        self._drain_updates()
        self._send(("reset", self.task_names, int(seed), str(self.device), plain))
        self._reply("reset()", check=True)

    def act(self, observation: Observation) -> Any:
        step = int(observation["step"]) if "step" in observation else -1
        if self._buffers is None:
            self._share_buffers(observation)
        assert self._buffers is not None
        if policy_process.ZERO_COPY & set(self._buffers):  # the child may still read them in update()
            self._drain_updates()
        for key, buffer in self._buffers.items():
            buffer.copy_(observation[key])
        if self._events is not None:
            self._events[0].record()
        self._send(("act",))
        self._drain_updates()
        reply = self._reply(f"act() at step {step}", check=True, step=step)
        if self._events is not None:
            torch.cuda.current_stream(self.device).wait_event(self._events[1])
        kind = reply.get("kind")
        head = self._actions["head_weights"].clone() if reply.get("head") else None
        if kind == "loss" and self.level == "loss":
            return self._actions["weights"].clone()
        if kind == "weights" and self.level == "gradient":
            return GradientWeights(self._actions["weights"].clone(), head_weights=head)
        if kind == "direction" and "direction" in self._actions:
            return GradientDirection(self._actions["direction"].clone(), head_weights=head)
        raise PolicyProcessFailure("error", f"policy {self.name!r} sent an invalid reply to act(): {reply}")

    def update(self, info: Mapping[str, Any]) -> None:
        next_losses = info.get("next_losses")
        if next_losses is not None and "next_losses" in self._actions:
            self._actions["next_losses"].copy_(next_losses)
            if self._events is not None:
                self._events[0].record()
        fields = {k: int(info[k]) for k in INFO_KEYS if k in ("step", "epoch") and k in info}
        # its reply is read with the next request's: the child runs update() and the next act()
        # back to back, without waiting for this process to read a reply in between
        self._send(("update", fields, next_losses is not None and "next_losses" in self._actions))
        self._pending_updates += 1

    def flush(self) -> None:
        """Wait for the outstanding ``update()`` replies; raise if one failed (end of a run)."""
        self._drain_updates()

    def _drain_updates(self) -> None:
        while self._pending_updates:
            self._pending_updates -= 1
            self._reply("update()", check=True)

    def state_dict(self) -> dict[str, Any]:
        self._drain_updates()
        self._send(("state_dict",))
        self._reply("state_dict()", check=True)
        data = self._recv_bytes("state_dict()")
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as err:
            raise PolicyProcessFailure(
                "error",
                f"policy {self.name!r}: state_dict() must hold only tensors, numbers, strings, lists "
                f"and dicts in an isolated run: {type(err).__name__}: {err}",
            ) from None
        if not isinstance(state, dict):
            raise PolicyProcessFailure("error", f"policy {self.name!r}: state_dict() must return a dict")
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(dict(state), buffer)
        self._drain_updates()
        self._send(("load_state_dict", buffer.getvalue()))
        self._reply("load_state_dict()", check=True)

    def hparams(self) -> dict[str, Any]:
        return dict(self._hparams)

    def representation_adapters(self) -> None:
        return None

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """End the policy process (politely, then by force) and remove its scratch folder."""
        self._finalizer()

    def __enter__(self) -> IsolatedPolicy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    # ---------------------------------------------------------------- helpers
    def _share_buffers(self, observation: Observation) -> None:
        """One shared buffer per observation key and action tensor, sent to the child once."""

        def shared(t: torch.Tensor) -> torch.Tensor:
            return t if t.is_cuda else t.share_memory_()

        self._buffers = {k: shared(torch.empty_like(v)) for k, v in observation.items()}

        def vector(n: int) -> torch.Tensor:
            return shared(torch.zeros(n, dtype=torch.float32, device=self.device))

        t = len(self.task_names)
        self._actions = {"weights": vector(t)}
        if self.level == "gradient":
            self._actions["head_weights"] = vector(t)
            if "jacobian" in observation:
                self._actions["direction"] = vector(observation["jacobian"].shape[1])
        if "next_losses" in self.needs:
            self._actions["next_losses"] = vector(t)
        if self.device.type == "cuda":
            self._events = (torch.cuda.Event(interprocess=True), torch.cuda.Event(interprocess=True))
        self._send(("buffers", self._buffers, self._actions, self._events, self.limits.memory_mb))
        self._reply("receiving its buffers", check=True)

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self._conn.send(message)
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise self._died(message[0]) from None

    def _wait(self, what: str) -> None:
        timeout = self.limits.start_timeout_s if what == "starting" else self.limits.call_timeout_s
        if self.limits.deadline is not None:
            timeout = min(timeout, max(0.0, self.limits.deadline - time.monotonic()))
        if not self._conn.poll(timeout):
            self.close()
            raise PolicyProcessFailure(
                "timeout",
                f"policy {self.name!r} did not answer "
                f"{what} within {timeout:.1f} s (the run's time limit); its process was killed",
            )

    def _recv_bytes(self, what: str) -> bytes:
        self._wait(what)
        try:
            return self._conn.recv_bytes(_MAX_REPLY_BYTES)
        except (EOFError, ConnectionResetError, OSError):
            raise self._died(what) from None

    def _reply(self, what: str, *, check: bool, step: int | None = None) -> dict[str, Any]:
        raw = self._recv_bytes(what)
        try:
            reply = json.loads(raw)
        except ValueError:
            reply = None
        name = self.name
        if not isinstance(reply, dict):
            raise PolicyProcessFailure("error", f"policy {name!r} sent a malformed reply to {what}")
        if check and not reply.get("ok", False):
            status = reply.get("status")
            status = status if status in _STATUSES else "error"
            message = str(reply.get("message", "no message"))[:4000]
            if status == "invalid_action":
                raise PolicyProcessFailure(
                    status, f"policy {name!r}: invalid action at step {step}: {message}"
                )
            raise PolicyProcessFailure(status, f"policy {name!r} failed in {what}: {message}")
        return reply

    def _died(self, what: str) -> PolicyProcessFailure:
        self._process.join(timeout=5)
        code = self._process.exitcode
        if code is not None and code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        status = "oom" if code == -signal.SIGKILL else "error"
        tail = _log_tail(self.scratch)
        name = self.name
        self.close()
        return PolicyProcessFailure(
            status, f"policy {name!r}: its process {how} during {what}" + (f": {tail}" if tail else "")
        )


def _log_tail(scratch: str, lines: int = 6) -> str:
    """What the dead process last wrote: faulthandler's error and innermost frame, else the last lines."""
    try:
        with open(os.path.join(scratch, "policy.log"), errors="replace") as f:
            text = f.read()[-20000:]
    except OSError:
        return ""
    rows = [line.strip() for line in text.strip().splitlines() if line.strip()]
    fatal = [i for i, line in enumerate(rows) if line.startswith("Fatal Python error")]
    if fatal:
        frames = [line for line in rows[fatal[-1] :] if line.startswith("File ")]
        return " | ".join([rows[fatal[-1]], *frames[:1]])
    return " | ".join(rows[-lines:])[-2000:]


def _shutdown(process: Any, conn: Any, scratch: str) -> None:
    if process.is_alive():
        try:
            conn.send(("close",))
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        process.join(timeout=2)
    if process.is_alive():
        process.kill()
        process.join(timeout=5)
    conn.close()
    shutil.rmtree(scratch, ignore_errors=True)


# ----------------------------------------------------------------- one isolated call
def call_isolated(
    function: Callable[..., Any], *args: Any, label: str, limits: IsolationLimits | None = None
) -> Any:
    """``function(*args)`` in a fresh policy process under ``limits``; its JSON-able return value.

    For running untrusted code once, e.g. the policy checker on a submission. The value comes
    back as JSON (never a pickle); a crash, a timeout or a limit raises
    :class:`PolicyProcessFailure` naming ``label``.
    """
    limits = limits or IsolationLimits()
    scratch = tempfile.mkdtemp(prefix="mtlbench-policy-")
    ctx = tmp.get_context("spawn")
    conn, child_conn = ctx.Pipe(duplex=True)
    process = ctx.Process(
        target=policy_process.call_main,
        args=(child_conn, function, args, scratch, limits.memory_mb),
        name=f"mtlbench-policy-{label}",
        daemon=True,
    )
    process.start()
    child_conn.close()
    try:
        timeout = limits.start_timeout_s + limits.call_timeout_s
        if limits.deadline is not None:
            timeout = min(timeout, max(0.0, limits.deadline - time.monotonic()))
        if not conn.poll(timeout):
            raise PolicyProcessFailure(
                "timeout", f"policy {label!r} did not finish within {timeout:.1f} s; its process was killed"
            )
        try:
            reply = json.loads(conn.recv_bytes(_MAX_REPLY_BYTES))
        except (EOFError, OSError, ValueError):
            process.join(timeout=5)
            code = process.exitcode
            how = (
                f"was killed by {signal.Signals(-code).name}"
                if code is not None and code < 0
                else f"exited with code {code}"
            )
            tail = _log_tail(scratch)
            raise PolicyProcessFailure(
                "oom" if code == -signal.SIGKILL else "error",
                f"policy {label!r}: its process {how}" + (f": {tail}" if tail else ""),
            ) from None
        if not isinstance(reply, dict) or not reply.get("ok", False):
            message = reply.get("message", "no message") if isinstance(reply, dict) else "a malformed reply"
            status = reply.get("status") if isinstance(reply, dict) else None
            raise PolicyProcessFailure(
                status if status in _STATUSES else "error", f"policy {label!r}: {message}"
            )
        return reply.get("value")
    finally:
        _shutdown(process, conn, scratch)

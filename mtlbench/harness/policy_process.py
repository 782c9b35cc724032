"""The policy process: what runs inside the process an isolated policy lives in.

The other side of :mod:`mtlbench.harness.isolation` (read it first): :func:`child_main`
builds the policy and serves the parent's requests (:class:`Server`), :func:`call_main` runs
one function for :func:`~mtlbench.harness.isolation.call_isolated`. Both first confine the
process (:func:`confine`) and answer in JSON only.
"""

from __future__ import annotations

import faulthandler
import io
import json
import os
import resource
import traceback
from collections.abc import Callable
from typing import Any

import torch

from mtlbench.policies.base import Policy
from mtlbench.protocol import ActionError, GradientDirection, GradientWeights, action_parts

#: observation keys shared without a copy (large); the others are cloned for the policy
ZERO_COPY = frozenset({"jacobian", "val_jacobian"})


def call_main(
    conn: Any, function: Callable[..., Any], args: tuple[Any, ...], scratch: str, memory_mb: int | None
) -> None:
    confine(scratch, threads=1)
    if memory_mb is not None:
        limit = address_space() + int(memory_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        value = function(*args)
    except BaseException as err:
        text = "".join(traceback.format_exception_only(type(err), err)).strip()
        send_json(conn, {"ok": False, "status": "oom" if is_oom(err) else "error", "message": text})
        return
    send_json(conn, {"ok": True, "value": value})


def confine(scratch: str, threads: int) -> None:
    """First thing in a policy process: output to the scratch log, no core dumps, cwd = scratch."""
    log = os.open(os.path.join(scratch, "policy.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    faulthandler.enable(all_threads=False)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.chdir(scratch)
    torch.set_num_threads(threads)


def address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def is_oom(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or (
        isinstance(err, RuntimeError)
        and any(s in str(err) for s in ("can't allocate memory", "not enough memory", "out of memory"))
    )


def send_json(conn: Any, message: dict[str, Any]) -> None:
    conn.send_bytes(json.dumps(message, default=repr).encode())


def child_main(conn: Any, factory: Callable[[], Policy], scratch: str, threads: int) -> None:
    """The policy process: build the policy, then serve the parent's requests until ``close``."""
    confine(scratch, threads)
    try:
        policy = factory()
    except BaseException as err:
        send_json(conn, {"ok": False, "status": "error", "message": f"building it raised {err!r}"})
        return
    hparams = policy.hparams() if callable(getattr(policy, "hparams", None)) else {}
    send_json(
        conn,
        {
            "ok": True,
            "name": getattr(policy, "name", None),
            "level": getattr(policy, "level", None),
            "needs": sorted(getattr(policy, "needs", ())),
            "wrt": getattr(policy, "wrt", "parameters"),
            "hparams": json.loads(json.dumps(hparams, default=repr)),
        },
    )
    server = Server(policy)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "close":
            return
        try:
            reply, payload = server.handle(message)
        except BaseException as err:
            text = "".join(traceback.format_exception_only(type(err), err)).strip()
            status = "oom" if is_oom(err) else "error"
            send_json(conn, {"ok": False, "status": status, "message": text})
            continue
        send_json(conn, {"ok": True, **reply})
        if payload is not None:
            conn.send_bytes(payload)


class Server:
    """The child's side: holds the policy and its buffers, answers one request at a time."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.obs: dict[str, torch.Tensor] = {}
        self.actions: dict[str, torch.Tensor] = {}
        self.events: tuple[Any, Any] | None = None
        self.dim: int | None = None

    def handle(self, message: tuple[Any, ...]) -> tuple[dict[str, Any], bytes | None]:
        op, *args = message
        policy = self.policy
        if op == "reset":
            task_names, seed, device, context = args
            policy.reset(task_names, seed, device=device, **context)
            if policy.representation_adapters() is not None:
                raise RuntimeError(
                    "the policy inserts representation adapters into the model (as RotoGrad does), "
                    "which cannot live in an isolated process; run it with --isolation none"
                )
            return {}, None
        if op == "buffers":
            self.obs, self.actions, self.events, memory_mb = args
            if "jacobian" in self.obs:
                self.dim = int(self.obs["jacobian"].shape[1])
            if memory_mb is not None and not any(t.is_cuda for t in self.actions.values()):
                limit = address_space() + int(memory_mb) * 2**20
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            return {}, None
        if op == "act":
            if self.events is not None:
                torch.cuda.current_stream().wait_event(self.events[0])
            obs = {k: (v if k in ZERO_COPY else v.clone()) for k, v in self.obs.items()}
            action = policy.act(obs)
            try:
                parts = action_parts(action, policy.num_tasks, self.dim, level=policy.level)
            except ActionError as err:
                return {"ok": False, "status": "invalid_action", "message": str(err)}, None
            if isinstance(action, GradientDirection) and self.dim is None:
                raise RuntimeError("an isolated GradientDirection needs the 'jacobian' observation")
            kind = {GradientWeights: "weights", GradientDirection: "direction"}.get(type(action), "loss")
            target = "direction" if kind == "direction" else "weights"
            with torch.no_grad():
                self.actions[target].copy_(parts[0].tensor)
                if len(parts) > 1:
                    self.actions["head_weights"].copy_(parts[1].tensor)
            if self.events is not None:
                self.events[1].record()
            return {"kind": kind, "head": len(parts) > 1}, None
        if op == "update":
            fields, has_next = args
            info: dict[str, Any] = dict(fields)
            if has_next:
                if self.events is not None:
                    torch.cuda.current_stream().wait_event(self.events[0])
                info["next_losses"] = self.actions["next_losses"].clone()
            policy.update(info)
            return {}, None
        if op == "state_dict":
            buffer = io.BytesIO()
            torch.save(policy.state_dict(), buffer)
            return {}, buffer.getvalue()
        if op == "load_state_dict":
            policy.load_state_dict(
                torch.load(io.BytesIO(args[0]), map_location=policy.device, weights_only=False)
            )
            return {}, None
        raise RuntimeError(f"unknown request {op!r}")

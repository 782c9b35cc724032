"""Per-task gradients: the Jacobian of the task losses and its Gramian, batched.

The Jacobian ``J`` (shape ``(T, D)``) stacks the gradients of the ``T`` task losses with
respect to ``D`` shared scalars: the shared parameters (MGDA, PCGrad, CAGrad, ...) or the
shared representation (MGDA-UB, RGW, as in Lin et al. 2022, Section 3). On an accelerator
it is computed with **one** batched vector-Jacobian product: ``torch.autograd.grad`` with
``is_grads_batched=True`` back-propagates the ``T`` one-hot cotangents through a vmapped
backward pass, instead of ``T`` sequential backward passes. On the CPU, where the rows run
one after another anyway, ``T`` plain ``autograd.grad`` calls measured faster and leaner
(see :func:`jacobian`). Everything stays on the device; nothing is copied to the host.

Where a backward op has no batching rule, PyTorch falls back to a per-sample loop inside
vmap (with a performance warning); results are unchanged. :func:`jacobian_loop` is also
the reference used by the tests and by the cost benchmark's "floor".
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

__all__ = [
    "flatten_grads",
    "gramian",
    "jacobian",
    "jacobian_loop",
    "unflatten_into_grads",
]


def _as_list(inputs: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)


def flatten_grads(
    grads: Sequence[torch.Tensor | None],
    inputs: Sequence[torch.Tensor],
    batch_dims: int = 0,
) -> torch.Tensor:
    """Concatenate per-input gradients into one matrix, zeros where an input is unused."""
    parts = []
    for g, x in zip(grads, inputs, strict=True):
        if g is None:
            g = torch.zeros(x.shape, dtype=x.dtype, device=x.device)
        parts.append(g.reshape(*g.shape[:batch_dims], -1) if batch_dims else g.reshape(-1))
    return torch.cat(parts, dim=-1)


def jacobian(
    losses: torch.Tensor,
    inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    retain_graph: bool = True,
    strategy: str = "auto",
) -> torch.Tensor:
    """Return ``J`` with ``J[t] = d losses[t] / d inputs`` (flattened), shape ``(T, D)``.

    ``strategy="batched"``: one batched backward pass (``is_grads_batched=True``).
    ``"loop"``: ``T`` ``torch.autograd.grad`` calls, all on the device (no host copies).
    ``"auto"`` (default) takes the loop on CPU and the batched pass elsewhere: on CPU the
    vmapped backward measured 3-4% slower than the loop and held ~1.5-3x more extra memory
    (``benchmarks/policy_cost.py``, docs/performance.md), since a CPU runs the T rows one
    after the other anyway; on a GPU the batched pass runs them in parallel kernels.
    Inputs a task does not depend on get zero rows, not errors. ``retain_graph`` keeps the
    graph for a later backward (the env's head update).
    """
    if strategy not in ("auto", "batched", "loop"):
        raise ValueError(f"strategy must be 'auto', 'batched' or 'loop', got {strategy!r}")
    if strategy == "loop" or (strategy == "auto" and losses.device.type == "cpu"):
        return jacobian_loop(losses, inputs, retain_graph=retain_graph)
    xs = _as_list(inputs)
    if losses.dim() != 1:
        raise ValueError(f"losses must have shape (T,), got {tuple(losses.shape)}")
    num_tasks = losses.shape[0]
    eye = torch.eye(num_tasks, dtype=losses.dtype, device=losses.device)
    with warnings.catch_warnings():
        # vmap falls back to a loop for ops without a batching rule; it is still correct.
        warnings.filterwarnings("ignore", message=".*There is a performance drop.*")
        grads = torch.autograd.grad(
            losses,
            xs,
            grad_outputs=eye,
            retain_graph=retain_graph,
            is_grads_batched=True,
            allow_unused=True,
        )
    parts = []
    for g, x in zip(grads, xs, strict=True):
        if g is None:
            g = torch.zeros((num_tasks, x.numel()), dtype=x.dtype, device=x.device)
        parts.append(g.reshape(num_tasks, -1))
    return torch.cat(parts, dim=1)


def jacobian_loop(
    losses: torch.Tensor,
    inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    retain_graph: bool = True,
) -> torch.Tensor:
    """Reference implementation: ``T`` separate ``torch.autograd.grad`` calls."""
    xs = _as_list(inputs)
    rows = []
    for t in range(losses.shape[0]):
        grads = torch.autograd.grad(losses[t], xs, retain_graph=True, allow_unused=True)
        rows.append(flatten_grads(grads, xs))
    del retain_graph  # the graph is freed with the caller's last reference to it
    return torch.stack(rows)


def gramian(jac: torch.Tensor) -> torch.Tensor:
    """``G = J J^T`` (shape ``(T, T)``), the inner products of the task gradients."""
    return jac @ jac.T


def unflatten_into_grads(
    vector: torch.Tensor, params: Sequence[torch.Tensor], *, accumulate: bool = False
) -> None:
    """Write a flat gradient vector into ``p.grad`` of each parameter (no host copy)."""
    offset = 0
    for p in params:
        n = p.numel()
        chunk = vector[offset : offset + n].view_as(p)
        if accumulate and p.grad is not None:
            p.grad.add_(chunk)
        else:
            p.grad = chunk.clone()
        offset += n
    if offset != vector.numel():
        raise ValueError(f"gradient vector has {vector.numel()} entries, parameters have {offset}")

"""Applying an action: the backward pass each action type asks for (docs/design.md, "Actions").

The env's forward pass leaves the current batch's autograd graph (:class:`StepGraph`);
:class:`ActionApplier` checks the action with the protocol's one validator
(:func:`mtlbench.protocol.action_parts`) and back-propagates it, leaving the gradients in
``.grad`` for the optimiser:

* loss weights ``w`` (Lin et al. 2022, Eq. 1): ``(w * losses).sum()`` is back-propagated
  through the whole model;
* :class:`~mtlbench.protocol.GradientWeights` ``a`` (Eq. 2): the shared part receives
  ``a @ J`` (or the gradient of ``(a * losses).sum()`` when the Jacobian was not computed),
  the task heads the gradient of ``(h * losses).sum()`` (``h`` the head weights, else ones);
* :class:`~mtlbench.protocol.GradientDirection` ``d``: the shared part receives ``d`` itself,
  the heads as above.

At the representation level (``wrt="representation"``) the shared-part gradient is a
gradient of the representation, pulled back to the shared parameters in one more backward.

Structure (type, shape, dtype) is checked on the host at once; values (finite, non-negative)
at once on CPU and, on CUDA, accumulated on the device with the first offending step and
read at the env's sync points (:meth:`ActionApplier.raise_if_bad`), so the hot loop never
syncs with the host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlbench.models.base import Representation
from mtlbench.protocol import (
    ActionError,
    ActionPart,
    GradientDirection,
    GradientWeights,
    action_parts,
    values_bad,
    values_problem,
)

__all__ = ["ActionApplier", "InvalidAction", "StepGraph"]


class InvalidAction(ValueError):
    """The action has the wrong shape, is not finite, or is negative where it must not be."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(f"invalid action at step {step}: {message}")
        self.step = step


@dataclasses.dataclass
class StepGraph:
    """The current training batch's autograd graph, as the env's forward pass left it."""

    losses: torch.Tensor  # (T,) training losses, attached to the graph
    jac: torch.Tensor | None  # (T, D) Jacobian when the env observes it, else None
    rep: Representation | None  # the shared representation (the encoder's output)
    rep_in: Representation | None  # what the heads read: ``rep`` itself, or a detached leaf copy


class ActionApplier:
    """Validates and back-propagates the actions of one episode (the env builds one per ``reset``).

    ``level`` is the policy's declared level (``None``: inferred from the action's type);
    ``check_every`` is 1 when values are checked at once (CPU), else the env's sync interval.
    """

    def __init__(
        self,
        *,
        num_tasks: int,
        level: str | None,
        wrt: str,
        device: torch.device,
        check_every: int,
        shared: Sequence[torch.nn.Parameter],
        task_params: Sequence[torch.nn.Parameter],
    ) -> None:
        self.num_tasks = num_tasks
        self.level = level
        self.wrt = wrt
        self.device = device
        self.check_every = check_every
        self.shared = shared
        self.task_params = task_params
        # the first step whose action had bad values (-1: none yet), kept on the device
        self.bad_action = torch.full((), -1, dtype=torch.long, device=device)

    def validate(
        self, action: Any, graph: StepGraph, step: int, step_on_device: torch.Tensor
    ) -> list[ActionPart]:
        """The protocol's one validator: structure on the host now, values on the device.

        A structural problem (type, shape, dtype) raises at once; non-finite or negative
        entries raise at once on CPU and at the next sync point on CUDA (no host sync per step).
        """
        width = None if graph.jac is None else graph.jac.shape[1]
        try:
            parts = action_parts(action, self.num_tasks, width, level=self.level)
        except ActionError as err:
            raise InvalidAction(str(err), step) from None
        # float32 on the env's device, as the update uses them (a float64 1e300 is inf here)
        parts = [ActionPart(p.what, self._as_tensor(p.tensor), p.non_negative) for p in parts]
        if self.check_every == 1:
            problem = values_problem(parts)
            if problem is not None:
                raise InvalidAction(problem, step)
        else:
            newly = (self.bad_action < 0) & values_bad(parts)
            self.bad_action = torch.where(newly, step_on_device, self.bad_action)
        return parts

    def raise_if_bad(self) -> None:
        """Raise :class:`InvalidAction` if an action since the last sync had bad values (syncs)."""
        step = int(self.bad_action)
        if step >= 0:
            raise InvalidAction(
                "the action was not finite, or negative where it must be non-negative",
                step,
            )

    def _as_tensor(self, value: torch.Tensor) -> torch.Tensor:
        return value.to(device=self.device, dtype=torch.float32)

    def apply(self, action: Any, graph: StepGraph, step: int, step_on_device: torch.Tensor) -> None:
        """Back-propagate according to the action type; leaves gradients in ``.grad``."""
        parts = [p.tensor for p in self.validate(action, graph, step, step_on_device)]
        losses = graph.losses
        if isinstance(action, GradientWeights | GradientDirection):
            head_w = parts[1] if len(parts) > 1 else None
            if isinstance(action, GradientWeights):
                a = parts[0]
                shared_grad = None if graph.jac is None else a @ graph.jac
                shared_loss = (a * losses).sum() if graph.jac is None else None
            else:
                shared_grad, shared_loss = parts[0], None
            head_loss = losses.sum() if head_w is None else (head_w * losses).sum()
            self._backward_gradient_level(graph, head_loss, shared_grad, shared_loss)
        else:
            total = (parts[0] * losses).sum()
            if self.wrt == "representation":
                total.backward(retain_graph=True)
                self._backprop_representation(graph, _rep_grad(graph.rep_in))
            else:
                total.backward()

    def _backward_gradient_level(
        self,
        graph: StepGraph,
        head_loss: torch.Tensor,
        shared_grad: torch.Tensor | None,
        shared_loss: torch.Tensor | None,
    ) -> None:
        head_inputs = [p for p in self.task_params if p.requires_grad]
        if head_inputs:
            torch.autograd.backward(head_loss, inputs=head_inputs, retain_graph=True)
        if self.wrt == "representation":
            reps = rep_tensors(graph.rep_in)
            if shared_grad is None:
                assert shared_loss is not None
                raw = torch.autograd.grad(shared_loss, reps, retain_graph=True, allow_unused=True)
                grads = [torch.zeros_like(r) if g is None else g for g, r in zip(raw, reps, strict=True)]
            else:
                grads = _split_like(shared_grad, reps)
            self._backprop_representation(graph, grads)
        elif shared_grad is None:
            assert shared_loss is not None
            torch.autograd.backward(shared_loss, inputs=self.shared)
        else:
            offset = 0
            for p in self.shared:
                n = p.numel()
                p.grad = shared_grad[offset : offset + n].view_as(p).clone()
                offset += n

    def _backprop_representation(self, graph: StepGraph, grads: Sequence[torch.Tensor] | None) -> None:
        assert graph.rep is not None  # called after a forward, before the env releases the graph
        reps = rep_tensors(graph.rep)
        if grads is None:
            return
        torch.autograd.backward(reps, grad_tensors=list(grads), inputs=self.shared)


def rep_tensors(rep: Any) -> list[torch.Tensor]:
    """The tensors of a representation (one tensor, or a mapping of them), in order."""
    return list(rep.values()) if isinstance(rep, Mapping) else [rep]


def _rep_grad(rep_in: Any) -> list[torch.Tensor]:
    return [torch.zeros_like(r) if r.grad is None else r.grad for r in rep_tensors(rep_in)]


def _split_like(flat: torch.Tensor, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    out, offset = [], 0
    for t in tensors:
        n = t.numel()
        out.append(flat[offset : offset + n].view_as(t))
        offset += n
    return out

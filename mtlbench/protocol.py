"""The policy/env contract: observation keys, needs, action types and the one action validator.

This module is the neutral ground both sides import (as AlgoPerf's ``spec.py``): the env
(:mod:`mtlbench.env`), the policies (:mod:`mtlbench.policies.base` re-exports the types),
the checker (:mod:`mtlbench.harness.checker`) and the isolated runner
(:mod:`mtlbench.harness.isolation`). Adding an observation key or an action type is a change
here, in one place.

Levels (Lin et al. 2022, Eq. 1 and Eq. 2):

* ``"loss"``: the action is a weight vector ``w`` of shape ``(T,)``; the env minimises
  ``sum_t w_t L_t``.
* ``"gradient"``: the action is a :class:`GradientWeights` (``d = sum_t a_t g_t`` on the
  shared part) or a :class:`GradientDirection` (the update direction itself, shape ``(D,)``).

Observation keys (present only when the policy ``needs`` them; :data:`ALWAYS_OBSERVED` always):

==================  =========  =====================================================
key                 shape      meaning
==================  =========  =====================================================
``losses``          (T,)       current training-batch losses (detached)
``gramian``         (T, T)     ``J J^T`` of per-task gradients w.r.t. ``wrt``
``jacobian``        (T, D)     per-task gradients w.r.t. ``wrt`` (flattened)
``val_losses``      (T,)       losses on a validation batch (never the test split)
``val_jacobian``    (T, D)     per-task gradients of the validation losses
``step``            ()         global optimisation step (int64)
``epoch``           ()         current epoch (int64)
==================  =========  =====================================================

``next_losses`` is not an observation: it arrives in ``Policy.update(info)`` (:data:`INFO_KEYS`).

The validator. An action is checked in two parts so the env's hot loop never waits for the
device: :func:`action_parts` checks the *structure* on the host (type, shape, floating dtype;
no tensor value is read) and returns the named tensors; :func:`values_bad` flags non-finite or
negative entries as a device-side boolean (the env accumulates it and reads it at its sync
points), and :func:`values_problem` says which value is wrong (one host sync: the checker, and
the env on CPU). :func:`action_problem` runs all of it and returns a message or ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

__all__ = [
    "ALWAYS_OBSERVED",
    "INFO_KEYS",
    "KNOWN_NEEDS",
    "OBSERVATION_KEYS",
    "OBSERVATION_NEEDS",
    "Action",
    "ActionError",
    "ActionPart",
    "GradientDirection",
    "GradientWeights",
    "Level",
    "Observation",
    "Wrt",
    "action_parts",
    "action_problem",
    "env_kwargs_for",
    "level_problem",
    "values_bad",
    "values_problem",
]

Level = Literal["loss", "gradient"]
Wrt = Literal["parameters", "representation"]
Observation = Mapping[str, torch.Tensor]

#: every key an observation may carry
OBSERVATION_KEYS: frozenset[str] = frozenset(
    {"losses", "gramian", "jacobian", "val_losses", "val_jacobian", "step", "epoch"}
)
#: keys the env sends whatever the policy declares
ALWAYS_OBSERVED: frozenset[str] = frozenset({"losses", "step", "epoch"})
#: observation keys a policy may declare in ``needs``
OBSERVATION_NEEDS: frozenset[str] = frozenset({"losses", "gramian", "jacobian", "val_losses", "val_jacobian"})
#: everything a policy may ask the environment for; anything else is a declaration error
KNOWN_NEEDS: frozenset[str] = OBSERVATION_NEEDS | {"next_losses"}
#: what ``Policy.update(info)`` receives (``next_losses`` only when declared); an isolated
#: policy receives exactly these, never the evaluation metrics the env reports in ``info``
INFO_KEYS: tuple[str, ...] = ("step", "epoch", "next_losses")


@dataclass(frozen=True)
class GradientWeights:
    """Gradient-level action: ``d = sum_t weights[t] * g_t`` on the shared part.

    ``head_weights`` (optional, shape ``(T,)``) scales each task's loss for its own head;
    ``None`` means unweighted heads (the gradient-level convention). Composite policies
    such as ``rlw+cagrad`` set it to the loss-level weights.
    """

    weights: torch.Tensor
    head_weights: torch.Tensor | None = None


@dataclass(frozen=True)
class GradientDirection:
    """Gradient-level action given as the aggregated update direction itself, shape ``(D,)``."""

    direction: torch.Tensor
    head_weights: torch.Tensor | None = None


Action = torch.Tensor | GradientWeights | GradientDirection


class ActionError(ValueError):
    """An action has the wrong type, shape or dtype (a structural problem, found on the host)."""


@dataclass(frozen=True)
class ActionPart:
    """One tensor of a structurally valid action: its name in messages, the tensor, its rule."""

    what: str
    tensor: torch.Tensor
    non_negative: bool


def level_problem(action: Any, level: str) -> str | None:
    """The action's type against the policy's declared level; ``None`` when they agree."""
    gradient = isinstance(action, GradientWeights | GradientDirection)
    if level == "loss" and gradient:
        return f"a loss-level policy must return a (T,) tensor of weights, got {type(action).__name__}"
    if level == "gradient" and not gradient:
        hint = "; wrap the weights: GradientWeights(w)" if isinstance(action, torch.Tensor) else ""
        return (
            "a gradient-level policy must return GradientWeights or GradientDirection, "
            f"got {type(action).__name__}{hint}"
        )
    return None


def _tensor(what: str, value: Any, shape: tuple[int, ...] | None, non_negative: bool) -> ActionPart:
    if isinstance(value, np.ndarray):  # Gymnasium's convention for Box actions
        if not np.issubdtype(value.dtype, np.floating):
            raise ActionError(f"{what} must be floating point, got a NumPy array of dtype {value.dtype}")
        value = torch.from_numpy(value)
    elif not isinstance(value, torch.Tensor):
        hint = (
            f"; return torch.tensor({value!r}, dtype=torch.float32)"
            if isinstance(value, list | tuple) and len(value) <= 8
            else ""
        )
        raise ActionError(f"{what} must be a torch.Tensor, got {type(value).__name__}{hint}")
    if not value.is_floating_point():
        raise ActionError(f"{what} must be a floating-point tensor, got dtype {value.dtype}; use .float()")
    if shape is not None and tuple(value.shape) != shape:
        raise ActionError(f"{what} must have shape {shape}, got {tuple(value.shape)}")
    if shape is None and value.dim() != 1:
        raise ActionError(f"{what} must be a 1-d tensor, got shape {tuple(value.shape)}")
    return ActionPart(what, value.detach(), non_negative)


def action_parts(
    action: Any, num_tasks: int, dim: int | None = None, *, level: str | None = None
) -> list[ActionPart]:
    """Check an action's structure (never its values); return its tensors, or raise :class:`ActionError`.

    ``level`` is the policy's declared level (``None``: inferred from the action's type, as a
    Gymnasium user's plain weight vector is a loss-level action). ``dim`` is the width ``D``
    of a :class:`GradientDirection` (``None``: any 1-d tensor). Accepted: a floating-point
    ``torch.Tensor`` (or NumPy array) per entry; rejected: Python lists, integer dtypes,
    wrong shapes, a bare tensor at gradient level.
    """
    if level is not None:
        problem = level_problem(action, level)
        if problem is not None:
            raise ActionError(problem)
    if isinstance(action, GradientWeights):
        parts = [_tensor("GradientWeights.weights", action.weights, (num_tasks,), False)]
    elif isinstance(action, GradientDirection):
        shape = None if dim is None else (dim,)
        what = "GradientDirection.direction" + (
            "" if dim is None else f" (one of {dim} entries per Jacobian column)"
        )
        parts = [_tensor(what, action.direction, shape, False)]
    else:
        return [_tensor("the loss weights", action, (num_tasks,), True)]
    if action.head_weights is not None:
        parts.append(_tensor("head_weights", action.head_weights, (num_tasks,), True))
    return parts


def values_bad(parts: list[ActionPart]) -> torch.Tensor:
    """A 0-d boolean on the action's device: some entry is non-finite, or negative where it must not be.

    Never synchronises with the host.
    """
    flags = []
    for part in parts:
        bad = ~torch.isfinite(part.tensor).all()
        if part.non_negative:
            bad = bad | (part.tensor < 0).any()
        flags.append(bad)
    return torch.stack(flags).any() if len(flags) > 1 else flags[0]


def values_problem(parts: list[ActionPart]) -> str | None:
    """Which entry is wrong, as a message (reads the values: one host synchronisation)."""
    for part in parts:
        value = part.tensor
        shown = value.tolist() if value.numel() <= 16 else f"a tensor of {value.numel()} entries"
        if not bool(torch.isfinite(value).all()):
            return f"{part.what} must be finite, got {shown}"
        if part.non_negative and bool((value < 0).any()):
            return f"{part.what} must be non-negative, got {shown}"
    return None


def action_problem(action: Any, level: str | None, num_tasks: int, dim: int | None = None) -> str | None:
    """Everything wrong with ``action`` (structure, then values) as one message; ``None`` if valid."""
    try:
        parts = action_parts(action, num_tasks, dim, level=level)
    except ActionError as err:
        return str(err)
    return values_problem(parts)


def env_kwargs_for(policy: Any) -> dict[str, Any]:
    """The runtime ``make`` arguments an env needs to serve ``policy``: what it observes, the
    gradients' ``wrt`` and its level (``mtlbench.make(id, policy=policy)`` uses them).

    ``policy`` is anything with ``needs``, ``level`` and ``wrt`` (a Policy, its class, or an
    isolated policy's declaration): the contract, not the policies package.
    """
    return {
        "observe": tuple(sorted(policy.needs)),
        "wrt": policy.wrt if policy.level == "gradient" else "parameters",
        "level": policy.level,
    }

"""Loss-level + gradient-level compositions, Lin et al. (2022), Section 5.5 (``"rlw+cagrad"``).

Following Lin et al. (2022, Section 5.5, after Liu et al. 2021), a loss balancing method
and a gradient balancing method combine as follows: the loss-level part picks weights ``w``
and the gradient-level part balances the gradients of the *weighted* losses ``w_t L_t``.
Every step, :class:`Composite`

1. asks the loss part for ``w = loss.act(obs)``;
2. shows the gradient part the weighted problem: ``losses * w``, ``gramian * w w^T``,
   ``jacobian * w[:, None]`` (other keys unchanged: the validation data are not weighted);
3. converts its answer back to the env's unweighted per-task gradients ``g_t``:
   :class:`GradientWeights` ``a`` over ``w_t g_t`` becomes ``a * w`` over ``g_t`` (the env
   computes ``sum_t weights_t g_t`` from the raw Jacobian); a :class:`GradientDirection` is
   already a vector in parameter space and is passed on;
4. sets ``head_weights = w`` (times the gradient part's own head weights, if any, which
   refer to the weighted losses), so each head is trained on its loss-weighted gradient.

The composite is gradient-level, ``needs`` the union of both parts' needs and uses the
gradient part's ``wrt`` (a loss part that reads the Jacobian, like MOML, then sees the
representation-level Jacobian when the gradient part is representation-level).
:meth:`update` goes to both parts; the gradient part is reset with a seed derived from the
run seed (``seed + 0x9E3779B9``) so that two random parts (``rlw+rgw``) draw independent
streams. ``name`` is ``"<loss>+<grad>"`` and :meth:`hparams` are prefixed
(``"rlw__distribution"``), the form :func:`mtlbench.policies.make` routes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mtlbench.policies.base import (
    Action,
    GradientDirection,
    GradientWeights,
    Observation,
    Policy,
    PolicyError,
    Wrt,
)

__all__ = ["Composite", "weighted_observation"]

_SEED_OFFSET = 0x9E3779B9


def weighted_observation(observation: Observation, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """The observation of the problem ``sum_t w_t L_t``: losses, Gramian and Jacobian scaled."""
    obs = dict(observation)
    obs["losses"] = observation["losses"] * weights
    if "gramian" in observation:
        obs["gramian"] = observation["gramian"] * (weights.unsqueeze(1) * weights.unsqueeze(0))
    if "jacobian" in observation:
        obs["jacobian"] = observation["jacobian"] * weights.unsqueeze(1)
    return obs


class Composite(Policy):
    """A loss-level policy composed with a gradient-level policy (``"rlw+cagrad"``).

    Parameters
    ----------
    loss_policy
        The loss-level policy: it picks the loss weights ``w`` every step.
    grad_policy
        The gradient-level policy: it balances the gradients of the weighted losses
        ``w_t L_t`` (steps 2-3 of the module docstring).
    """

    level = "gradient"

    def __init__(self, loss_policy: Policy, grad_policy: Policy) -> None:
        super().__init__()
        for part, want in ((loss_policy, "loss"), (grad_policy, "gradient")):
            if not isinstance(part, Policy):
                raise TypeError(f"Composite parts must be Policy instances, got {part!r}")
            if part.level != want:
                raise ValueError(
                    f"Composite({loss_policy.name!r}, {grad_policy.name!r}) needs a loss-level "
                    f"policy first and a gradient-level policy second; {part.name!r} is "
                    f"{part.level}-level where a {want}-level one is expected"
                )
        self.loss_policy = loss_policy
        self.grad_policy = grad_policy
        self.name = f"{loss_policy.name}+{grad_policy.name}"  # type: ignore[misc]
        self.needs = frozenset(loss_policy.needs | grad_policy.needs | {"losses"})  # type: ignore[misc]
        self.wrt: Wrt = grad_policy.wrt  # type: ignore[misc]

    def hparams(self) -> dict[str, Any]:
        out = {f"{self.loss_policy.name}__{k}": v for k, v in self.loss_policy.hparams().items()}
        out.update({f"{self.grad_policy.name}__{k}": v for k, v in self.grad_policy.hparams().items()})
        return out

    def __repr__(self) -> str:
        return f"Composite({self.loss_policy!r}, {self.grad_policy!r})"

    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        self.loss_policy.reset(task_names, seed, device=device, **context)
        self.grad_policy.reset(task_names, int(seed) + _SEED_OFFSET, device=device, **context)

    def act(self, observation: Observation) -> Action:
        w = self.loss_policy.act(observation)
        if not isinstance(w, torch.Tensor):
            raise PolicyError(
                f"{self.name}: the loss part {self.loss_policy.name!r} returned "
                f"{type(w).__name__}, expected a weight tensor of shape (T,)"
            )
        losses = observation["losses"]
        w = w.to(device=losses.device, dtype=losses.dtype)
        action = self.grad_policy.act(weighted_observation(observation, w))
        if isinstance(action, GradientWeights):
            heads = w if action.head_weights is None else w * action.head_weights
            return GradientWeights(action.weights * w, head_weights=heads)
        if isinstance(action, GradientDirection):
            heads = w if action.head_weights is None else w * action.head_weights
            return GradientDirection(action.direction, head_weights=heads)
        raise PolicyError(
            f"{self.name}: the gradient part {self.grad_policy.name!r} returned "
            f"{type(action).__name__}, expected GradientWeights or GradientDirection"
        )

    def update(self, info: Mapping[str, Any]) -> None:
        self.loss_policy.update(info)
        self.grad_policy.update(info)

    def parameters(self) -> list[nn.Parameter]:
        return self.loss_policy.parameters() + self.grad_policy.parameters()

    def representation_adapters(self) -> nn.ModuleList | None:
        return self.grad_policy.representation_adapters()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["loss"] = self.loss_policy.state_dict()
        state["grad"] = self.grad_policy.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.loss_policy.load_state_dict(state["loss"])
        self.grad_policy.load_state_dict(state["grad"])

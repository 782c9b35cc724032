"""RotoGrad, Javaloy and Valera, ICLR 2022 ("RotoGrad: Gradient Homogenization in MTL").

RotoGrad homogenises the task gradients w.r.t. the shared representation ``z`` in two ways
(Javaloy and Valera 2022, and the official code github.com/adrianjav/rotograd,
``rotograd/rotograd.py``, class ``RotoGrad``):

* Direction. Every task ``t`` gets a learnable rotation ``R_t`` applied between ``z`` and
  its head, ``r_t = R_t z``. With ``g_t = dL_t/dz`` (per row of the representation) and the
  reference ``v = mean_t (||mean_s g_s|| / ||g_t||) g_t`` (the task gradients rescaled to a
  common norm, then averaged), ``R_t`` minimises
  ``mean_rows || R_t v - dL_t/dr_t ||^2`` with ``dL_t/dr_t`` held fixed, i.e. it turns the
  task's gradient, pulled back through ``R_t``, towards the common direction ``v``. The
  rotations never receive the task losses' gradients (the heads see ``R_t`` detached).
* Magnitude. The shared update is ``sum_t (C / ||g_t||) g_t`` with ``C = sum_t a_t ||g_t||``,
  ``a_t = rho_t / sum_s rho_s`` and ``rho_t = ||g_t|| / ||g_t^0||`` the convergence ratio
  against the gradient norm at the first step (re-recorded once at step ``burn_in_period``,
  default 20): all tasks push with the same norm ``C``, weighted towards tasks that are
  converging slowly. This is a :class:`GradientWeights` action on the representation.

How it maps onto mtlbench:

* :meth:`RotoGrad.representation_adapters` returns the ``T`` rotation modules (created in
  :meth:`RotoGrad.reset`, which needs ``representation_dim``, the size of the
  representation's last axis); the env applies ``adapters[t]`` before head ``t``. An
  adapter multiplies the last axis by ``R_t`` *detached* (as the official ``RotateModule``)
  so the env's backward never touches the policy's parameters.
* ``obs["jacobian"]`` (``wrt = "representation"``) is ``g_t = dL_t/dz`` through the detached
  rotation, so ``dL_t/dr_t = R_t g_t`` (row-wise ``g_t R_t^T``) is recovered exactly and the
  rotation loss needs nothing else. ``||g_t||`` is the norm of the whole flattened gradient
  (the official code's ``g.norm()`` over the batch).
* The rotations are ``R_t = exp(U_t - U_t^T)``, ``U_t`` strictly upper triangular, the
  exponential-map trivialisation the official code uses (geotorch ``orthogonal``,
  ``triv="expm"``), ``R_t = I`` at the start. They are trained by the policy's own Adam
  optimiser (lr: ``lr``, else the env's learning rate from the reset context, else 1e-4; the
  authors advise a smaller lr than the model's) and stepped inside :meth:`act`, i.e. after
  the forward pass that used them, like the official step after ``backward``.

Simplifications (documented): only ``RotoGrad`` is implemented, not ``RotateOnly`` or
``RotoGradNorm``; heads get unweighted task gradients (official ``normalize_losses=False``);
for multi-input envs the reference ``v`` mixes rows of different tasks' inputs, which the
method does not define.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mtlbench.policies.base import (
    GradientWeights,
    Observation,
    Policy,
    PolicyError,
    check_integer,
    check_positive,
    require_observed,
)
from mtlbench.policies.learned_scales import resolve_lr

__all__ = [
    "Rotation",
    "RotoGrad",
    "feature_axis",
    "jacobian_rows",
    "rotation_loss",
    "rotograd_reference",
    "rotograd_weights",
]

_TINY = 1e-15  # the official code's epsilon


def feature_axis(z: torch.Tensor) -> int:
    """The axis RotoGrad rotates: channels of a ``(B, C, H, W)`` map, else the last axis."""
    return 1 if z.dim() == 4 else -1


def jacobian_rows(jacobian: torch.Tensor, dim: int, spatial: int) -> torch.Tensor:
    """Reorder a channels-first ``(T, B*C*S)`` Jacobian into rows of ``C`` features, ``(T, B*S*C)``."""
    if spatial == 1:
        return jacobian
    t = jacobian.shape[0]
    return jacobian.reshape(t, -1, dim, spatial).transpose(2, 3).reshape(t, -1)


class Rotation(nn.Module):
    """``z -> z R^T`` on the feature axis, ``R = exp(U - U^T)`` orthogonal (``U`` upper triangular).

    The feature axis is the channel axis of a ``(B, C, H, W)`` map and the last axis otherwise
    (:func:`feature_axis`, the axis ``MTLEnv.representation_dim`` measures).

    :meth:`forward` uses ``R`` detached (cached until the parameter changes);
    :meth:`matrix` is differentiable, for the policy's own rotation loss.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = int(dim)
        self.raw = nn.Parameter(torch.zeros(self.dim, self.dim))
        self._cache: torch.Tensor | None = None
        self._cache_key: tuple[int, int, torch.device] | None = None
        #: positions per example of the last input (``H * W`` of a map, else 1); read by RotoGrad.act
        self.spatial = 1

    def skew(self) -> torch.Tensor:
        upper = self.raw.triu(1)
        return upper - upper.T

    def matrix(self) -> torch.Tensor:
        return torch.linalg.matrix_exp(self.skew())

    def _detached(self) -> torch.Tensor:
        key = (self.raw._version, self.raw.data_ptr(), self.raw.device)
        if self._cache is None or key != self._cache_key:
            with torch.no_grad():
                self._cache = self.matrix().detach()
            self._cache_key = key
        return self._cache

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        axis = feature_axis(z)
        if z.shape[axis] != self.dim:
            raise ValueError(
                f"RotoGrad rotation expects the representation's feature axis ({axis}) to have size "
                f"{self.dim} (representation_dim), got shape {tuple(z.shape)}"
            )
        r = self._detached().to(z.dtype)
        if axis == 1:
            self.spatial = z.shape[2] * z.shape[3]
            return torch.einsum("dc,bchw->bdhw", r, z)
        self.spatial = 1
        return z @ r.T

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def rotograd_reference(jacobian: torch.Tensor, dim: int) -> torch.Tensor:
    """``v = mean_t (||mean_s g_s|| / ||g_t||) g_t``, rows of size ``dim``, shape ``(N, dim)``."""
    grads = jacobian.reshape(jacobian.shape[0], -1, dim)
    mean_norm = grads.mean(dim=0).norm()
    norms = jacobian.norm(dim=1).clamp_min(_TINY)
    return (grads * (mean_norm / norms).view(-1, 1, 1)).mean(dim=0)


def rotation_loss(rotations: torch.Tensor, jacobian: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``sum_t mean_rows ||v R_t^T - sg(g_t R_t^T)||^2`` (differentiable in ``rotations``).

    ``rotations``: ``(T, d, d)``; ``jacobian``: ``(T, N*d)``, the gradients w.r.t. the
    unrotated representation; ``reference``: ``(N, d)``.
    """
    num_tasks, dim = rotations.shape[0], rotations.shape[-1]
    grads = jacobian.reshape(num_tasks, -1, dim)
    rotated_grads = (grads @ rotations.transpose(1, 2)).detach()  # dL_t/dr_t
    diff = reference.unsqueeze(0) @ rotations.transpose(1, 2) - rotated_grads
    return diff.square().sum(dim=-1).mean(dim=-1).sum()


def rotograd_weights(norms: torch.Tensor, initial_norms: torch.Tensor) -> torch.Tensor:
    """``C / ||g_t||`` with ``C = sum_t a_t ||g_t||``, ``a = rho / sum rho``, ``rho = ||g|| / ||g^0||``."""
    norms = norms.clamp_min(_TINY)
    ratios = norms / initial_norms.clamp_min(_TINY)
    alphas = ratios / ratios.sum().clamp_min(_TINY)
    return (alphas * norms).sum() / norms


class RotoGrad(Policy):
    """RotoGrad: per-task rotations of the representation plus gradient-magnitude scaling.

    Parameters
    ----------
    lr
        Adam learning rate of the rotations; ``None`` uses the env's learning rate (reset
        context ``lr``), or ``1e-4`` when it has none.
    burn_in_period
        Step at which the reference gradient norms ``||g^0||`` are re-recorded (official 20).
    """

    name = "rotograd"
    level = "gradient"
    needs = frozenset({"losses", "jacobian"})
    wrt = "representation"

    def __init__(self, lr: float | None = None, burn_in_period: int = 20) -> None:
        super().__init__()
        self.lr = None if lr is None else check_positive("lr", lr)
        self.burn_in_period = check_integer("burn_in_period", burn_in_period, 0, integral_floats=True)
        self.adapters: nn.ModuleList | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.initial_norms: torch.Tensor | None = None
        self.counter = 0
        self.dim = 0
        self._rotations: list[Rotation] = []

    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        super().reset(task_names, seed, device=device, **context)
        if "representation_dim" not in context:
            raise PolicyError(
                "rotograd: reset() needs representation_dim (the size of the shared "
                "representation's last axis) in its context"
            )
        dim = int(context["representation_dim"])
        if dim <= 0:
            raise PolicyError(f"rotograd: representation_dim must be > 0, got {dim}")
        lr = resolve_lr(self.lr, context)
        self.dim = dim
        self._rotations = [Rotation(dim).to(self.device) for _ in task_names]
        self.adapters = nn.ModuleList(self._rotations)
        self.optimizer = torch.optim.Adam(self.adapters.parameters(), lr=lr)
        self.initial_norms = None
        self.counter = 0

    def representation_adapters(self) -> nn.ModuleList | None:
        return self.adapters

    def parameters(self) -> list[nn.Parameter]:
        return [] if self.adapters is None else list(self.adapters.parameters())

    def _step_rotations(self, jacobian: torch.Tensor) -> None:
        assert self.adapters is not None and self.optimizer is not None
        params = self.parameters()
        jac = jacobian.to(params[0].device, params[0].dtype)
        with torch.enable_grad():
            rotations = torch.linalg.matrix_exp(torch.stack([r.skew() for r in self._rotations]))
            loss = rotation_loss(rotations, jac, rotograd_reference(jac, self.dim))
            grads = torch.autograd.grad(loss, params)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        self.optimizer.step()

    def act(self, observation: Observation) -> GradientWeights:
        if self.adapters is None or self.optimizer is None:
            raise PolicyError("rotograd: call reset() before act()")
        require_observed(observation, "jacobian", "rotograd")
        dim = self.dim
        # rows of ``dim`` features (the env flattens a (B, C, H, W) Jacobian channels-first)
        jac = jacobian_rows(observation["jacobian"].detach(), dim, self._rotations[0].spatial)
        if jac.shape[1] % dim != 0:
            raise PolicyError(
                f"rotograd: the representation Jacobian has {jac.shape[1]} columns, not a "
                f"multiple of representation_dim={dim}"
            )
        norms = jac.norm(dim=1)
        if self.initial_norms is None or self.counter == self.burn_in_period:
            self.initial_norms = norms.clamp_min(_TINY)
        self.counter += 1
        weights = rotograd_weights(norms, self.initial_norms)
        self._step_rotations(jac)
        return GradientWeights(weights)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.adapters is not None and self.optimizer is not None:
            state["adapters"] = {k: v.detach().clone() for k, v in self.adapters.state_dict().items()}
            state["optimizer"] = copy.deepcopy(self.optimizer.state_dict())
        state["initial_norms"] = self.initial_norms
        state["counter"] = self.counter
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if self.adapters is None or self.optimizer is None:
            raise PolicyError("rotograd: call reset() before load_state_dict()")
        self.adapters.load_state_dict(state["adapters"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.initial_norms = state["initial_norms"]
        self.counter = int(state["counter"])

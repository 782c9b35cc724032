"""MTLEnv: one training run of a multi-task model as a ``gymnasium.Env``.

One episode is one training run; one ``step(action)`` is one optimisation step whose action
is the task weighting (docs/design.md, "MTLEnv"):

* ``reset(seed)`` builds the model, optimiser and data order from the seed alone, runs the
  first forward pass and returns the first observation.
* ``step(action)`` applies the weighting (loss weights, :class:`GradientWeights` or
  :class:`GradientDirection`), steps the optimiser, evaluates at the end of an epoch when
  the budget says so, runs the next forward pass and returns
  ``(obs, reward, terminated, truncated, info)``. ``truncated`` is true once the budget is
  spent; ``terminated`` is true when the loss diverged (``info["diverged"]``).
* ``evaluate(split)`` runs the frozen evaluator and returns ``{task: {metric: value}}``.

Spaces (Gymnasium conventions; docs/gymnasium.md; the classes are in :mod:`mtlbench.spaces`):

* ``observation_space`` is a ``Dict`` of ``Box`` es, one per observed key (see
  :mod:`mtlbench.protocol`). Observations are dicts of torch tensors on the env's
  device; asking for a key the env was not built to observe raises
  :class:`MissingObservation`, which names the fix (``mtlbench.make(id, policy=policy)``).
* ``action_space`` is a :class:`WeightingSpace`: at the loss level a ``(T,)`` vector of
  non-negative loss weights (Lin et al. 2022, Eq. 1); at the gradient level a
  :class:`GradientWeights` (signed ``(T,)`` weights of the shared-part task gradients,
  Eq. 2) or a :class:`GradientDirection` (the ``(D,)`` update itself), each with optional
  non-negative head weights. It samples loss weights.
* ``spec`` is Gymnasium's ``EnvSpec`` (set by ``make``; ``max_episode_steps`` is the run's
  number of optimisation steps); the benchmark protocol is ``bench_spec``.

Gymnasium's ``check_env`` and RL libraries expect NumPy arrays: wrap the env in
:class:`mtlbench.wrappers.TorchToNumpy` (and :func:`mtlbench.wrappers.agent_env` for a
learning agent). The hot loop never syncs with the host on
CUDA except every ``check_every`` steps, when divergence and action validity are checked
(both are accumulated on the device in between, with the first offending step).

Model init, dropout and data order depend only on the seed (the global torch RNG is seeded
in ``reset``; the data order has its own CPU generator), so two policies at the same seed
see the same batches and start from the same weights: comparisons are paired.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import torch
from gymnasium.envs.registration import EnvSpec
from torch import nn

from mtlbench.actions import ActionApplier, InvalidAction, StepGraph, rep_tensors
from mtlbench.autodiff import gramian as gramian_of
from mtlbench.autodiff import jacobian as jacobian_of
from mtlbench.data import load_dataset
from mtlbench.data.base import Batch, TensorMTLDataset
from mtlbench.data_order import DataOrder
from mtlbench.env_spaces import direction_dim, jacobian_width, meta_representation, observation_space
from mtlbench.evaluation import EVALUATOR_VERSION, Evaluator, build_metric
from mtlbench.losses import get_loss
from mtlbench.models import MTLModel, build_model
from mtlbench.models.base import Representation
from mtlbench.optim import make_optimizer, make_scheduler
from mtlbench.protocol import KNOWN_NEEDS
from mtlbench.registration import BenchmarkSpec
from mtlbench.selection import selection_score
from mtlbench.spaces import MissingObservation, ObservationDict, WeightingSpace

__all__ = ["Diverged", "InvalidAction", "MTLEnv", "MissingObservation", "ObservationDict", "WeightingSpace"]


class Diverged(RuntimeError):
    """A training loss became NaN or infinite."""


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class MTLEnv(gym.Env):
    """A registered multi-task benchmark; build it with :func:`mtlbench.make`."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - typed as gymnasium.Env types it
    observation_space: gym.spaces.Dict
    # the autograd graph of the current batch, between a forward and _release_graph()
    _rep: Representation | None
    _rep_in: Representation | None

    def __init__(
        self,
        spec: BenchmarkSpec,
        *,
        official: bool = True,
        device: str | torch.device | None = None,
        data_root: str | None = None,
        num_workers: int = 0,
        observe: Sequence[str] = (),
        wrt: str = "parameters",
        level: str | None = None,
        precision: str = "fp32",
    ) -> None:
        unknown = set(observe) - KNOWN_NEEDS
        if unknown:
            raise ValueError(f"observe={sorted(unknown)} is not understood; known: {sorted(KNOWN_NEEDS)}")
        if wrt not in ("parameters", "representation"):
            raise ValueError(f"wrt must be 'parameters' or 'representation', got {wrt!r}")
        if level not in (None, "loss", "gradient"):
            raise ValueError(f"level must be 'loss', 'gradient' or None, got {level!r}")
        if precision != "fp32":
            raise ValueError(f"precision {precision!r} is not supported yet; use 'fp32'")
        if spec.evaluator_version != EVALUATOR_VERSION:
            raise ValueError(
                f"{spec.id} asks for evaluator version {spec.evaluator_version}, this mtlbench has "
                f"{EVALUATOR_VERSION}; install the mtlbench release that matches the env version"
            )
        self.bench_spec = spec
        self._gym_spec: EnvSpec | None = None  # set by make(); see the spec property
        self.official = official
        self.device = _resolve_device(device)
        self.num_workers = num_workers
        self.observe = frozenset(observe) | {"losses"}
        self.wrt = wrt
        # the policy's declared level: actions of the other level are invalid; None (a plain
        # Gymnasium user) infers it from the action's type
        self.level = level
        self.task_names = spec.task_names
        self.num_tasks = len(self.task_names)
        self.check_every = 1 if self.device.type == "cpu" else 25

        # Data first: a missing dataset fails here, before any model is built.
        self.splits = load_dataset(spec.dataset.name, data_root, **dict(spec.dataset.kwargs))
        for split in ("train", "val", "test"):
            ds = self.splits[split]
            if isinstance(ds, TensorMTLDataset) and self.device.type == "cuda":
                setattr(self.splits, split, ds.to(self.device))
        self.loss_fns = {t.name: get_loss(t.loss, **dict(t.loss_kwargs)) for t in spec.tasks}
        self.evaluator = Evaluator(
            {t.name: build_metric(t.metric, **dict(t.metric_kwargs)) for t in spec.tasks}
        )
        batch = spec.optimizer.batch_size
        # Full batches only (when the split allows), so every step sees the same batch size and
        # representation-level Jacobians keep one shape.
        self._drop_last = len(self.splits.train) > batch  # type: ignore[arg-type]
        n_batches = self.splits.train.num_batches(batch, drop_last=self._drop_last)
        self.steps_per_epoch = min(n_batches, spec.budget.steps_per_epoch or n_batches)
        self.total_steps = self.steps_per_epoch * spec.budget.epochs

        self.observation_space = observation_space(
            self.num_tasks,
            self.observe,
            lambda: jacobian_width(wrt, self.splits.train, self._build_model, spec.optimizer.batch_size),
        )
        self.action_space = WeightingSpace(self.num_tasks, direction_dim(self.observation_space))
        self.model: MTLModel | None = None
        self._adapters: nn.ModuleList | None = None

    # ------------------------------------------------------------------ spaces
    @property
    def spec(self) -> EnvSpec | None:
        """Gymnasium's ``EnvSpec`` of this env (``make`` sets it); the protocol is :attr:`bench_spec`.

        The env truncates itself when the budget is spent, so ``max_episode_steps`` is
        :attr:`total_steps`; a spec set without it (``gymnasium.make`` sets ``None`` on the
        unwrapped env) gets it filled in.
        """
        return self._gym_spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        if value is not None and value.max_episode_steps is None:
            value = dataclasses.replace(value, max_episode_steps=self.total_steps)
        self._gym_spec = value

    def representation_dim(self) -> int:
        """Size of the representation's feature axis: the channels (axis 1) of a ``(B, C, H, W)``
        map, else the last axis (``(B, F)`` vectors, ``(B, L, F)`` token sequences)."""
        rep = meta_representation(self.splits.train, self._build_model)[0]
        return int(rep.shape[1] if rep.dim() == 4 else rep.shape[-1])

    def _build_model(self) -> MTLModel:
        m = self.bench_spec.model
        return build_model(m.architecture, m.backbone, self.bench_spec.tasks, **dict(m.kwargs))

    # ------------------------------------------------------------------ episode
    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Start a run. ``options`` may carry ``adapters`` (RotoGrad's per-task modules)."""
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        self.seed = int(seed)
        options = dict(options or {})

        torch.manual_seed(self.seed)  # model init and dropout: the seed alone decides them
        model = self._build_model()
        if self.wrt == "representation" and not model.shared_representation:
            raise ValueError(
                f"{self.bench_spec.id}: architecture {self.bench_spec.model.architecture!r} has no "
                "shared representation; use a parameter-level method (wrt='parameters')"
            )
        self.model = model.to(self.device).train()
        self._adapters = options.get("adapters")
        if self._adapters is not None:
            self._adapters.to(self.device)
        self._shared = self.model.shared_parameters()
        self._task_params = self.model.task_parameters()
        opt = self.bench_spec.optimizer
        self.optimizer = make_optimizer(opt.name, self.model.parameters(), opt.lr, opt.weight_decay)
        self.scheduler = make_scheduler(opt.scheduler, self.optimizer, dict(opt.scheduler_kwargs))

        self._order = DataOrder(
            self.splits,
            seed=self.seed,
            batch_size=opt.batch_size,
            steps_per_epoch=self.steps_per_epoch,
            drop_last=self._drop_last,
            device=self.device,
            num_workers=self.num_workers,
        )
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        # the step counter mirrored on the device, so flagging a bad step never copies from the host
        self._step_on_device = torch.zeros((), dtype=torch.long, device=self.device)
        self._actions = ActionApplier(
            num_tasks=self.num_tasks,
            level=self.level,
            wrt=self.wrt,
            device=self.device,
            check_every=self.check_every,
            shared=self._shared,
            task_params=self._task_params,
        )
        self._bad_loss = torch.full((), -1, dtype=torch.long, device=self.device)
        self._last_score = 0.0
        self._selection_baseline: dict[str, dict[str, float]] | None = (
            {t: dict(m) for t, m in self.bench_spec.stl_reference.items()}
            if self.bench_spec.stl_reference
            else None
        )
        self._train_iter = self._order.epoch()
        self._batch = next(self._train_iter)
        obs = self._forward(self._batch)
        return obs, {"epoch": 0, "step": 0, "steps_per_epoch": self.steps_per_epoch}

    # ------------------------------------------------------------------ forward
    def _task_losses(self, batch: Batch) -> tuple[torch.Tensor, Representation, Representation]:
        """``(losses (T,), rep, rep_in)``: ``rep_in`` is what the heads read (a detached leaf
        copy of the representation at the representation level, else ``rep`` itself)."""
        assert self.model is not None
        x, y = batch
        rep = self.model.encode(x)
        rep_in = _detach_rep(rep) if self.wrt == "representation" else rep
        out = self.model.decode(rep_in, self._adapters)
        return torch.stack([self.loss_fns[t](out[t], y[t]) for t in self.task_names]), rep, rep_in

    def _losses(self, batch: Batch, *, keep: bool) -> torch.Tensor:
        losses, rep, rep_in = self._task_losses(batch)
        if keep:
            self._rep, self._rep_in = rep, rep_in
        return losses

    def _jacobian_inputs(self, rep_in: Any) -> list[torch.Tensor]:
        if self.wrt == "representation":
            return rep_tensors(rep_in)
        return list(self._shared)

    def _forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        losses = self._losses(batch, keep=True)
        self._train_losses = losses
        self._jac: torch.Tensor | None = None
        obs = self._observation(
            {
                "losses": losses.detach(),
                "step": torch.tensor(self.global_step, dtype=torch.int64),
                "epoch": torch.tensor(self.epoch, dtype=torch.int64),
            }
        )
        if self.observe & {"jacobian", "gramian"}:
            self._jac = jacobian_of(losses, self._jacobian_inputs(self._rep_in), retain_graph=True)
            if "jacobian" in self.observe:
                obs["jacobian"] = self._jac
            if "gramian" in self.observe:
                obs["gramian"] = gramian_of(self._jac)
        if self.observe & {"val_losses", "val_jacobian"}:
            obs.update(self._validation_observation())
        return obs

    def _validation_observation(self) -> dict[str, torch.Tensor]:
        """Losses (and Jacobian) on a validation batch; the test split is never touched."""
        assert self.model is not None
        batch = self._order.next_val_batch()
        self.model.eval()  # no BatchNorm statistics from validation data
        try:
            with torch.enable_grad():
                losses, _, rep_in = self._task_losses(batch)
                obs = {"val_losses": losses.detach()}
                if "val_jacobian" in self.observe:
                    obs["val_jacobian"] = jacobian_of(
                        losses, self._jacobian_inputs(rep_in), retain_graph=False
                    )
        finally:
            self.model.train()
        return obs

    # ------------------------------------------------------------------ step
    def step(self, action: Any) -> tuple[dict[str, torch.Tensor], float, bool, bool, dict[str, Any]]:
        if self.model is None:
            raise RuntimeError("call reset() before step()")
        info: dict[str, Any] = {"step": self.global_step, "epoch": self.epoch}
        # Divergence is flagged on the device and read at sync points only (every step on CPU).
        self._bad_loss = torch.where(
            (self._bad_loss < 0) & ~torch.isfinite(self._train_losses.detach()).all(),
            self._step_on_device,
            self._bad_loss,
        )
        sync = self.global_step % self.check_every == 0 or self.step_in_epoch + 1 >= self.steps_per_epoch
        if sync and int(self._bad_loss) >= 0:
            info["diverged"] = True
            info["diverged_at_step"] = int(self._bad_loss)
            self._release_graph()
            return self._last_obs_stub(), 0.0, True, False, info
        self._apply(action)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if "next_losses" in self.observe:
            with torch.no_grad():
                info["next_losses"] = self._losses(self._batch, keep=False)
        self._release_graph()
        self.global_step += 1
        self._step_on_device += 1
        self.step_in_epoch += 1
        if sync:
            self._actions.raise_if_bad()

        reward = 0.0
        end_of_epoch = self.step_in_epoch >= self.steps_per_epoch
        if end_of_epoch:
            self.epoch += 1
            self.step_in_epoch = 0
            if self.scheduler is not None:
                self.scheduler.step()
            if (
                self.epoch % self.bench_spec.budget.eval_every_epochs == 0
                or self.epoch == self.bench_spec.budget.epochs
            ):
                val = self.evaluate("val")
                evaluation = {
                    "epoch": self.epoch,
                    "step": self.global_step,
                    "val": val,
                    "test": self.evaluate("test"),
                }
                score = self.selection_score(val)
                evaluation["val_score"] = score
                reward = score - self._last_score
                self._last_score = score
                info["evaluation"] = evaluation
            if self.epoch >= self.bench_spec.budget.epochs:
                return self._last_obs_stub(), reward, False, True, info
            self._train_iter = self._order.epoch()
        self._batch = next(self._train_iter)
        obs = self._forward(self._batch)
        return obs, reward, False, False, info

    def _observation(self, values: Mapping[str, torch.Tensor]) -> ObservationDict:
        return ObservationDict(values, self.bench_spec.id, frozenset(self.observation_space.spaces))

    def _last_obs_stub(self) -> dict[str, torch.Tensor]:
        """Observation returned at the end of an episode (no further forward pass)."""
        obs = self._observation(
            {
                "losses": self._train_losses.detach(),
                "step": torch.tensor(self.global_step, dtype=torch.int64),
                "epoch": torch.tensor(self.epoch, dtype=torch.int64),
            }
        )
        for key, space in self.observation_space.spaces.items():
            if key not in obs:
                assert space.shape is not None  # every observation space is a Box
                obs[key] = torch.zeros(space.shape, dtype=torch.float32, device=self.device)
        return obs

    def _release_graph(self) -> None:
        self._rep = self._rep_in = None
        self._jac = None

    # ------------------------------------------------------------------ actions
    def _apply(self, action: Any) -> None:
        """Validate and back-propagate ``action`` (:mod:`mtlbench.actions`); gradients land in ``.grad``."""
        graph = StepGraph(self._train_losses, self._jac, self._rep, self._rep_in)
        self._actions.apply(action, graph, self.global_step, self._step_on_device)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, split: str = "val") -> dict[str, dict[str, float]]:
        """Run the frozen evaluator over a whole split; ``{task: {metric: value}}``."""
        if self.model is None:
            raise RuntimeError("call reset() before evaluate()")
        self.model.eval()
        self.evaluator.reset()
        try:
            for x, y in self.splits[split].batches(
                self.bench_spec.optimizer.batch_size,
                shuffle=False,
                generator=None,
                drop_last=False,
                device=self.device,
                num_workers=self.num_workers,
            ):
                self.evaluator.update(self.model.decode(self.model.encode(x), self._adapters), y)
            return self.evaluator.compute()
        finally:
            self.model.train()

    def selection_score(self, val_metrics: Mapping[str, Mapping[str, float]]) -> float:
        """Validation delta_p against the selection baseline (STL reference, else the first evaluation).

        This is the score model selection maximises (LibMTL's convention when no
        single-task reference exists); it is run-local, so it never needs another run. The
        rule is :func:`mtlbench.selection.selection_score`.
        """
        if self._selection_baseline is None:
            self._selection_baseline = {t: dict(m) for t, m in val_metrics.items()}
        return selection_score(val_metrics, self._selection_baseline, self.bench_spec.higher_is_better)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> dict[str, Any]:
        """State to resume from the current epoch boundary (model, optimiser, RNGs, counters)."""
        assert self.model is not None
        if self.step_in_epoch != 0:
            raise RuntimeError("checkpoints are taken at epoch boundaries only")
        # a deep copy: state_dict() tensors alias the live ones, which training keeps changing
        return copy.deepcopy(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "adapters": None if self._adapters is None else self._adapters.state_dict(),
                "epoch": self.epoch,
                "global_step": self.global_step,
                **self._order.epoch_start_state,
                "last_score": self._last_score,
                "selection_baseline": self._selection_baseline,
            }
        )

    def restore(self, state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Resume from :meth:`checkpoint`, after ``reset`` with the same seed. Returns the next observation."""
        assert self.model is not None
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self._adapters is not None and state["adapters"] is not None:
            self._adapters.load_state_dict(state["adapters"])
        self.epoch, self.global_step, self.step_in_epoch = (
            state["epoch"],
            state["global_step"],
            0,
        )
        self._step_on_device.fill_(self.global_step)
        self._order.restore(state)
        self._last_score = state["last_score"]
        self._selection_baseline = state["selection_baseline"]
        self._release_graph()
        self._train_iter = self._order.epoch()
        self._batch = next(self._train_iter)
        return self._forward(self._batch)

    def close(self) -> None:
        self.model = None
        self._release_graph()
        super().close()


# ---------------------------------------------------------------------- helpers
def _detach_rep(rep: Any) -> Any:
    if isinstance(rep, Mapping):
        return {k: v.detach().requires_grad_(True) for k, v in rep.items()}
    return rep.detach().requires_grad_(True)

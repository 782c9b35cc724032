"""The Policy protocol: what a weighting method is, what it sees, what it returns.

A policy is the unit that is benchmarked and submitted. The environment hands it an
*observation* (a mapping of torch tensors on the env's device) and it answers with an
*action*. It never receives the model, the optimiser or any test data (docs/design.md, "Policy").

Levels (Lin et al. 2022, Eq. 1 and Eq. 2):

* ``"loss"``: the action is a weight vector ``w`` of shape ``(T,)``; the env minimises
  ``sum_t w_t L_t``, so the weights also reach the task-specific heads (Algorithm 1).
* ``"gradient"``: the action combines per-task gradients of the *shared* parameters
  (or of the shared representation, when ``wrt == "representation"``); heads are updated
  by their own unweighted task gradients (Algorithm 2). The action is either a
  :class:`GradientWeights` (``d = sum_t a_t g_t``) or a :class:`GradientDirection`
  (an explicit update direction, for methods such as GradDrop that are not a linear
  combination of task gradients).

Observation keys (present only when the policy ``needs`` them, ``losses`` always; the
table is kept in :mod:`mtlbench.protocol`, which owns the contract):

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

After the optimiser step, :meth:`Policy.update` receives ``info`` with at least ``step``,
``epoch`` and, when ``"next_losses"`` is needed, ``next_losses``: the losses of the same
training batch re-evaluated at the updated parameters (FAMO's second forward).
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from mtlbench.protocol import (
    KNOWN_NEEDS,
    Action,
    GradientDirection,
    GradientWeights,
    Level,
    Observation,
    Wrt,
)

# The contract lives in mtlbench.protocol; these names are re-exported for compatibility.
__all__ = [
    "KNOWN_NEEDS",
    "Action",
    "GradientDirection",
    "GradientWeights",
    "Level",
    "Observation",
    "Policy",
    "PolicyError",
    "Wrt",
    "as_gramian",
    "check_in_range",
    "check_integer",
    "check_positive",
    "learned_state",
    "load_learned_state",
    "raise_unless",
]


class PolicyError(RuntimeError):
    """A policy failed in a way that names the policy (solver failure, bad state, ...)."""


class Policy(ABC):
    """Base class of every weighting method.

    Subclasses set the class attributes ``name``, ``level``, ``needs`` (and ``wrt`` for
    gradient-level methods), validate their hyperparameters in ``__init__`` and implement
    :meth:`act`. State that must start afresh for every run is created in :meth:`reset`.
    Randomness comes only from ``self.generator`` (seeded in :meth:`reset`), never from the
    global torch RNG.

    Hyperparameters are the arguments of ``__init__``, recorded once by this class (as
    Gymnasium's ``RecordConstructorArgs`` records a wrapper's): every subclass's ``__init__``
    is wrapped so that, when it returns, the arguments it was called with are bound to its
    signature, defaults applied, in signature order (``**kwargs`` flattened), and
    :meth:`hparams` returns them. The outermost ``__init__`` (the concrete class's) returns
    last, so its arguments are the ones kept. Where ``__init__`` stored an argument under its
    own name as a JSON scalar (``None``, ``bool``, ``int``, ``float``, ``str``), the stored,
    validated value is recorded (``check_positive`` turns ``c=1`` into ``self.c = 1.0``; a
    result file holds ``1.0``), so store each argument under its own name as validated, never
    a derived value. A subclass that needs something else (derived values, nested policies)
    overrides :meth:`hparams`; its override wins. ``make(name, **policy.hparams())`` rebuilds
    the policy.
    """

    name: ClassVar[str] = "policy"
    level: ClassVar[Level] = "loss"
    needs: ClassVar[frozenset[str]] = frozenset({"losses"})
    wrt: ClassVar[Wrt] = "parameters"
    #: version of the method's code: bumped whenever a change can change a run's results, so
    #: results stored under ``<name>@<version>`` always come from the same algorithm
    version: ClassVar[str] = "1"

    def __init__(self) -> None:
        self.task_names: tuple[str, ...] = ()
        self.generator: torch.Generator | None = None
        self.device: torch.device = torch.device("cpu")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # wrap the __init__ a subclass defines (or inherits unwrapped) to record its arguments
        super().__init_subclass__(**kwargs)
        if not getattr(cls.__init__, "_records_hparams", False):
            cls.__init__ = _recording_arguments(cls.__init__)  # type: ignore[method-assign]

    # ----------------------------------------------------------------- lifecycle
    def reset(
        self,
        task_names: Sequence[str],
        seed: int,
        *,
        device: torch.device | str = "cpu",
        **context: Any,
    ) -> None:
        """Start a new run: remember the tasks, seed the private generator, clear state.

        ``context`` may carry env facts a method needs (``steps_per_epoch``,
        ``representation_dim``, ``num_epochs``); unknown keys are ignored.
        """
        self.task_names = tuple(task_names)
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @abstractmethod
    def act(self, observation: Observation) -> Action:
        """Return the action for the current observation."""

    def update(self, info: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Optional hook called after every optimiser step."""

    def parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters the policy owns (UW, GradNorm, ...). Default: none."""
        return []

    def representation_adapters(self) -> torch.nn.ModuleList | None:
        """Optional per-task modules inserted between the shared representation and heads.

        Only RotoGrad needs this: the env applies ``adapters[t]`` to the representation
        before task ``t``'s head and trains the adapter parameters with the policy's own
        optimiser. Default: none.
        """
        return None

    def state_dict(self) -> dict[str, Any]:
        """Serializable policy state (for checkpoints). Default: generator state only."""
        state: dict[str, Any] = {}
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "generator" in state and self.generator is not None:
            self.generator.set_state(state["generator"])

    def hparams(self) -> dict[str, Any]:
        """Hyperparameters: the arguments given to ``__init__`` (see the class docstring).

        Stored in every result file, so the dict must be JSON-serialisable.
        """
        return dict(self.__dict__.get(_RECORDED, {}))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams().items())
        return f"{type(self).__name__}({args})"


# ----------------------------------------------------------- recorded constructor arguments
#: the instance attribute holding the recorded ``__init__`` arguments
_RECORDED = "_recorded_hparams"
_JSON_SCALARS = (type(None), bool, int, float, str)


def _recording_arguments(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a Policy subclass's ``__init__`` so that it records its arguments when it returns."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Policy, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        self.__dict__[_RECORDED] = _recorded_arguments(self, bound)

    __init__._records_hparams = True  # type: ignore[attr-defined]
    return __init__


def _recorded_arguments(policy: Policy, bound: inspect.BoundArguments) -> dict[str, Any]:
    """The bound arguments less ``self``; an argument stored as a JSON scalar under its name, as stored."""
    given: dict[str, Any] = {}
    for index, (key, value) in enumerate(bound.arguments.items()):
        if index == 0:  # self
            continue
        if bound.signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
            given.update(value)
        else:
            given[key] = value
    recorded = {}
    for key, value in given.items():
        stored = policy.__dict__.get(key, value)
        recorded[key] = stored if isinstance(stored, _JSON_SCALARS) else value
    return recorded


# --------------------------------------------------------------- learned-state helpers
def learned_state(
    key: str, tensor: torch.Tensor | None, optimizer: torch.optim.Optimizer | None
) -> dict[str, Any]:
    """``{key: a copy of tensor, "optimizer": a copy of its optimiser's state}``; ``{}`` before ``reset``.

    For policies that train a tensor of their own (UW's scales, FAMO's logits, ...), in
    :meth:`Policy.state_dict`.
    """
    if tensor is None or optimizer is None:
        return {}
    return {key: tensor.detach().clone(), "optimizer": copy.deepcopy(optimizer.state_dict())}


def load_learned_state(
    method: str,
    key: str,
    tensor: torch.Tensor | None,
    optimizer: torch.optim.Optimizer | None,
    state: Mapping[str, Any],
) -> None:
    """Restore what :func:`learned_state` saved, in place; a policy not yet reset is an error."""
    if tensor is None or optimizer is None:
        raise PolicyError(f"{method}: call reset() before load_state_dict()")
    with torch.no_grad():
        tensor.copy_(state[key])
    optimizer.load_state_dict(state["optimizer"])


# --------------------------------------------------------------------- validation helpers
def require_observed(observation: Observation, keys: str | Sequence[str], method: str) -> None:
    """Raise :class:`PolicyError` naming the first of ``keys`` the observation lacks (undeclared need)."""
    for key in (keys,) if isinstance(keys, str) else keys:
        if key not in observation:
            raise PolicyError(f"{method} needs observation[{key!r}]; declare it in needs")


def current_epoch(observation: Observation, method: str) -> int:
    """The observation's ``epoch`` (0-indexed; the env always sends it) as an ``int``."""
    if "epoch" not in observation:
        raise PolicyError(f"{method} needs observation['epoch'] (the current epoch, 0-indexed)")
    return int(observation["epoch"])


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Validate a hyperparameter and return it as a float, naming it on failure."""
    value = float(value)
    ok = value >= 0 if allow_zero else value > 0
    if not ok or math.isnan(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"hyperparameter {name!r} must be {bound}, got {value!r}")
    return value


def check_integer(name: str, value: int, minimum: int, *, integral_floats: bool = False) -> int:
    """Validate an integer hyperparameter ``>= minimum``, naming it on failure.

    By default ``value`` must be an ``int`` (not a ``bool``) and is returned as given; with
    ``integral_floats`` any value equal to an integer (``4.0``) is accepted and returned as
    ``int``.
    """
    if integral_floats:
        ok = int(value) == value and value >= minimum
    else:
        ok = not isinstance(value, bool) and isinstance(value, int) and value >= minimum
    if not ok:
        raise ValueError(f"hyperparameter {name!r} must be an integer >= {minimum}, got {value!r}")
    return int(value) if integral_floats else value


def check_in_range(name: str, value: float, low: float, high: float) -> float:
    value = float(value)
    if not (low <= value <= high):
        raise ValueError(f"hyperparameter {name!r} must be in [{low}, {high}], got {value!r}")
    return value


# ----------------------------------------------------------------- Gramian solver helpers
def as_gramian(gramian: torch.Tensor, method: str) -> torch.Tensor:
    """Validate a ``(T, T)`` Gramian and return it detached in float64 for a small solve."""
    if gramian.dim() != 2 or gramian.shape[0] != gramian.shape[1] or gramian.shape[0] < 1:
        raise ValueError(f"{method}: the Gramian must have shape (T, T), got {tuple(gramian.shape)}")
    return gramian.detach().to(torch.float64)


def raise_unless(ok: torch.Tensor, method: str, what: str) -> None:
    """Raise :class:`PolicyError` naming ``method`` unless ``ok``; never a silent fallback.

    The one host synchronisation of a solver call: a failed solve must never pass silently.
    """
    if not bool(ok):
        raise PolicyError(f"{method}: {what}")

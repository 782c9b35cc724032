"""The environment registry: :class:`BenchmarkSpec`, ``register``, ``make``, ``spec``.

Modelled on Gymnasium's ``envs/registration.py``: one module owns a plain dict of frozen
specs; an id ``[namespace/]name-vN`` is parsed once, in ``__post_init__``; ``make`` is a
few named steps (find the spec, split runtime from protocol arguments, load the entry
point). Every mtlbench env is also registered with Gymnasium as ``mtlbench/<id>`` when the
package is imported, so ``import mtlbench`` is enough for
``gymnasium.make("mtlbench/multimnist-hps-v1")`` (docs/gymnasium.md).

``make`` sets ``env.spec`` as ``gymnasium.make`` does: a Gymnasium ``EnvSpec`` with the
Gymnasium id, the ``make`` arguments as ``kwargs`` (``gymnasium.make(env.spec)`` rebuilds the
env) and ``max_episode_steps`` = the run's optimisation steps. The protocol is
``env.bench_spec``. ``make(id, policy=policy)`` builds the env a policy needs (what it
observes, and w.r.t. what gradient-level actions are taken).

A spec holds the whole *protocol* of a benchmark (data, tasks, model, budget, optimiser,
evaluator version); its SHA-256 over canonical JSON goes into every result file. Runtime
settings (device, data root, workers) are arguments of ``make`` and are not hashed.
Overriding a protocol field is possible for experiments and tests, but the env is then
marked unofficial (``env.official is False``) and the harness records that.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mtlbench.env import MTLEnv

__all__ = [
    "BenchmarkSpec",
    "BudgetSpec",
    "DatasetSpec",
    "Error",
    "MetricSpec",
    "ModelSpec",
    "NameNotFound",
    "OptimizerSpec",
    "OverrideError",
    "RegistrationError",
    "TaskSpec",
    "VersionNotFound",
    "check_overrides",
    "gymnasium_id",
    "make",
    "override_fields",
    "parse_env_id",
    "pprint_registry",
    "register",
    "registry",
    "spec",
]

ENV_ID_RE = re.compile(r"^(?:(?P<namespace>[\w:.-]+)/)?(?P<name>[\w:.-]+?)(?:-v(?P<version>\d+))?$")
#: keyword arguments of ``make`` that never change the protocol
RUNTIME_KWARGS = frozenset({"device", "data_root", "num_workers", "observe", "wrt", "level", "precision"})


class Error(Exception):
    """Base class of registration errors."""


class RegistrationError(Error):
    """An id is malformed or already registered."""


class NameNotFound(Error):
    """No environment with that name."""


class VersionNotFound(Error):
    """The name exists but not at that version."""


class OverrideError(Error, ValueError):
    """An override names no field of the spec, or gives a value of the wrong type."""


# ------------------------------------------------------------------------------ the spec
@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool


@dataclass(frozen=True)
class TaskSpec:
    """One task: its loss and the metric accumulator that evaluates it."""

    name: str
    type: str  # classification | segmentation | depth | normal | regression | tagging
    loss: str  # key of mtlbench.losses.LOSSES
    metric: str  # key of mtlbench.evaluation.METRICS
    metrics: tuple[MetricSpec, ...]
    metric_kwargs: Mapping[str, Any] = field(default_factory=dict)
    loss_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSpec:
    """Where the data comes from and how it is split (hashes pin the split manifest)."""

    name: str  # key of mtlbench.data.DATASETS
    revision: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    split_sizes: Mapping[str, int] = field(default_factory=dict)
    split_manifest_sha256: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    architecture: str  # key of mtlbench.models.ARCHITECTURES
    backbone: str  # key of mtlbench.models.BACKBONES
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimizerSpec:
    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    scheduler: str | None = None  # None | "step"
    scheduler_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BudgetSpec:
    epochs: int
    eval_every_epochs: int = 1
    #: cap on optimisation steps per epoch (None: one pass over the training split)
    steps_per_epoch: int | None = None


@dataclass(frozen=True)
class BenchmarkSpec:
    """Everything that defines a benchmark environment. Hashed into every result."""

    id: str
    dataset: DatasetSpec
    tasks: tuple[TaskSpec, ...]
    model: ModelSpec
    optimizer: OptimizerSpec
    budget: BudgetSpec
    entry_point: str = "mtlbench.env:MTLEnv"
    evaluator_version: str = "1"
    stl_reference: Mapping[str, Mapping[str, float]] | None = None
    reward: str = (
        "change in validation delta_p (vs the selection baseline) since the last evaluation; 0 in between"
    )
    description: str = ""
    superseded_by: str | None = None
    #: runtime hint for schedulers (Ray): the GPU fraction one run needs; not hashed
    gpu_fraction: float | None = field(default=None, compare=False)
    namespace: str | None = field(init=False, compare=False, repr=False)
    name: str = field(init=False, compare=False, repr=False)
    version: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        namespace, name, version = parse_env_id(self.id)
        if version is None:
            raise RegistrationError(f"env id {self.id!r} must end in a version, like '{name}-v1'")
        object.__setattr__(self, "namespace", namespace)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "version", version)

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    @property
    def higher_is_better(self) -> dict[str, dict[str, bool]]:
        return {t.name: {m.name: m.higher_is_better for m in t.metrics} for t in self.tasks}

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("namespace", "name", "version", "gpu_fraction"):
            data.pop(key)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical JSON of the protocol (first 16 hex digits).

        ``superseded_by`` points to a newer version and is not part of the protocol: it is
        hashed as ``None``, so marking a version superseded keeps its stored results valid.
        """
        data = self.to_dict()
        data["superseded_by"] = None
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchmarkSpec:
        d = dict(data)
        d["dataset"] = DatasetSpec(**d["dataset"])
        d["model"] = ModelSpec(**d["model"])
        d["optimizer"] = OptimizerSpec(**d["optimizer"])
        d["budget"] = BudgetSpec(**d["budget"])
        d["tasks"] = tuple(
            TaskSpec(**{**t, "metrics": tuple(MetricSpec(**m) for m in t["metrics"])}) for t in d["tasks"]
        )
        return cls(**d)

    def replace(self, overrides: Mapping[str, Any]) -> BenchmarkSpec:
        """A copy with dotted-path overrides, e.g. ``{"budget.epochs": 1}``."""
        data = self.to_dict()
        for path, value in overrides.items():
            *parents, leaf = path.split(".")
            node: Any = data
            for part in parents:
                if not isinstance(node, dict) or part not in node:
                    raise KeyError(f"spec {self.id} has no field {path!r}")
                node = node[part]
            # new keys are allowed only inside free-form ``kwargs`` mappings
            if not isinstance(node, dict) or (leaf not in node and parents[-1:] != ["kwargs"]):
                raise KeyError(f"spec {self.id} has no field {path!r}")
            node[leaf] = value
        return BenchmarkSpec.from_dict(data)


def parse_env_id(env_id: str) -> tuple[str | None, str, int | None]:
    """Split ``[namespace/]name[-vN]`` into its parts; a malformed id raises."""
    match = ENV_ID_RE.fullmatch(env_id)
    last = env_id.rsplit("-", 1)[-1] if "-" in env_id else ""
    bad_version = re.fullmatch(r"v[A-Za-z0-9]{0,2}", last) and not re.fullmatch(r"v\d+", last)
    if not match or bad_version:
        raise RegistrationError(
            f"malformed env id {env_id!r}: expected '[namespace/]name-vN' with an integer N, "
            "e.g. 'multimnist-hps-v1'"
        )
    version = match.group("version")
    return (
        match.group("namespace"),
        match.group("name"),
        int(version) if version else None,
    )


# --------------------------------------------------------------------------- the registry
registry: dict[str, BenchmarkSpec] = {}


def register(spec: BenchmarkSpec, *, override: bool = False) -> None:
    """Add a spec to the registry (and to Gymnasium's as ``mtlbench/<id>``)."""
    if spec.id in registry and not override:
        raise RegistrationError(f"env {spec.id!r} is already registered; pass override=True to replace it")
    registry[spec.id] = spec
    _register_with_gymnasium(spec)


def gymnasium_id(spec: BenchmarkSpec) -> str:
    """The id of ``spec`` in Gymnasium's registry: ``mtlbench/<id>`` (an id with its own namespace keeps it)."""
    return f"mtlbench/{spec.id}" if spec.namespace is None else spec.id


def _register_with_gymnasium(spec: BenchmarkSpec) -> None:
    import gymnasium

    gymnasium.register(
        id=gymnasium_id(spec),
        entry_point="mtlbench.registration:_gymnasium_entry_point",
        kwargs={"env_id": spec.id},
        disable_env_checker=True,
        order_enforce=False,
    )


def _gymnasium_entry_point(env_id: str, **kwargs: Any) -> MTLEnv:
    return make(env_id, **kwargs)


def spec(env_id: str) -> BenchmarkSpec:
    """Find the spec of ``env_id``; without a version, the latest registered version."""
    namespace, name, version = parse_env_id(env_id)
    prefix = f"{namespace}/" if namespace else ""
    versions = {s.version: s for s in registry.values() if s.name == name and s.namespace == namespace}
    if not versions:
        names = sorted({f"{prefix}{s.name}" for s in registry.values()})
        close = difflib.get_close_matches(f"{prefix}{name}", names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise NameNotFound(
            f"no environment named {prefix + name!r}.{hint} `mtlbench envs` lists the registered ones."
        )
    if version is None:
        return versions[max(versions)]
    if version not in versions:
        known = ", ".join(f"v{v}" for v in sorted(versions))
        raise VersionNotFound(f"environment {prefix + name!r} has no version v{version}; known: {known}")
    found = versions[version]
    if found.superseded_by:
        import warnings

        warnings.warn(
            f"{env_id} is superseded by {found.superseded_by}",
            DeprecationWarning,
            stacklevel=2,
        )
    return found


def make(env_id: str | BenchmarkSpec, *, policy: Any = None, **kwargs: Any) -> MTLEnv:
    """Build the environment ``env_id``.

    Runtime keyword arguments (``device``, ``data_root``, ``num_workers``, ``observe``,
    ``wrt``, ``level``, ``precision``) never change the protocol. ``overrides={"budget.epochs": 1}``
    changes protocol fields and marks the env unofficial. ``policy`` (a
    :class:`~mtlbench.policies.base.Policy`, instance or class) sets ``observe`` and ``wrt``
    to what it needs (:func:`mtlbench.protocol.env_kwargs_for`); an explicit ``observe``
    adds to its needs, an explicit ``wrt`` must agree with it.

    The env's ``spec`` is a Gymnasium ``EnvSpec`` (see the module docstring).
    """
    registered = env_id if isinstance(env_id, BenchmarkSpec) else spec(env_id)
    overrides = kwargs.pop("overrides", None) or {}
    if policy is not None:
        kwargs = _with_policy_needs(registered.id, policy, kwargs)
    unknown = set(kwargs) - RUNTIME_KWARGS
    if unknown:
        raise TypeError(
            f"make({registered.id!r}) got unknown arguments {sorted(unknown)}; runtime arguments are "
            f"{sorted(RUNTIME_KWARGS)}, protocol changes go in overrides={{'path.to.field': value}}"
        )
    official = not overrides
    effective = registered.replace(overrides) if overrides else registered
    module_name, _, attr = effective.entry_point.partition(":")
    env_cls = getattr(importlib.import_module(module_name), attr)
    env = env_cls(effective, official=official, **kwargs)
    env.spec = _gymnasium_spec(registered, kwargs, overrides)
    return env


def _with_policy_needs(env_id: str, policy: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with ``observe``, ``wrt`` and ``level`` set to what ``policy`` needs."""
    if not all(hasattr(policy, a) for a in ("needs", "level", "wrt")):
        raise TypeError(
            f"make({env_id!r}, policy=...) takes a mtlbench Policy (e.g. mtlbench.policies.make('mgda')), "
            f"got {policy!r}"
        )
    from mtlbench.protocol import env_kwargs_for

    needed = env_kwargs_for(policy)
    name = getattr(policy, "name", type(policy).__name__)
    if "wrt" in kwargs and kwargs["wrt"] != needed["wrt"]:
        raise ValueError(
            f"make({env_id!r}) got wrt={kwargs['wrt']!r}, but policy {name!r} needs "
            f"wrt={needed['wrt']!r}; drop the wrt argument"
        )
    observe = tuple(sorted(set(kwargs.get("observe", ())) | set(needed["observe"])))
    return {**kwargs, "observe": observe, "wrt": needed["wrt"], "level": needed["level"]}


def _gymnasium_spec(
    registered: BenchmarkSpec, kwargs: Mapping[str, Any], overrides: Mapping[str, Any]
) -> Any:
    """The ``EnvSpec`` ``gymnasium.make`` would give this env; ``gymnasium.make(it)`` rebuilds it.

    ``max_episode_steps`` is left to the env (its budget; see ``MTLEnv.spec``).
    """
    from gymnasium.envs.registration import EnvSpec

    # a spec passed to make() as an object (not from the registry) travels as itself
    env_id: str | BenchmarkSpec = registered.id if registry.get(registered.id) == registered else registered
    gym_kwargs = {"env_id": env_id, **kwargs}
    if overrides:
        gym_kwargs["overrides"] = dict(overrides)
    return EnvSpec(
        id=gymnasium_id(registered),
        entry_point="mtlbench.registration:_gymnasium_entry_point",
        nondeterministic=False,
        order_enforce=False,
        disable_env_checker=True,
        kwargs=gym_kwargs,
    )


def override_fields(spec: BenchmarkSpec) -> list[str]:
    """Every dotted path an override may name, e.g. ``budget.epochs``, ``dataset.kwargs.limit``."""

    def walk(node: Any, prefix: str) -> list[str]:
        if not isinstance(node, dict):
            return [prefix]
        paths = [prefix] if prefix else []
        for key, value in node.items():
            paths += walk(value, f"{prefix}.{key}" if prefix else str(key))
        return paths

    return sorted(walk(spec.to_dict(), ""))


def _type_name(value: Any) -> str:
    return "a mapping" if isinstance(value, Mapping) else f"{type(value).__name__}"


def check_overrides(spec: BenchmarkSpec, overrides: Mapping[str, Any]) -> None:
    """Raise :class:`OverrideError` for the first override that names no field of ``spec``
    (with the closest field names) or whose value's type differs from the field's.

    New keys are allowed inside the free-form ``kwargs`` mappings (as in
    :meth:`BenchmarkSpec.replace`); a field that is ``None`` accepts any value.
    """
    data = spec.to_dict()
    for path, value in overrides.items():
        try:
            spec.replace({path: value})
        except KeyError:
            close = difflib.get_close_matches(path, override_fields(spec), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise OverrideError(
                f"override {path}: {spec.id} has no field {path!r}.{hint} Fields are dotted "
                "paths into the env's spec, e.g. budget.epochs or optimizer.lr"
            ) from None
        node: Any = data
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None or value is None:
            continue
        number = (int, float)
        same = (
            (isinstance(node, bool) and isinstance(value, bool))
            or (
                isinstance(node, int)
                and not isinstance(node, bool)
                and isinstance(value, int)
                and not isinstance(value, bool)
            )
            or (isinstance(node, float) and isinstance(value, number) and not isinstance(value, bool))
            or (isinstance(node, str) and isinstance(value, str))
            or (isinstance(node, Mapping) and isinstance(value, Mapping))
            or (isinstance(node, (list, tuple)) and isinstance(value, (list, tuple)))
        )
        if not same:
            raise OverrideError(
                f"override {path}={value!r}: expected {_type_name(node)} like the registered "
                f"value {node!r}, got {_type_name(value)}"
            )


def pprint_registry(*, print_output: bool = True) -> str | None:
    """List the registered environments, grouped by dataset."""
    groups: dict[str, list[str]] = {}
    for s in sorted(registry.values(), key=lambda s: s.id):
        groups.setdefault(s.dataset.name, []).append(s.id)
    text = "\n".join(f"===== {name} =====\n" + "  ".join(ids) for name, ids in sorted(groups.items()))
    if print_output:
        print(text)
        return None
    return text

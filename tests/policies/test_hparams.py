"""``hparams()``: the constructor's arguments, recorded once by :class:`Policy` (issue 13).

Checked for every registered built-in, at its defaults and with other values: ``hparams()``
is the ``__init__`` signature bound to the arguments, defaults applied, in signature order,
and ``make(name, **policy.hparams())`` rebuilds a policy with the same hparams (the same JSON,
key order and types included). The result files store this dict, so it must not drift.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
import torch

from mtlbench import policies
from mtlbench.policies.base import Observation, Policy, check_integer
from mtlbench.policies.rlw import RLW

BUILTINS = sorted(policies.registry)

#: valid non-default arguments of every built-in (each one differs from its default)
NON_DEFAULT: dict[str, dict[str, Any]] = {
    "aligned-mtl": {"scale_mode": "median"},
    "aligned-mtl-ub": {"scale_mode": "rmse"},
    "cagrad": {"c": 0.5, "rescale": 2},
    "db-mtl": {"beta": 0.5, "beta_sigma": 0.1},
    "dualproj": {"reg_eps": 1e-3},
    "dwa": {"temperature": 1.0},
    "ew": {},
    "fairgrad": {"alpha": 0.5, "max_iter": 10, "tol": 1e-4},
    "famo": {"lr": 0.01, "weight_decay": 0.0},
    "gls": {},
    "graddrop": {"leak": 0.5},
    "gradnorm": {"alpha": 1.0, "lr": 0.01, "weight_heads": True},
    "gradvac": {"beta": 0.1, "eps": 1e-6},
    "imtl-g": {},
    "imtl-l": {"lr": 0.01},
    "mgda": {"normalization": "l2", "max_iter": 250, "tol": 1e-5},
    "mgda-ub": {"normalization": "loss+", "max_iter": 250, "tol": 1e-5},
    "moml": {"meta_lr": 1e-3, "step_size": 0.1},
    "nash-mtl": {"update_weights_every": 2, "max_norm": 0.5, "max_iter": 20, "tol": 1e-5},
    "pcgrad": {},
    "rgw": {"distribution": "dirichlet"},
    "rlw": {"distribution": "bernoulli"},
    "rotograd": {"lr": 0.01, "burn_in_period": 5},
    "stch": {"mu": 0.5, "warmup_epochs": 2},
    "upgrad": {"reg_eps": 1e-3},
    "uw": {"lr": 0.01},
}


def _bound(name: str, **kwargs: Any) -> dict[str, Any]:
    """The constructor's arguments as ``inspect`` binds them, defaults applied, ``self`` left out."""
    cls = policies.load(name)
    bound = inspect.signature(cls.__init__).bind(None, **kwargs)
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k != "self"}


def _as_stored(hparams: dict[str, Any]) -> str:
    """The dict as a result file would hold it: JSON, key order kept."""
    return json.dumps(hparams, allow_nan=False)


def test_the_table_covers_every_argument_of_every_builtin() -> None:
    assert sorted(NON_DEFAULT) == BUILTINS
    for name, kwargs in NON_DEFAULT.items():
        assert set(kwargs) == set(_bound(name)), name
        assert all(kwargs[k] != v for k, v in _bound(name).items()), name


@pytest.mark.parametrize("name", BUILTINS)
def test_hparams_are_the_bound_constructor_arguments_and_round_trip(name: str) -> None:
    for kwargs in ({}, NON_DEFAULT[name]):
        policy = policies.make(name, **kwargs)
        expected = _bound(name, **kwargs)
        assert _as_stored(policy.hparams()) == _as_stored(expected)
        again = policies.make(name, **policy.hparams())
        assert _as_stored(again.hparams()) == _as_stored(policy.hparams())


@pytest.mark.parametrize("name", BUILTINS)
def test_no_builtin_writes_its_own_hparams(name: str) -> None:
    # the rule lives in one place (Policy); only Composite, whose hparams are its parts', differs
    cls = policies.load(name)
    assert all("hparams" not in vars(klass) for klass in cls.__mro__ if klass is not Policy)


def test_composite_hparams_are_its_parts_prefixed_and_round_trip() -> None:
    policy = policies.make("rlw+cagrad", rlw__distribution="uniform", cagrad__c=1)
    assert _as_stored(policy.hparams()) == _as_stored(
        {"rlw__distribution": "uniform", "cagrad__c": 1.0, "cagrad__rescale": 1}
    )
    again = policies.make("rlw+cagrad", **policy.hparams())
    assert _as_stored(again.hparams()) == _as_stored(policy.hparams())


def test_the_validated_value_is_recorded_in_its_json_type() -> None:
    # c=1 is stored as 1.0 by check_positive, warmup_epochs=2.0 as 2: the result file holds those
    assert _as_stored(policies.make("cagrad", c=1).hparams()) == '{"c": 1.0, "rescale": 1}'
    assert _as_stored(policies.make("stch", warmup_epochs=2.0).hparams()) == '{"mu": 1.0, "warmup_epochs": 2}'
    assert policies.make("gradnorm", weight_heads=1).hparams()["weight_heads"] is True


def test_hparams_is_a_copy() -> None:
    policy = policies.make("rlw")
    policy.hparams()["distribution"] = "uniform"
    assert policy.hparams() == {"distribution": "normal"}


class _Scaled(RLW):
    """A subclass that adds an argument and passes the rest on (the outermost __init__ wins)."""

    name = "scaled-rlw"

    def __init__(self, scale: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)


class _OwnHparams(Policy):
    name = "own"

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.inverse = 1.0 / temperature

    def act(self, observation: Observation) -> torch.Tensor:
        return torch.ones_like(observation["losses"])

    def hparams(self) -> dict[str, Any]:
        return {"temperature": 1.0 / self.inverse}


class _TensorArgument(Policy):
    name = "tensor-arg"

    def __init__(self, weights: tuple[float, ...] = (1.0, 2.0), scale: int = 3) -> None:
        super().__init__()
        self.weights = torch.tensor(weights)  # not a JSON scalar: the argument is recorded
        self.scale = scale

    def act(self, observation: Observation) -> torch.Tensor:
        return self.weights


def test_a_subclass_records_its_own_arguments_not_its_parents() -> None:
    policy = _Scaled(scale=3, distribution="uniform")
    assert _as_stored(policy.hparams()) == '{"scale": 3.0, "distribution": "uniform"}'
    assert _Scaled(**policy.hparams()).hparams() == policy.hparams()
    assert _Scaled().hparams() == {"scale": 2.0}  # **kwargs empty: the parent's default is not listed


def test_a_subclass_override_of_hparams_wins() -> None:
    assert _OwnHparams(temperature=4.0).hparams() == {"temperature": 4.0}


def test_an_argument_stored_as_a_non_scalar_is_recorded_as_given() -> None:
    assert _TensorArgument(weights=(0.5, 0.5)).hparams() == {"weights": (0.5, 0.5), "scale": 3}


def test_check_integer_is_strict_by_default_and_names_the_parameter() -> None:
    assert check_integer("max_iter", 5, 1) == 5
    for bad in (0, True, 2.0, "3", None):
        with pytest.raises(ValueError, match=r"hyperparameter 'max_iter' must be an integer >= 1, got "):
            check_integer("max_iter", bad, 1)  # type: ignore[arg-type]


def test_check_integer_accepts_integral_floats_when_asked() -> None:
    value = check_integer("warmup_epochs", 4.0, 0, integral_floats=True)  # type: ignore[arg-type]
    assert value == 4 and type(value) is int
    for bad in (-1, 2.5, "3"):
        with pytest.raises(ValueError, match=r"hyperparameter 'warmup_epochs' must be an integer >= 0, got "):
            check_integer("warmup_epochs", bad, 0, integral_floats=True)  # type: ignore[arg-type]

"""Weighting methods as policies: one module per method, a registry and ``make``.

>>> from mtlbench import policies
>>> policies.make("rlw", distribution="dirichlet")      # doctest: +SKIP
>>> policies.make("rlw+cagrad")                          # loss-level + gradient-level

The registry maps a method id to ``"module:Class"``; modules are imported lazily so that
importing :mod:`mtlbench.policies` stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from typing import Any

from mtlbench.policies.base import (
    KNOWN_NEEDS,
    Action,
    GradientDirection,
    GradientWeights,
    Level,
    Observation,
    Policy,
    PolicyError,
)

#: method id -> "module:Class" (module relative to ``mtlbench.policies``).
registry: dict[str, str] = {
    # loss level
    "ew": "ew:EW",
    "rlw": "rlw:RLW",
    "uw": "uw:UW",
    "dwa": "dwa:DWA",
    "imtl-l": "imtl_l:IMTLL",
    "moml": "moml:MOML",
    "gls": "gls:GLS",
    "famo": "famo:FAMO",
    "stch": "stch:STCH",
    # gradient level
    "rgw": "rgw:RGW",
    "mgda": "mgda:MGDA",
    "mgda-ub": "mgda:MGDAUB",
    "gradnorm": "gradnorm:GradNorm",
    "pcgrad": "pcgrad:PCGrad",
    "graddrop": "graddrop:GradDrop",
    "imtl-g": "imtl_g:IMTLG",
    "gradvac": "gradvac:GradVac",
    "cagrad": "cagrad:CAGrad",
    "rotograd": "rotograd:RotoGrad",
    "nash-mtl": "nash_mtl:NashMTL",
    "aligned-mtl": "aligned_mtl:AlignedMTL",
    "aligned-mtl-ub": "aligned_mtl:AlignedMTLUB",
    "upgrad": "upgrad:UPGrad",
    "dualproj": "dualproj:DualProj",
    "fairgrad": "fairgrad:FairGrad",
    "db-mtl": "db_mtl:DBMTL",
}


class UnknownPolicy(KeyError):
    """No method with that id is registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0])


def register(name: str, target: str | type[Policy], *, override: bool = False) -> None:
    """Register a method id. ``target`` is ``"package.module:Class"`` or a Policy class."""
    if name in registry and not override:
        raise ValueError(f"policy {name!r} is already registered; pass override=True to replace it")
    if isinstance(target, type):
        target = f"{target.__module__}:{target.__qualname__}"
    registry[name] = target


def load(name: str) -> type[Policy]:
    """Import and return the Policy class registered under ``name``."""
    if name not in registry:
        close = difflib.get_close_matches(name, list(registry), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownPolicy(f"no policy named {name!r}.{hint} Known: {', '.join(sorted(registry))}")
    module_name, _, attr = registry[name].partition(":")
    # a bare name is a built-in module of this package; a top-level module (``__main__``, a
    # single-file submission) registered through ``register(name, cls)`` is imported as is
    if "." not in module_name and importlib.util.find_spec(f"{__name__}.{module_name}") is not None:
        module_name = f"{__name__}.{module_name}"
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise TypeError(f"{registry[name]!r} (policy {name!r}) is not a Policy subclass")
    return cls


def version_of(name: str) -> str:
    """The code version results of method ``name`` are stored under (``<name>@<version>``).

    A single method's is its class's ``version``. A composite ``"a+b"`` is ``"1"`` while
    both parts are at version 1, else ``"<a's version>+<b's version>"`` (e.g. ``rlw+mgda-ub``
    with MGDA's exact solver: ``"1+2"``), so a change in either part changes the composite's.
    """
    if "+" in name:
        parts = [version_of(part) for part in name.split("+")]
        return "1" if all(v == "1" for v in parts) else "+".join(parts)
    return load(name).version


def make(name: str, **hparams: Any) -> Policy:
    """Build a policy by id; ``"a+b"`` composes a loss-level and a gradient-level method.

    For a composite, hyperparameters are routed by prefix: ``make("rlw+cagrad",
    cagrad__c=0.4, rlw__distribution="uniform")``.
    """
    if "+" in name:
        from mtlbench.policies.composite import Composite

        loss_name, _, grad_name = name.partition("+")
        sub: dict[str, dict[str, Any]] = {loss_name: {}, grad_name: {}}
        for key, value in hparams.items():
            prefix, sep, rest = key.partition("__")
            if not sep or prefix not in sub:
                raise ValueError(
                    f"hyperparameter {key!r} for composite {name!r} must be prefixed with "
                    f"'{loss_name}__' or '{grad_name}__'"
                )
            sub[prefix][rest] = value
        return Composite(make(loss_name, **sub[loss_name]), make(grad_name, **sub[grad_name]))
    return load(name)(**hparams)


__all__ = [
    "KNOWN_NEEDS",
    "Action",
    "GradientDirection",
    "GradientWeights",
    "Level",
    "Observation",
    "Policy",
    "PolicyError",
    "UnknownPolicy",
    "load",
    "make",
    "register",
    "registry",
    "version_of",
]

"""mtlbench: a benchmark suite for multi-task learning weighting methods.

>>> import mtlbench
>>> env = mtlbench.make("multimnist-hps")                 # doctest: +SKIP
>>> policy = mtlbench.policies.make("rlw")                 # doctest: +SKIP
>>> result = mtlbench.train(env, policy, seed=0)           # doctest: +SKIP

Random weighting (RLW / RGW; Lin et al., TMLR 2022) is the litmus test: a loss-level
method is compared with RLW and a gradient-level one with RGW, paired by seed.

Importing the package registers every built-in env, here and with Gymnasium as
``mtlbench/<id>`` (docs/gymnasium.md), and builds nothing (no data, no model):

>>> import gymnasium
>>> env = gymnasium.make("mtlbench/multimnist-hps-v1")     # doctest: +SKIP
>>> env = mtlbench.make("multimnist-hps", policy=policy)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mtlbench import policies, wrappers
from mtlbench._version import __version__
from mtlbench.registration import (
    BenchmarkSpec,
    make,
    pprint_registry,
    register,
    registry,
    spec,
)

if TYPE_CHECKING:
    from mtlbench.harness.results import RunResult


def train(env: Any, policy: Any, seed: int, **kwargs: Any) -> RunResult:
    """Run one episode (one training run) of ``policy`` on ``env``; see :func:`mtlbench.harness.train`."""
    from mtlbench.harness.train import train as _train

    return _train(env, policy, seed, **kwargs)


__all__ = [
    "BenchmarkSpec",
    "__version__",
    "make",
    "policies",
    "pprint_registry",
    "register",
    "registry",
    "spec",
    "train",
    "wrappers",
]

# Last, once the names above exist: register the built-in envs (each family module only
# declares specs; data and models are built by make()).
import mtlbench.envs  # noqa: E402, F401

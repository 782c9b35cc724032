"""The shapes an env's spaces need, read from its spec without training anything.

:func:`observation_space` builds the ``Dict`` of ``Box`` es of the observed keys
(:mod:`mtlbench.protocol`); the Jacobian's width (:func:`jacobian_width`) is the number of
shared parameters, or of representation entries in a full batch, both found by building the
model on the meta device (no memory, no RNG draws on the real devices).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from mtlbench.data.base import MTLDataset
from mtlbench.models import MTLModel

__all__ = ["direction_dim", "jacobian_width", "meta_representation", "observation_space"]


def observation_space(num_tasks: int, observe: frozenset[str], width: Callable[[], int]) -> gym.spaces.Dict:
    """The spaces of the keys in ``observe``; ``width()`` (the Jacobian's columns) is called only if needed."""
    t = num_tasks
    spaces: dict[str, gym.spaces.Space] = {
        "losses": gym.spaces.Box(-np.inf, np.inf, shape=(t,), dtype=np.float32),
        "step": gym.spaces.Box(0, np.iinfo(np.int64).max, shape=(), dtype=np.int64),
        "epoch": gym.spaces.Box(0, np.iinfo(np.int64).max, shape=(), dtype=np.int64),
    }
    if "val_losses" in observe:
        spaces["val_losses"] = gym.spaces.Box(-np.inf, np.inf, shape=(t,), dtype=np.float32)
    if "gramian" in observe:
        spaces["gramian"] = gym.spaces.Box(-np.inf, np.inf, shape=(t, t), dtype=np.float32)
    if observe & {"jacobian", "val_jacobian"}:
        d = width()
        for key in ("jacobian", "val_jacobian"):
            if key in observe:
                spaces[key] = gym.spaces.Box(-np.inf, np.inf, shape=(t, d), dtype=np.float32)
    return gym.spaces.Dict(spaces)


def direction_dim(space: gym.spaces.Dict) -> int | None:
    """Length of a :class:`~mtlbench.protocol.GradientDirection`: the Jacobian's width, when observed."""
    for key in ("jacobian", "val_jacobian"):
        if key in space.spaces:
            return int(space[key].shape[1])  # type: ignore[index]
    return None


def meta_representation(train: MTLDataset, build_model: Callable[[], MTLModel]) -> list[torch.Tensor]:
    """The representation of a one-example batch, computed on the meta device (no memory)."""
    x, _ = next(train.batches(1, shuffle=False, generator=None, drop_last=False, device=torch.device("cpu")))
    x = _to_meta(x)
    with torch.device("meta"):
        model = build_model()
    rep = model.encode(x)
    return list(rep.values()) if isinstance(rep, Mapping) else [rep]


def jacobian_width(wrt: str, train: MTLDataset, build_model: Callable[[], MTLModel], batch_size: int) -> int:
    """Columns of the Jacobian: shared parameters, or representation entries of a full batch."""
    if wrt == "parameters":
        with torch.device("meta"):
            return sum(p.numel() for p in build_model().shared_parameters())
    per_example = sum(r[0].numel() for r in meta_representation(train, build_model))
    return per_example * batch_size


def _to_meta(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return torch.empty(x.shape, dtype=x.dtype, device="meta")
    if isinstance(x, Mapping):
        return {k: _to_meta(v) for k, v in x.items()}
    return x

"""Backbones and multi-task architectures.

An env's :class:`~mtlbench.registration.ModelSpec` names one architecture and one backbone.
A *backbone factory* ``f(tasks, **kwargs) -> (encoder, {task: head})`` builds the shared
encoder and one head per task; an *architecture builder* ``a(factory, tasks, **kwargs) ->
MTLModel`` arranges them (HPS; Cross-stitch, MTAN, NDDR-CNN and MMoE share or mix the
encoder's stages differently). Both registries map names to ``"module:attr"`` strings and
import lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from mtlbench.models.base import HPS, MTLModel

BACKBONES: dict[str, str] = {
    "lenet": "mtlbench.models.lenet:lenet",
    "mpnn": "mtlbench.models.mpnn:mpnn",
    "small_cnn": "mtlbench.models.small_cnn:small_cnn",
    "mlp": "mtlbench.models.mlp:mlp",
    "resnet18": "mtlbench.models.resnet:resnet18",
    "mbert": "mtlbench.models.bert:mbert",
    "resnet50_dilated_aspp": "mtlbench.models.resnet_dilated:resnet50_dilated_aspp",
    "resnet18_dilated_aspp": "mtlbench.models.resnet_dilated:resnet18_dilated_aspp",
    "tiny_resnet_dilated_aspp": "mtlbench.models.resnet_dilated:tiny_resnet_dilated_aspp",
}

ARCHITECTURES: dict[str, str] = {
    "hps": "mtlbench.models.architectures:hps",
    "cross_stitch": "mtlbench.models.cross_stitch:cross_stitch",
    "mtan": "mtlbench.models.mtan:mtan",
    "nddr": "mtlbench.models.nddr:nddr",
    "mmoe": "mtlbench.models.mmoe:mmoe",
}


def _load(table: dict[str, str], kind: str, name: str) -> Callable[..., Any]:
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(sorted(table))}")
    module, _, attr = table[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def build_model(architecture: str, backbone: str, tasks: Sequence[Any], **kwargs: Any) -> MTLModel:
    """Build ``architecture`` around ``backbone`` for ``tasks`` (a sequence of TaskSpec)."""
    factory = _load(BACKBONES, "backbone", backbone)
    arch = _load(ARCHITECTURES, "architecture", architecture)
    return arch(factory, tasks, **kwargs)


__all__ = ["ARCHITECTURES", "BACKBONES", "HPS", "MTLModel", "build_model"]

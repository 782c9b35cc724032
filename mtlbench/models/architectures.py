"""Architecture builders: arrange a backbone's encoder and heads into an :class:`MTLModel`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mtlbench.models.base import HPS, MTLModel


def hps(
    factory: Callable[..., Any],
    tasks: Sequence[Any],
    *,
    multi_input: bool = False,
    **kwargs: Any,
) -> MTLModel:
    """Hard parameter sharing (Caruana 1993): the backbone's encoder shared, one head per task."""
    encoder, heads = factory(tasks, **kwargs)
    return HPS(encoder, heads, multi_input=multi_input)

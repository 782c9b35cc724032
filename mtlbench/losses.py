"""Task losses, named in the env spec (part of the frozen protocol).

Conventions follow MTAN (Liu et al. 2019) and LibMTL for the dense tasks: segmentation
cross-entropy ignores label -1; depth L1 and surface-normal cosine losses are averaged over
valid pixels only (depth > 0; normal target not all zero).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(pred: torch.Tensor, target: torch.Tensor, ignore_index: int = -1) -> torch.Tensor:
    """Mean cross-entropy over non-ignored targets; ``pred`` is (B, C, ...) logits."""
    return F.cross_entropy(pred, target.long(), ignore_index=ignore_index)


def token_cross_entropy(pred: torch.Tensor, target: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Token tagging: ``pred`` (B, L, C) logits, ``target`` (B, L) with ``ignore_index`` padding."""
    return F.cross_entropy(pred.flatten(0, 1), target.flatten().long(), ignore_index=ignore_index)


def binary_cross_entropy(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary attribute: ``pred`` (B,) or (B, 1) logits, ``target`` in {0, 1}."""
    return F.binary_cross_entropy_with_logits(pred.reshape(-1), target.reshape(-1).to(pred.dtype))


def depth_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 over pixels with a valid (positive) depth."""
    mask = (target > 0).to(pred.dtype)
    return ((pred - target).abs() * mask).sum() / mask.sum().clamp_min(1.0)


def normal_cosine(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity over pixels whose target normal is not all zero (channel dim 1)."""
    mask = (target.abs().sum(dim=1) > 0).to(pred.dtype)
    cos = F.cosine_similarity(F.normalize(pred, dim=1), target, dim=1)
    return ((1 - cos) * mask).sum() / mask.sum().clamp_min(1.0)


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(pred.reshape(target.shape), target)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred.reshape(target.shape), target)


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "cross_entropy": cross_entropy,
    "token_cross_entropy": token_cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "depth_l1": depth_l1,
    "normal_cosine": normal_cosine,
    "l1": l1,
    "mse": mse,
}


def get_loss(name: str, **kwargs: Any) -> LossFn:
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}")
    fn = LOSSES[name]
    return (lambda p, t: fn(p, t, **kwargs)) if kwargs else fn

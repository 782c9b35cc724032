"""The optimisers and learning-rate schedulers a benchmark spec can name (``spec.optimizer``)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["make_optimizer", "make_scheduler"]


def make_optimizer(name: str, params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """``"adam"`` (torch defaults) or ``"sgd"`` (momentum 0.9)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=0.9)
    raise ValueError(f"unknown optimizer {name!r}; expected 'adam' or 'sgd'")


def make_scheduler(name: str | None, optimizer: torch.optim.Optimizer, kwargs: dict[str, Any]) -> Any:
    """No scheduler (``None``) or ``"step"`` (``torch.optim.lr_scheduler.StepLR`` with ``kwargs``)."""
    if name is None:
        return None
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, **kwargs)
    raise ValueError(f"unknown scheduler {name!r}; expected None or 'step'")

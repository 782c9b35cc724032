"""ResNet-18 encoder with one linear head per task (CelebA, Office-31, Office-Home).

The encoder is torchvision's ResNet-18 (He et al., CVPR 2016) without its classifier:
``conv1 .. layer4 -> global average pool -> flatten``, a 512-d representation. Lin et al.
(TMLR 2022, Appendix D.2 / D.3) put "a fully connected layer" per task on top of it:

* CelebA: ResNet-18 (trained from scratch) and a 2-way linear head per attribute.
* Office-31 / Office-Home: ImageNet-pretrained ResNet-18 and a linear head per domain.
  LibMTL's Office example, which produced the paper's numbers, appends a shared hidden
  layer ``Linear(512, 512) - BatchNorm1d - ReLU - Dropout(0.5)`` to the encoder (weights
  ~ N(0, 0.005), bias 0.1); ``hidden_dim=512`` reproduces it, ``hidden_dim=None`` omits it.

Pretrained ImageNet weights are read only from the local torch hub cache
(``$TORCH_HOME/hub/checkpoints``); nothing is downloaded at run time. When the file is
absent, building the model fails with a message that says how to fetch it once, or to pass
``pretrained=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["ResNetEncoder", "pretrained_weights_path", "resnet18"]


class ResNetEncoder(nn.Module):
    """ResNet-18 trunk + global average pooling (+ optional shared hidden layer)."""

    def __init__(
        self,
        *,
        pretrained: bool = False,
        hidden_dim: int | None = None,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        from torchvision.models import resnet18 as tv_resnet18

        net = tv_resnet18(weights=None)
        if pretrained:
            net.load_state_dict(_load_pretrained_state())
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layers = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = 512
        self.hidden: nn.Module | None = None
        if hidden_dim is not None:
            linear = nn.Linear(512, hidden_dim)
            # LibMTL's Office initialisation of the hidden layer
            nn.init.normal_(linear.weight, 0.0, 0.005)
            nn.init.constant_(linear.bias, 0.1)
            self.hidden = nn.Sequential(linear, nn.BatchNorm1d(hidden_dim), nn.ReLU(), nn.Dropout(dropout))
            self.out_dim = hidden_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.flatten(self.pool(self.layers(self.stem(x))), 1)
        return z if self.hidden is None else self.hidden(z)


def pretrained_weights_path() -> Path:
    """Where torchvision keeps the ImageNet ResNet-18 checkpoint (IMAGENET1K_V1)."""
    from torchvision.models import ResNet18_Weights

    url = ResNet18_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _load_pretrained_state() -> dict[str, torch.Tensor]:
    path = pretrained_weights_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet ResNet-18 weights are not in the local torch hub cache ({path}); mtlbench "
            "never downloads at run time. Fetch them once on a machine with network access: "
            "python -c \"import torchvision; torchvision.models.resnet18(weights='IMAGENET1K_V1')\" "
            "(copy the file to that path if needed), or pass "
            "overrides={'model.kwargs.pretrained': False}."
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def resnet18(
    tasks: Sequence[Any],
    *,
    num_classes: int,
    pretrained: bool = False,
    hidden_dim: int | None = None,
    dropout: float = 0.5,
) -> tuple[nn.Module, dict[str, nn.Module]]:
    """Backbone factory: the shared ResNet-18 encoder and a ``Linear(d, num_classes)`` head per task."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if hidden_dim is not None and hidden_dim < 1:
        raise ValueError(f"hidden_dim must be None or >= 1, got {hidden_dim}")
    encoder = ResNetEncoder(pretrained=pretrained, hidden_dim=hidden_dim, dropout=dropout)
    heads: dict[str, nn.Module] = {t.name: nn.Linear(encoder.out_dim, num_classes) for t in tasks}
    return encoder, heads

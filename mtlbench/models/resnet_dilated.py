"""Dilated ResNet encoders with DeepLabV3-style ASPP heads, for the dense-prediction envs.

The NYUv2 / CityScapes protocol of Lin et al. (TMLR 2022, Section 5.1 and Appendix D.1),
after MTAN (Liu et al., CVPR 2019) and LibMTL: a ResNet-50 with dilated convolutions
(Yu, Koltun & Funkhouser, "Dilated Residual Networks", CVPR 2017) as the shared encoder,
output stride 8 (the strides of ``layer3`` / ``layer4`` replaced by dilation 2 / 4,
torchvision's ``replace_stride_with_dilation=[False, True, True]``), and one Atrous Spatial
Pyramid Pooling head per task (Chen et al., "Encoder-Decoder with Atrous Separable
Convolution", ECCV 2018): ASPP with rates 12 / 24 / 36, a 3x3 conv-BN-ReLU and a 1x1
conv to the task's channels, upsampled bilinearly (``align_corners=True``) to the image
size. Output channels: ``metric_kwargs["num_classes"]`` for segmentation, 1 for depth, 3
for surface normals (normalised by the loss and the metric, not by the head).

Backbone factories (``factory(tasks, **kwargs) -> (encoder, {task: head})``):

* :func:`resnet50_dilated_aspp`: the registered protocol;
* :func:`resnet18_dilated_aspp`: the same on ResNet-18 (dilated by hand: torchvision's
  BasicBlock refuses dilation), for cheaper experiments;
* :func:`tiny_resnet_dilated_aspp`: a few thousand parameters, random init only, for tests
  and smoke runs.

Every encoder is a :class:`StagedEncoder` (``stem`` then ``stages``), the protocol that the
stage-mixing architectures (Cross-stitch, MTAN, NDDR-CNN) build on.

Pretrained weights are never downloaded here: ``pretrained="IMAGENET1K_V1"`` (or ``True``)
loads torchvision's ImageNet weights from the torch hub cache and raises
:class:`PretrainedWeightsNotFound`, which says how to fetch them, when they are not cached.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet as tv_resnet
from torchvision.models.segmentation.deeplabv3 import ASPP

__all__ = [
    "DeepLabHead",
    "PretrainedWeightsNotFound",
    "StagedEncoder",
    "encode_linked",
    "head_channels",
    "require_staged",
    "resnet18_dilated_aspp",
    "resnet50_dilated_aspp",
    "staged_copies",
    "tiny_resnet_dilated_aspp",
]

OUTPUT_STRIDE = 8
ATROUS_RATES = (12, 24, 36)


class PretrainedWeightsNotFound(FileNotFoundError):
    """ImageNet weights were asked for but are not in the torch hub cache (no downloads here)."""


# ----------------------------------------------------------------------------- protocol
class StagedEncoder(nn.Module):
    """An encoder that architectures can cut into stages: ``stem`` then each of ``stages``.

    ``stages`` is an ``nn.ModuleList`` of ``nn.Sequential`` blocks; ``stage_channels[i]`` is
    the channel count of stage ``i``'s output, and every block of a stage after the first
    keeps it (true of ResNets). :meth:`make_block` builds a residual block of the encoder's
    kind from ``in_channels`` to ``out_channels`` (MTAN's shared attention encoders).
    ``forward`` is the plain composition, so an HPS model uses the encoder as is.
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: Sequence[nn.Sequential],
        stage_channels: Sequence[int],
        block: type[nn.Module] = tv_resnet.BasicBlock,
    ) -> None:
        super().__init__()
        if len(stages) != len(stage_channels):
            raise ValueError(f"{len(stages)} stages but {len(stage_channels)} channel counts")
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.stage_channels = tuple(int(c) for c in stage_channels)
        self.block = block

    @property
    def out_channels(self) -> int:
        return self.stage_channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def make_block(self, in_channels: int, out_channels: int) -> nn.Module:
        """A residual block ``in_channels -> out_channels`` (stride 1) of the encoder's block type."""
        expansion = getattr(self.block, "expansion", 1)
        if out_channels % expansion:
            raise ValueError(f"out_channels {out_channels} is not a multiple of {expansion}")
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False), nn.BatchNorm2d(out_channels)
        )
        return self.block(in_channels, out_channels // expansion, downsample=downsample)


def require_staged(encoder: nn.Module, architecture: str) -> StagedEncoder:
    """Return ``encoder`` if it follows the :class:`StagedEncoder` protocol, else a clear error."""
    for attr in ("stem", "stages", "stage_channels"):
        if not hasattr(encoder, attr):
            raise TypeError(
                f"architecture {architecture!r} mixes the encoder stage by stage and needs a staged "
                f"encoder (.stem, .stages, .stage_channels; see mtlbench.models.resnet_dilated."
                f"StagedEncoder); the backbone gave {type(encoder).__name__}, which has no .{attr}"
            )
    return encoder  # type: ignore[return-value]


def staged_copies(
    factory: Callable[..., Any], tasks: Sequence[Any], architecture: str, **kwargs: Any
) -> tuple[list[StagedEncoder], Mapping[str, nn.Module]]:
    """One staged encoder per task, each from its own ``factory`` call; the heads of the first.

    With pretrained weights every copy starts from them; from random init each copy is
    initialised independently. For the architectures that mix per-task encoders stage by
    stage (Cross-stitch, NDDR-CNN), which need at least two tasks.
    """
    if len(tasks) < 2:
        raise ValueError(f"architecture {architecture!r} needs at least two tasks (one encoder copy each)")
    encoders, heads = [], None
    for _ in tasks:
        encoder, task_heads = factory(tasks, **kwargs)
        encoders.append(require_staged(encoder, architecture))
        heads = task_heads if heads is None else heads
    assert heads is not None
    return encoders, heads


def encode_linked(
    encoders: Sequence[StagedEncoder], links: Sequence[nn.Module], x: Any, architecture: str
) -> list[torch.Tensor]:
    """Run per-task encoders in lockstep, ``links[i]`` mixing their features after stage ``i``."""
    if isinstance(x, Mapping):
        raise TypeError(f"architecture {architecture!r} takes one input shared by all tasks")
    feats = [enc.stem(x) for enc in encoders]
    for i, link in enumerate(links):
        feats = link([enc.stages[i](f) for enc, f in zip(encoders, feats, strict=True)])
    return feats


# ----------------------------------------------------------------------------- heads
class DeepLabHead(nn.Module):
    """ASPP (rates 12/24/36) - 3x3 conv - BN - ReLU - 1x1 conv, upsampled to the image size.

    ``image_size`` (H, W) fixes the output size (the protocol's input size); with ``None``
    the output is the feature map times ``output_stride``, which is the input size whenever
    H and W are multiples of 8.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        image_size: Sequence[int] | None = None,
        aspp_channels: int = 256,
        atrous_rates: Sequence[int] = ATROUS_RATES,
        output_stride: int = OUTPUT_STRIDE,
    ) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, list(atrous_rates), aspp_channels)
        self.conv = nn.Sequential(
            nn.Conv2d(aspp_channels, aspp_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(aspp_channels),
            nn.ReLU(),
        )
        self.classifier = nn.Conv2d(aspp_channels, out_channels, 1)
        self.image_size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
        self.output_stride = output_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.image_size or (x.shape[-2] * self.output_stride, x.shape[-1] * self.output_stride)
        y = self.classifier(self.conv(self.aspp(x)))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=True)


def head_channels(task: Any) -> int:
    """Output channels of a dense task's head, from its TaskSpec."""
    kind = getattr(task, "type", None)
    if kind == "segmentation":
        kwargs = dict(getattr(task, "metric_kwargs", {}) or {})
        if "num_classes" not in kwargs:
            raise ValueError(f"segmentation task {task.name!r} needs metric_kwargs['num_classes']")
        return int(kwargs["num_classes"])
    if kind == "depth":
        return 1
    if kind == "normal":
        return 3
    raise ValueError(
        f"task {getattr(task, 'name', task)!r} has type {kind!r}; the dilated-ResNet backbones "
        "have heads for 'segmentation', 'depth' and 'normal'"
    )


def _heads(tasks: Sequence[Any], in_channels: int, **head_kwargs: Any) -> dict[str, nn.Module]:
    return {t.name: DeepLabHead(in_channels, head_channels(t), **head_kwargs) for t in tasks}


# ----------------------------------------------------------------------------- weights
_WEIGHTS: dict[str, Callable[[], Any]] = {
    "resnet50": lambda: tv_resnet.ResNet50_Weights,
    "resnet18": lambda: tv_resnet.ResNet18_Weights,
}


def _weights_enum(arch: str, pretrained: bool | str) -> Any | None:
    if pretrained is False or pretrained is None:
        return None
    enum = _WEIGHTS[arch]()
    name = "IMAGENET1K_V1" if pretrained is True else str(pretrained)
    try:
        return enum[name]
    except KeyError:
        known = ", ".join(w.name for w in enum)
        raise ValueError(f"unknown {arch} weights {name!r}; known: {known}") from None


def _cached_state_dict(weights: Any, arch: str) -> dict[str, torch.Tensor]:
    """torchvision weights from the torch hub cache; never downloads."""
    filename = os.path.basename(urlparse(weights.url).path)
    path = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if not path.is_file():
        raise PretrainedWeightsNotFound(
            f"ImageNet weights {arch} {weights.name} are not cached at {path}, and mtlbench does not "
            f'download at run time. Fetch them once with `python -c "import torchvision; '
            f"torchvision.models.{arch}(weights='{weights.name}')\"` (or copy {filename} from "
            f"{weights.url} to that path), or pass overrides={{'model.kwargs.pretrained': False}} "
            "for an (unofficial) run from random init."
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def _pretrained_state(arch: str, pretrained: bool | str) -> dict[str, torch.Tensor] | None:
    """The cached state dict asked for by ``pretrained`` (None for random init); fails before any build."""
    weights = _weights_enum(arch, pretrained)
    return None if weights is None else _cached_state_dict(weights, arch)


def _load(model: nn.Module, state: dict[str, torch.Tensor] | None) -> None:
    if state is None or any(p.is_meta for p in model.parameters()):
        return  # random init, or a shape-only model (the env sizes its observation space this way)
    model.load_state_dict(state)


# ----------------------------------------------------------------------------- encoders
def _dilate(stage: nn.Module, dilation: int) -> None:
    """Remove the stride of ``stage`` and dilate its 3x3 convs (Yu et al. 2017; as in MTAN/LibMTL).

    A strided conv becomes stride 1; a strided 3x3 conv gets dilation ``dilation // 2`` (it
    sees the previous resolution), every other 3x3 conv ``dilation``.
    """
    for m in stage.modules():
        if not isinstance(m, nn.Conv2d):
            continue
        if m.stride == (2, 2):
            m.stride = (1, 1)
            if m.kernel_size == (3, 3):
                d = max(dilation // 2, 1)
                m.dilation, m.padding = (d, d), (d, d)
        elif m.kernel_size == (3, 3):
            m.dilation, m.padding = (dilation, dilation), (dilation, dilation)


def _from_torchvision(net: tv_resnet.ResNet, block: type[nn.Module]) -> StagedEncoder:
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    width = 4 if block is tv_resnet.Bottleneck else 1
    channels = [64 * width, 128 * width, 256 * width, 512 * width]
    return StagedEncoder(stem, stages, channels, block)


def _head_kwargs(
    image_size: Sequence[int] | None, aspp_channels: int, atrous_rates: Sequence[int]
) -> dict[str, Any]:
    return {"image_size": image_size, "aspp_channels": aspp_channels, "atrous_rates": tuple(atrous_rates)}


def resnet50_dilated_aspp(
    tasks: Sequence[Any],
    *,
    pretrained: bool | str = False,
    image_size: Sequence[int] | None = None,
    aspp_channels: int = 256,
    atrous_rates: Sequence[int] = ATROUS_RATES,
) -> tuple[StagedEncoder, dict[str, nn.Module]]:
    """Dilated ResNet-50 (output stride 8) encoder and one ASPP head per task (2048 input channels).

    ``pretrained``: ``False`` (random init), ``True`` / ``"IMAGENET1K_V1"`` (torchvision's
    ImageNet weights, the ones MTAN and LibMTL start from) or another torchvision weights
    name; loaded from the torch hub cache only.
    """
    state = _pretrained_state("resnet50", pretrained)
    net = tv_resnet.resnet50(weights=None, replace_stride_with_dilation=[False, True, True])
    _load(net, state)
    encoder = _from_torchvision(net, tv_resnet.Bottleneck)
    return encoder, _heads(
        tasks, encoder.out_channels, **_head_kwargs(image_size, aspp_channels, atrous_rates)
    )


def resnet18_dilated_aspp(
    tasks: Sequence[Any],
    *,
    pretrained: bool | str = False,
    image_size: Sequence[int] | None = None,
    aspp_channels: int = 256,
    atrous_rates: Sequence[int] = ATROUS_RATES,
) -> tuple[StagedEncoder, dict[str, nn.Module]]:
    """Dilated ResNet-18 (output stride 8) encoder and one ASPP head per task (512 input channels)."""
    state = _pretrained_state("resnet18", pretrained)
    net = tv_resnet.resnet18(weights=None)
    _load(net, state)
    _dilate(net.layer3, 2)
    _dilate(net.layer4, 4)
    encoder = _from_torchvision(net, tv_resnet.BasicBlock)
    return encoder, _heads(
        tasks, encoder.out_channels, **_head_kwargs(image_size, aspp_channels, atrous_rates)
    )


def tiny_resnet_dilated_aspp(
    tasks: Sequence[Any],
    *,
    pretrained: bool | str = False,
    width: int = 4,
    blocks_per_stage: int = 2,
    image_size: Sequence[int] | None = None,
    aspp_channels: int = 8,
    atrous_rates: Sequence[int] = (1, 2, 3),
) -> tuple[StagedEncoder, dict[str, nn.Module]]:
    """A tiny dilated ResNet (BasicBlocks, widths ``width * (1, 2, 4, 8)``, output stride 8).

    For tests and smoke runs: random init only (``pretrained`` must be false).
    """
    if pretrained:
        raise ValueError("tiny_resnet_dilated_aspp has no pretrained weights; pass pretrained=False")
    if blocks_per_stage < 1:
        raise ValueError(f"blocks_per_stage must be >= 1, got {blocks_per_stage}")
    stem = nn.Sequential(
        nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    channels = [width, 2 * width, 4 * width, 8 * width]
    stages, in_ch = [], width
    for i, ch in enumerate(channels):
        stride = 1 if i == 0 else 2
        down = None
        if stride != 1 or in_ch != ch:
            down = nn.Sequential(nn.Conv2d(in_ch, ch, 1, stride=stride, bias=False), nn.BatchNorm2d(ch))
        blocks = [tv_resnet.BasicBlock(in_ch, ch, stride=stride, downsample=down)]
        blocks += [tv_resnet.BasicBlock(ch, ch) for _ in range(blocks_per_stage - 1)]
        stages.append(nn.Sequential(*blocks))
        in_ch = ch
    _dilate(stages[2], 2)
    _dilate(stages[3], 4)
    encoder = StagedEncoder(stem, stages, channels, tv_resnet.BasicBlock)
    return encoder, _heads(
        tasks, encoder.out_channels, **_head_kwargs(image_size, aspp_channels, atrous_rates)
    )

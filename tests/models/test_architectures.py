"""Architectures (HPS, Cross-stitch, MTAN, NDDR-CNN, MMoE) on a tiny dilated ResNet, and the backbones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from mtlbench.envs.nyuv2 import TASKS
from mtlbench.models import build_model
from mtlbench.models.base import MTLModel
from mtlbench.models.cross_stitch import CrossStitch
from mtlbench.models.mmoe import MMoE
from mtlbench.models.nddr import NDDR
from mtlbench.models.resnet_dilated import (
    PretrainedWeightsNotFound,
    StagedEncoder,
    head_channels,
    resnet18_dilated_aspp,
    resnet50_dilated_aspp,
    tiny_resnet_dilated_aspp,
)

ARCHS = ("hps", "cross_stitch", "mtan", "nddr", "mmoe")
SIZE = (32, 48)
TINY = "tiny_resnet_dilated_aspp"


def _build(arch: str, **kwargs) -> MTLModel:
    if arch == "mmoe":
        kwargs.setdefault("input_shape", (3, *SIZE))
        kwargs.setdefault("num_experts", 2)
        kwargs.setdefault("gate_pool", 4)
    torch.manual_seed(0)
    return build_model(arch, TINY, TASKS, image_size=SIZE, **kwargs)


def _batch() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, *SIZE, generator=g)
    normal = torch.nn.functional.normalize(torch.randn(2, 3, *SIZE, generator=g), dim=1)
    return x, {
        "segmentation": torch.randint(-1, 13, (2, *SIZE), generator=g),
        "depth": torch.rand(2, 1, *SIZE, generator=g) + 0.5,
        "normal": normal,
    }


def _losses(model: MTLModel, x, y) -> dict[str, torch.Tensor]:
    from mtlbench.losses import get_loss

    out = model.decode(model.encode(x))
    return {t.name: get_loss(t.loss)(out[t.name], y[t.name]) for t in TASKS}


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_backward_and_output_shapes(arch: str) -> None:
    model = _build(arch)
    x, y = _batch()
    rep = model.encode(x)
    out = model.decode(rep)
    assert out["segmentation"].shape == (2, 13, *SIZE)
    assert out["depth"].shape == (2, 1, *SIZE)
    assert out["normal"].shape == (2, 3, *SIZE)
    assert model.shared_representation == (arch == "hps")
    if arch != "hps":
        assert set(rep) == {"segmentation", "depth", "normal"}
    losses = _losses(model, x, y)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("arch", ARCHS)
def test_decode_applies_adapters_before_the_heads(arch: str) -> None:
    model = _build(arch).eval()
    x, _ = _batch()
    rep = model.encode(x)
    doubled = torch.nn.ModuleList(_Scale(2.0) for _ in TASKS)
    with torch.no_grad():
        out = model.decode(rep, doubled)
        for t in TASKS:
            z = rep[t.name] if isinstance(rep, dict) else rep
            torch.testing.assert_close(out[t.name], model.heads[t.name](2.0 * z))
    if arch != "hps":  # no shared representation: a bare tensor is refused
        with pytest.raises(TypeError, match="mapping"):
            model.decode(next(iter(rep.values())))


class _Scale(torch.nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.factor * z


@pytest.mark.parametrize("arch", ARCHS)
def test_parameter_split_is_a_partition(arch: str) -> None:
    model = _build(arch)
    shared = {id(p) for p in model.shared_parameters()}
    task = {id(p) for p in model.task_parameters()}
    everything = {id(p) for p in model.parameters()}
    assert shared and task
    assert not shared & task
    assert shared | task == everything


@pytest.mark.parametrize("arch", ARCHS)
def test_shared_parameters_are_those_every_task_reaches(arch: str) -> None:
    """The documented rule: shared = the parameters that every task's gradient flows into."""
    model = _build(arch)
    x, y = _batch()
    losses = _losses(model, x, y)
    params = list(model.parameters())
    reached = []
    for loss in losses.values():
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        reached.append({id(p) for p, g in zip(params, grads, strict=True) if g is not None})
    assert set.intersection(*reached) == {id(p) for p in model.shared_parameters()}


def test_cross_stitch_starts_near_identity() -> None:
    model = _build("cross_stitch")
    assert isinstance(model, CrossStitch)
    assert len(model.units) == len(model.encoders[0].stages)
    for unit in model.units:
        w = unit.weight.detach()
        assert torch.allclose(w.diagonal(), torch.full((3,), 0.9))
        assert torch.allclose(w.sum(dim=1), torch.ones(3))
        assert (w - torch.diag(w.diagonal())).abs().max() <= 0.1
    model = _build("cross_stitch", cross_stitch_init=1.0)
    assert torch.equal(model.units[0].weight.detach(), torch.eye(3))


def test_nddr_starts_as_a_weighted_identity() -> None:
    model = _build("nddr")
    assert isinstance(model, NDDR)
    layer = model.fusions[0]
    c = model.encoders[0].stage_channels[0]
    w = layer.convs[1].weight.detach()[:, :, 0, 0]  # task 1: (C, 3C)
    assert torch.allclose(w[:, c : 2 * c], 0.9 * torch.eye(c))
    assert torch.allclose(w[:, :c], 0.05 * torch.eye(c))
    assert layer.norms[0].momentum == 0.05


def test_mmoe_gates_are_softmax_mixtures() -> None:
    model = _build("mmoe")
    assert isinstance(model, MMoE) and len(model.experts) == 2
    x, _ = _batch()
    for w in model.gate_weights(x).values():
        assert w.shape == (2, 2)
        assert torch.allclose(w.sum(-1), torch.ones(2))
    with pytest.raises(TypeError, match="input_shape"):
        build_model("mmoe", TINY, TASKS)
    with pytest.raises(ValueError, match="built for inputs"):
        model.encode(torch.rand(2, 3, 16, 16))


def test_stage_mixing_architectures_need_a_staged_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    def flat(tasks, **kwargs):
        return nn.Conv2d(3, 4, 3), {t.name: nn.Identity() for t in tasks}

    monkeypatch.setattr("mtlbench.models.resnet_dilated.tiny_resnet_dilated_aspp", flat)
    for arch in ("cross_stitch", "mtan", "nddr"):
        with pytest.raises(TypeError, match="staged encoder"):
            build_model(arch, TINY, TASKS)


@pytest.mark.parametrize("arch", ["cross_stitch", "nddr"])
def test_per_task_encoder_architectures_need_two_tasks_and_one_input(arch: str) -> None:
    with pytest.raises(ValueError, match="at least two tasks"):
        build_model(arch, TINY, TASKS[:1], image_size=SIZE)
    x, _ = _batch()
    with pytest.raises(TypeError, match="one input shared by all tasks"):
        _build(arch).encode({t.name: x for t in TASKS})


def test_mtan_needs_two_blocks_per_stage() -> None:
    with pytest.raises(ValueError, match=">= 2 blocks"):
        build_model("mtan", TINY, TASKS, blocks_per_stage=1)


def test_tiny_encoder_is_staged_with_output_stride_8() -> None:
    encoder, heads = tiny_resnet_dilated_aspp(TASKS)
    assert isinstance(encoder, StagedEncoder)
    assert encoder.stage_channels == (4, 8, 16, 32)
    z = encoder(torch.rand(2, 3, *SIZE))
    assert z.shape == (2, 32, SIZE[0] // 8, SIZE[1] // 8)
    # without image_size the heads upsample by the output stride
    assert heads["depth"](z).shape == (2, 1, *SIZE)


def test_resnet50_dilated_shapes_on_the_meta_device() -> None:
    with torch.device("meta"):
        encoder, heads = resnet50_dilated_aspp(TASKS, image_size=(288, 384))
        assert encoder.stage_channels == (256, 512, 1024, 2048)
        z = encoder(torch.empty(2, 3, 288, 384))
        assert z.shape == (2, 2048, 36, 48)
        assert heads["segmentation"](z).shape == (2, 13, 288, 384)
        assert heads["normal"](z).shape == (2, 3, 288, 384)
        block = encoder.make_block(256, 512)
        assert block(torch.empty(1, 256, 8, 8)).shape == (1, 512, 8, 8)
        encoder18, _ = resnet18_dilated_aspp(TASKS)
        assert encoder18(torch.empty(2, 3, 288, 384)).shape == (2, 512, 36, 48)


def test_pretrained_weights_are_never_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with torch.device("meta"), pytest.raises(PretrainedWeightsNotFound, match=r"resnet50-0676ba61\.pth"):
        resnet50_dilated_aspp(TASKS, pretrained="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="unknown resnet50 weights"):
        resnet50_dilated_aspp(TASKS, pretrained="NOPE")
    with pytest.raises(ValueError, match="no pretrained weights"):
        tiny_resnet_dilated_aspp(TASKS, pretrained=True)


def test_pretrained_weights_load_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A state dict placed in the hub cache is loaded (here a random ResNet-18's, as a stand-in)."""
    from torchvision.models import resnet18

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.manual_seed(1)
    reference = resnet18(weights=None).state_dict()
    torch.save(reference, tmp_path / "checkpoints" / "resnet18-f37072fd.pth")
    torch.manual_seed(2)
    encoder, _ = resnet18_dilated_aspp(TASKS[:1], pretrained=True)
    assert torch.equal(encoder.stem[0].weight, reference["conv1.weight"])
    assert torch.equal(encoder.stages[3][1].conv2.weight, reference["layer4.1.conv2.weight"])


def test_head_channels_from_the_task_spec() -> None:
    assert [head_channels(t) for t in TASKS] == [13, 1, 3]
    from mtlbench.registration import MetricSpec, TaskSpec

    odd = TaskSpec("x", "classification", "cross_entropy", "accuracy", (MetricSpec("acc", True),))
    with pytest.raises(ValueError, match="classification"):
        head_channels(odd)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_on_resnet50_at_the_protocol_size(arch: str) -> None:
    """The registered configuration (dilated ResNet-50, 288x384), shapes only (meta device)."""
    kwargs = {"input_shape": (3, 288, 384), "num_experts": 2, "gate_pool": 8} if arch == "mmoe" else {}
    with torch.device("meta"):
        model = build_model(arch, "resnet50_dilated_aspp", TASKS, image_size=(288, 384), **kwargs)
        rep = model.encode(torch.empty(2, 3, 288, 384))
        out = model.decode(rep)
    reps = rep.values() if isinstance(rep, dict) else [rep]
    assert all(r.shape == (2, 2048, 36, 48) for r in reps)
    assert {t: tuple(o.shape) for t, o in out.items()} == {
        "segmentation": (2, 13, 288, 384),
        "depth": (2, 1, 288, 384),
        "normal": (2, 3, 288, 384),
    }

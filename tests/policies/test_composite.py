from __future__ import annotations

from typing import Any

import pytest
import torch

from mtlbench import policies
from mtlbench.policies.base import GradientDirection, GradientWeights, Observation, Policy
from mtlbench.policies.composite import Composite
from mtlbench.policies.graddrop import GradDrop
from mtlbench.policies.pcgrad import PCGrad

TASKS = ["a", "b", "c"]
W = torch.tensor([0.5, 2.0, 1.5])


class FixedLoss(Policy):
    name = "fixed"
    level = "loss"
    needs = frozenset({"losses", "val_losses"})

    def act(self, observation: Observation) -> torch.Tensor:
        return W.clone()


class RecordingGrad(Policy):
    name = "recgrad"
    level = "gradient"
    needs = frozenset({"losses", "gramian", "jacobian"})
    wrt = "representation"

    def act(self, observation: Observation) -> GradientWeights:
        self.seen: dict[str, Any] = dict(observation)
        return GradientWeights(torch.tensor([1.0, 0.0, 2.0]))


def _obs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    jac = torch.randn(3, 6, generator=g, dtype=torch.float64).float()
    return {"losses": torch.tensor([1.0, 2.0, 3.0]), "jacobian": jac, "gramian": jac @ jac.T}


def test_parts_are_checked() -> None:
    with pytest.raises(ValueError, match="gradient-level"):
        Composite(policies.make("ew"), policies.make("rlw"))
    with pytest.raises(ValueError, match="loss-level"):
        Composite(policies.make("pcgrad"), policies.make("rgw"))
    with pytest.raises(ValueError, match="loss-level"):
        Composite(policies.make("rgw"), policies.make("ew"))


def test_declarations_and_hparams_round_trip() -> None:
    c = policies.make("rlw+graddrop", rlw__distribution="uniform", graddrop__leak=0.2)
    assert isinstance(c, Composite)
    assert c.name == "rlw+graddrop" and c.level == "gradient" and c.wrt == "representation"
    assert c.needs == frozenset({"losses", "jacobian"})
    assert c.hparams() == {"rlw__distribution": "uniform", "graddrop__leak": 0.2}
    again = policies.make(c.name, **c.hparams())
    assert again.hparams() == c.hparams()
    m = Composite(policies.make("moml"), policies.make("pcgrad"))
    assert m.needs == frozenset({"losses", "jacobian", "val_jacobian", "gramian"})


def test_gradient_part_sees_the_weighted_problem_and_scaling_is_undone() -> None:
    rec = RecordingGrad()
    c = Composite(FixedLoss(), rec)
    c.reset(TASKS, seed=0)
    obs = _obs()
    a = c.act(obs)
    torch.testing.assert_close(rec.seen["losses"], obs["losses"] * W)
    torch.testing.assert_close(rec.seen["jacobian"], obs["jacobian"] * W[:, None])
    torch.testing.assert_close(rec.seen["gramian"], obs["gramian"] * W[:, None] * W[None, :])
    assert isinstance(a, GradientWeights)
    # sum_t a'_t g_t over raw gradients == sum_t a_t (w_t g_t) over weighted ones
    torch.testing.assert_close(
        a.weights @ obs["jacobian"], torch.tensor([1.0, 0.0, 2.0]) @ rec.seen["jacobian"]
    )
    assert a.head_weights is not None
    torch.testing.assert_close(a.head_weights, W)


def test_composite_with_pcgrad_equals_pcgrad_on_weighted_gradients() -> None:
    c = Composite(FixedLoss(), PCGrad())
    c.reset(TASKS, seed=4)
    obs = _obs()
    a = c.act(obs)
    ref = PCGrad()
    ref.reset(TASKS, seed=4 + 0x9E3779B9)
    weighted = obs["jacobian"] * W[:, None]
    b = ref.act({"losses": obs["losses"] * W, "gramian": weighted @ weighted.T})
    torch.testing.assert_close(a.weights @ obs["jacobian"], b.weights @ weighted)


def test_ew_composite_is_the_gradient_method_and_directions_pass_through() -> None:
    c = policies.make("ew+graddrop")
    c.reset(TASKS, seed=1)
    ref = GradDrop()
    ref.reset(TASKS, seed=1 + 0x9E3779B9)
    obs = _obs()
    a, b = c.act(obs), ref.act(obs)
    assert isinstance(a, GradientDirection)
    torch.testing.assert_close(a.direction, b.direction)
    assert a.head_weights is not None
    torch.testing.assert_close(a.head_weights, torch.ones(3))


def test_random_parts_draw_independent_streams_and_state_round_trips() -> None:
    c = policies.make("rlw+rgw")
    c.reset(TASKS, seed=0)
    obs = {"losses": torch.ones(3)}
    a = c.act(obs)
    assert isinstance(a, GradientWeights) and a.head_weights is not None
    assert not torch.allclose(a.weights / a.head_weights, a.head_weights)
    d = policies.make("rlw+rgw")
    d.reset(TASKS, seed=0)
    d.load_state_dict(c.state_dict())
    torch.testing.assert_close(c.act(obs).weights, d.act(obs).weights)


def test_update_reaches_both_parts() -> None:
    c = policies.make("famo+pcgrad")
    assert c.needs == frozenset({"losses", "next_losses", "gramian"})
    c.reset(TASKS, seed=0)
    obs = {"losses": torch.ones(3), "gramian": torch.eye(3)}
    c.act(obs)
    c.update({"next_losses": torch.tensor([0.5, 1.0, 1.0])})
    a = c.act(obs)
    assert a.head_weights is not None and a.head_weights[0] < a.head_weights[1]
    assert len(c.parameters()) == 1

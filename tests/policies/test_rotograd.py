from __future__ import annotations

import pytest
import torch

from mtlbench import policies
from mtlbench.policies.base import GradientWeights, PolicyError
from mtlbench.policies.rotograd import Rotation, RotoGrad, rotograd_weights

TASKS = ["a", "b"]
DIM = 4


def _policy(**kw: object) -> RotoGrad:
    p = policies.make("rotograd", **kw)
    assert isinstance(p, RotoGrad)
    p.reset(TASKS, seed=0, representation_dim=DIM)
    return p


def _head_grads() -> torch.Tensor:
    # dL_t/dr_t for 6 rows: the two tasks' head gradients conflict (opposite first axis)
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, DIM, generator=g)
    h0 = base + torch.tensor([2.0, 0.0, 0.0, 0.0])
    h1 = -base.flip(-1) + torch.tensor([0.0, 1.0, 0.0, 0.0])
    return torch.stack([h0, h1])


def _jacobian(p: RotoGrad, head: torch.Tensor) -> torch.Tensor:
    # what the env observes: dL_t/dz = dL_t/dr_t R_t (rows), flattened
    assert p.adapters is not None
    return torch.stack([head[t] @ p.adapters[t].matrix().detach() for t in range(2)]).reshape(2, -1)


def test_adapters_are_rotations_and_detached() -> None:
    p = _policy()
    adapters = p.representation_adapters()
    assert adapters is not None and len(adapters) == 2
    z = torch.randn(3, 5, DIM)
    torch.testing.assert_close(adapters[0](z), z)  # identity at the start
    with torch.no_grad():
        adapters[0].raw.add_(torch.randn(DIM, DIM))
    r = adapters[0].matrix()
    torch.testing.assert_close(r @ r.T, torch.eye(DIM), atol=1e-5, rtol=0)
    out = adapters[0](z.requires_grad_())
    torch.testing.assert_close(out, z @ r.detach().T)
    out.sum().backward()
    assert adapters[0].raw.grad is None  # the env's backward never reaches the rotation
    with pytest.raises(ValueError, match="representation_dim"):
        adapters[0](torch.randn(2, DIM + 1))


def test_scaling_equalises_the_gradient_norms() -> None:
    norms, init = torch.tensor([2.0, 0.5, 1.0]), torch.tensor([1.0, 1.0, 2.0])
    w = rotograd_weights(norms, init)
    scaled = w * norms
    torch.testing.assert_close(scaled, scaled.mean().expand(3))
    rho = norms / init
    torch.testing.assert_close(scaled[0], (rho / rho.sum() * norms).sum())


def test_act_returns_weights_and_rotations_reduce_conflict() -> None:
    p = _policy(lr=0.05)
    head = _head_grads()
    cos = torch.nn.functional.cosine_similarity
    jac = _jacobian(p, head)
    before = cos(jac[0], jac[1], dim=0)
    for _ in range(60):
        jac = _jacobian(p, head)
        a = p.act({"losses": torch.ones(2), "jacobian": jac})
        assert isinstance(a, GradientWeights) and a.weights.shape == (2,)
        assert torch.isfinite(a.weights).all() and (a.weights > 0).all()
    after = cos(jac[0], jac[1], dim=0)
    assert after > before + 0.3
    for ad in p.adapters or []:
        r = ad.matrix().detach()
        torch.testing.assert_close(r @ r.T, torch.eye(DIM), atol=1e-5, rtol=0)


def test_burn_in_rerecords_initial_norms() -> None:
    p = _policy(burn_in_period=2)
    jac = torch.ones(2, DIM)
    p.act({"losses": torch.ones(2), "jacobian": jac})
    assert p.initial_norms is not None
    torch.testing.assert_close(p.initial_norms, torch.full((2,), 2.0))
    p.act({"losses": torch.ones(2), "jacobian": 3 * jac})
    torch.testing.assert_close(p.initial_norms, torch.full((2,), 2.0))
    p.act({"losses": torch.ones(2), "jacobian": 5 * jac})  # counter == burn_in_period
    torch.testing.assert_close(p.initial_norms, torch.full((2,), 10.0))


def test_reset_really_resets_and_state_round_trips() -> None:
    p = _policy(lr=0.05)
    head = _head_grads()
    for _ in range(3):
        p.act({"losses": torch.ones(2), "jacobian": _jacobian(p, head)})
    q = _policy(lr=0.05)
    q.load_state_dict(p.state_dict())
    assert q.adapters is not None and p.adapters is not None
    z = torch.randn(2, DIM)
    torch.testing.assert_close(q.adapters[1](z), p.adapters[1](z))
    jac = _jacobian(p, head)
    torch.testing.assert_close(
        p.act({"losses": torch.ones(2), "jacobian": jac}).weights,
        q.act({"losses": torch.ones(2), "jacobian": jac}).weights,
    )
    old = p.adapters
    p.reset(TASKS, seed=0, representation_dim=DIM)
    assert p.adapters is not old and p.counter == 0 and p.initial_norms is None
    torch.testing.assert_close(p.adapters[0](z), z)
    assert p.optimizer is not None and len(p.optimizer.state) == 0


def test_reset_needs_the_representation_dim_and_checks_the_jacobian() -> None:
    p = RotoGrad()
    with pytest.raises(PolicyError, match="representation_dim"):
        p.reset(TASKS, seed=0)
    p.reset(TASKS, seed=0, representation_dim=DIM)
    with pytest.raises(PolicyError, match="multiple"):
        p.act({"losses": torch.ones(2), "jacobian": torch.ones(2, DIM + 1)})
    assert p.adapters is not None and isinstance(p.adapters[0], Rotation)


def test_feature_maps_are_rotated_on_the_channel_axis() -> None:
    p = _policy()
    assert p.adapters is not None
    with torch.no_grad():
        p.adapters[0].raw.add_(torch.randn(DIM, DIM, generator=torch.Generator().manual_seed(1)))
    r = p.adapters[0].matrix().detach()
    z = torch.randn(3, DIM, 5, 6)  # (B, C, H, W): the channel axis has representation_dim
    expected = (z.permute(0, 2, 3, 1) @ r.T).permute(0, 3, 1, 2)
    torch.testing.assert_close(p.adapters[0](z), expected)
    assert p.adapters[0].spatial == 30
    with pytest.raises(ValueError, match="feature axis"):
        p.adapters[0](torch.randn(3, DIM + 1, 5, 6))


def test_a_feature_map_jacobian_is_read_as_rows_of_channels() -> None:
    # The env flattens dL/dz of a (B, C, H, W) map channels-first; RotoGrad must read it as
    # B*H*W rows of C features: the same weights and the same rotation step as a policy fed
    # the channels-last rows of the same gradient.
    g = torch.Generator().manual_seed(2)
    grad_map = torch.randn(2, 3, DIM, 2, 5, generator=g)  # (T, B, C, H, W)
    grad_map[1] -= 1.5 * grad_map[0]  # conflicting tasks, so the rotations move
    maps, rows = _policy(lr=0.05), _policy(lr=0.05)
    assert maps.adapters is not None and rows.adapters is not None
    for adapter in maps.adapters:
        adapter(torch.zeros(3, DIM, 2, 5))  # the env's forward records H * W
    channels_first = grad_map.reshape(2, -1)
    channels_last = grad_map.permute(0, 1, 3, 4, 2).reshape(2, -1)
    for _ in range(3):
        a = maps.act({"losses": torch.ones(2), "jacobian": channels_first})
        b = rows.act({"losses": torch.ones(2), "jacobian": channels_last})
        torch.testing.assert_close(a.weights, b.weights)
    for ra, rb in zip(maps.adapters, rows.adapters, strict=True):
        torch.testing.assert_close(ra.matrix(), rb.matrix())
        assert not torch.allclose(ra.matrix(), torch.eye(DIM))

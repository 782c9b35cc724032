"""Properties every Gramian-based gradient weighting must have, over all such methods.

Each method is a pure function of the Gramian ``G = J J^T`` to a weight vector. We check
shapes and dtypes, finiteness, permutation equivariance (relabelling the tasks permutes
the weights), the behaviour under ``G -> s G`` (``w -> s^{-p} w`` with a method-specific
``p``), determinism, and that a broken Gramian raises an error naming the method. The
policy classes are checked through the registry: declarations, ``act`` and ``hparams``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from mtlbench import policies
from mtlbench.policies import KNOWN_NEEDS, GradientWeights, PolicyError
from mtlbench.policies.aligned_mtl import aligned_mtl_weights
from mtlbench.policies.cagrad import cagrad_weights
from mtlbench.policies.dualproj import dualproj_weights
from mtlbench.policies.fairgrad import fairgrad_weights
from mtlbench.policies.imtl_g import imtl_g_weights
from mtlbench.policies.mgda import mgda_weights
from mtlbench.policies.nash_mtl import nash_mtl_weights
from mtlbench.policies.upgrad import upgrad_weights


@dataclass(frozen=True)
class Method:
    label: str  # as it appears in error messages
    weights: Callable[[torch.Tensor], torch.Tensor]
    scale_power: float  # weights(s G) = s^{-p} weights(G)
    atol: float  # of equivariance checks


METHODS = [
    Method("MGDA", mgda_weights, 0.0, 1e-9),
    Method("IMTL-G", imtl_g_weights, 0.0, 1e-9),
    Method("CAGrad", cagrad_weights, 0.0, 1e-7),
    Method("Nash-MTL", nash_mtl_weights, 0.5, 1e-7),
    Method("Aligned-MTL", aligned_mtl_weights, 0.0, 1e-9),
    Method("UPGrad", upgrad_weights, 0.0, 1e-7),
    Method("DualProj", dualproj_weights, 0.0, 1e-7),
    Method("FairGrad", fairgrad_weights, 0.5, 1e-7),
    Method("FairGrad", lambda G: fairgrad_weights(G, alpha=2.0), 2.0 / 3.0, 1e-7),
]
IDS = [
    "mgda",
    "imtl-g",
    "cagrad",
    "nash-mtl",
    "aligned-mtl",
    "upgrad",
    "dualproj",
    "fairgrad",
    "fairgrad-alpha2",
]

#: Registered ids of the policies in these modules, with their level-specific declarations.
POLICY_IDS = [
    "mgda",
    "mgda-ub",
    "imtl-g",
    "cagrad",
    "nash-mtl",
    "aligned-mtl",
    "upgrad",
    "dualproj",
    "fairgrad",
]


def jacobian(num_tasks: int, dim: int, seed: int) -> torch.Tensor:
    """Task gradients of different scales with a shared component and random signs."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.exp(0.7 * torch.randn(num_tasks, 1, generator=gen, dtype=torch.float64))
    shared = torch.randn(1, dim, generator=gen, dtype=torch.float64)
    signs = torch.where(torch.rand(num_tasks, 1, generator=gen) < 0.3, -1.0, 1.0)
    return (0.6 * signs * shared + torch.randn(num_tasks, dim, generator=gen, dtype=torch.float64)) * scales


@pytest.fixture(params=METHODS, ids=IDS)
def method(request: pytest.FixtureRequest) -> Method:
    return request.param


@pytest.mark.parametrize("num_tasks", [1, 2, 3, 7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_and_finiteness(method: Method, num_tasks: int, dtype: torch.dtype) -> None:
    J = jacobian(num_tasks, 3 * num_tasks + 2, seed=num_tasks)
    w = method.weights((J @ J.T).to(dtype))
    assert w.shape == (num_tasks,)
    assert w.dtype == dtype and w.device == J.device
    assert torch.isfinite(w).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permutation_equivariance(method: Method, seed: int) -> None:
    J = jacobian(5, 12, seed)
    perm = torch.randperm(5, generator=torch.Generator().manual_seed(seed))
    w = method.weights(J @ J.T)
    w_perm = method.weights(J[perm] @ J[perm].T)
    torch.testing.assert_close(w_perm, w[perm], atol=method.atol, rtol=1e-6)


@pytest.mark.parametrize("scale", [1e-3, 7.3, 1e4])
def test_scale_behaviour(method: Method, scale: float) -> None:
    J = jacobian(4, 10, seed=3)
    G = J @ J.T
    expected = method.weights(G) * scale ** (-method.scale_power)
    torch.testing.assert_close(method.weights(scale * G), expected, atol=method.atol, rtol=1e-6)


def test_determinism(method: Method) -> None:
    G = (lambda J: J @ J.T)(jacobian(6, 9, seed=4))
    assert torch.equal(method.weights(G), method.weights(G.clone()))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_gramian_raises_policy_error_naming_the_method(method: Method, bad: float) -> None:
    G = (lambda J: J @ J.T)(jacobian(3, 5, seed=5))
    G[0, 1] = G[1, 0] = bad
    with pytest.raises(PolicyError, match=method.label):
        method.weights(G)


def test_wrong_shape_raises_value_error(method: Method) -> None:
    with pytest.raises(ValueError, match=r"\(T, T\)"):
        method.weights(torch.ones(2, 3))


@pytest.mark.parametrize("policy_id", POLICY_IDS)
def test_policy_declarations_and_action(policy_id: str) -> None:
    cls = policies.load(policy_id)
    policy = policies.make(policy_id)
    assert policy.name == policy_id
    assert policy.level == "gradient"
    assert policy.wrt in ("parameters", "representation")
    assert "gramian" in policy.needs and policy.needs <= KNOWN_NEEDS
    # hparams() are exactly the constructor's arguments and rebuild an equal policy.
    assert set(policy.hparams()) == set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert cls(**policy.hparams()).hparams() == policy.hparams()
    assert repr(policy).startswith(cls.__name__ + "(")
    policy.reset(["a", "b", "c", "d"], seed=0)
    J = jacobian(4, 10, seed=6).float()
    action = policy.act({"losses": torch.rand(4) + 0.5, "gramian": J @ J.T})
    assert isinstance(action, GradientWeights)
    assert action.weights.shape == (4,) and action.weights.dtype == torch.float32
    assert torch.isfinite(action.weights).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_weights_are_computed_on_the_gramian_device(method: Method) -> None:
    G = (lambda J: J @ J.T)(jacobian(5, 12, seed=7))
    w_cuda = method.weights(G.cuda())
    assert w_cuda.device.type == "cuda"
    torch.testing.assert_close(w_cuda.cpu(), method.weights(G), atol=method.atol, rtol=1e-6)

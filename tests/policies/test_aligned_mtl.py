"""Aligned-MTL (Senushkin et al., CVPR 2023): weights from the Gramian's eigenbasis."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlbench import policies
from mtlbench.policies import GradientWeights, PolicyError
from mtlbench.policies.aligned_mtl import AlignedMTL, AlignedMTLUB, aligned_mtl_weights

J3 = torch.tensor([[1.0, 0.5, -0.5], [-0.8, 1.2, 0.3], [0.2, -0.4, 1.5]], dtype=torch.float64)


def random_jacobian(num_tasks: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scales = torch.exp(torch.randn(num_tasks, 1, generator=gen, dtype=torch.float64))
    return torch.randn(num_tasks, dim, generator=gen, dtype=torch.float64) * scales


def svd_reference(J: torch.Tensor, scale_mode: str = "min") -> torch.Tensor:
    """Independently, from the SVD of J = U S V^T: B = sqrt(scale) U S^-1 U^T, weights B 1."""
    U, S, _ = np.linalg.svd(J.numpy(), full_matrices=False)
    keep = S > S.max() * 1e-7
    U, S = U[:, keep], S[keep]
    eig = S**2
    scale = {"min": eig.min(), "median": np.sort(eig)[(len(eig) - 1) // 2], "rmse": eig.mean()}[scale_mode]
    B = np.sqrt(scale) * (U / S) @ U.T
    return torch.as_tensor(B @ np.ones(J.shape[0]))


def test_golden_orthogonal_gradients() -> None:
    # G = diag(1, 4, 16): B = sqrt(1) diag(1, 1/2, 1/4), weights B 1.
    J = torch.diag(torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    torch.testing.assert_close(
        aligned_mtl_weights(J @ J.T), torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)
    )


@pytest.mark.parametrize("scale_mode", ["min", "median", "rmse"])
def test_golden_hand_written_jacobian_matches_the_svd(scale_mode: str) -> None:
    torch.testing.assert_close(
        aligned_mtl_weights(J3 @ J3.T, scale_mode=scale_mode),
        svd_reference(J3, scale_mode),
        atol=1e-12,
        rtol=0,
    )


@pytest.mark.parametrize(("num_tasks", "dim"), [(2, 5), (4, 10), (6, 4)])
def test_aligned_gradients_have_equal_singular_values(num_tasks: int, dim: int) -> None:
    # B J is the aligned gradient matrix: all its non-zero singular values equal sigma_min(J),
    # so its condition number is 1 (Algorithm 1); for T > D only the non-zero part counts.
    J = random_jacobian(num_tasks, dim, seed=num_tasks)
    G = J @ J.T
    eigenvalues, eigenvectors = torch.linalg.eigh(G)
    kept = eigenvalues > eigenvalues.max() * 1e-10
    B = (eigenvectors[:, kept] * (eigenvalues[kept].min() / eigenvalues[kept]).sqrt()) @ eigenvectors[
        :, kept
    ].T
    torch.testing.assert_close(aligned_mtl_weights(G), B @ torch.ones(num_tasks, dtype=torch.float64))
    singular = torch.linalg.svdvals(B @ J)[: int(kept.sum())]
    torch.testing.assert_close(singular, singular.min().expand_as(singular), rtol=1e-8, atol=0)
    torch.testing.assert_close(svd_reference(J), aligned_mtl_weights(G), atol=1e-9, rtol=0)


def test_rank_deficient_gramian_uses_the_non_zero_spectrum() -> None:
    g = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)
    J = torch.stack([g, 2 * g, torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)])
    w = aligned_mtl_weights(J @ J.T)
    assert torch.all(torch.isfinite(w))
    torch.testing.assert_close(w, svd_reference(J), atol=1e-6, rtol=0)


def test_zero_gramian_gives_unit_weights() -> None:
    torch.testing.assert_close(aligned_mtl_weights(torch.zeros(3, 3)), torch.ones(3))


def test_failures_raise_policy_error_naming_the_method() -> None:
    with pytest.raises(PolicyError, match="Aligned-MTL"):
        aligned_mtl_weights(torch.full((3, 3), float("nan")))
    with pytest.raises(ValueError, match="scale_mode"):
        AlignedMTL(scale_mode="max")


def test_policies_act_on_the_gramian() -> None:
    policy = policies.make("aligned-mtl", scale_mode="median")
    assert isinstance(policy, AlignedMTL)
    assert policy.hparams() == {"scale_mode": "median"}
    policy.reset(["a", "b", "c"], seed=0)
    action = policy.act({"losses": torch.ones(3), "gramian": (J3 @ J3.T).float()})
    assert isinstance(action, GradientWeights)
    assert action.weights.shape == (3,) and action.weights.dtype == torch.float32
    ub = AlignedMTLUB()
    assert (ub.name, ub.wrt, AlignedMTL.wrt) == ("aligned-mtl-ub", "representation", "parameters")

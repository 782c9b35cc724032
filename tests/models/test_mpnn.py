"""MPNN backbone: shapes, masking, invariances, and the factorised NNConv against its definition."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from mtlbench.models import build_model
from mtlbench.models.mpnn import EdgeConditionedConv, MPNNEncoder, mpnn

TASKS = [SimpleNamespace(name=n) for n in ("mu", "alpha", "U0")]
SMALL = {"dim": 16, "edge_hidden": 8, "num_rbf": 12}


def molecules(n_atoms: list[int], seed: int = 0, slots: int = 29) -> torch.Tensor:
    """Random molecules in the (B, 29, 4) layout: [Z, x, y, z], zero rows as padding."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(n_atoms), slots, 4)
    elements = torch.tensor([1.0, 6.0, 7.0, 8.0, 9.0])
    for i, n in enumerate(n_atoms):
        x[i, :n, 0] = elements[torch.randint(0, 5, (n,), generator=g)]
        x[i, :n, 1:] = torch.randn(n, 3, generator=g) * 1.5
    return x


@pytest.fixture
def encoder() -> MPNNEncoder:
    torch.manual_seed(0)
    return MPNNEncoder(**SMALL).double()


def test_factory_shapes_and_heads() -> None:
    enc, heads = mpnn(TASKS)
    assert set(heads) == {"mu", "alpha", "U0"}
    x = molecules([5, 29, 3])
    rep = enc(x)
    assert rep.shape == (3, 64)
    assert all(h(rep).shape == (3, 1) for h in heads.values())
    model = build_model("hps", "mpnn", TASKS, **SMALL)
    out = model(x)
    assert {t: o.shape for t, o in out.items()} == {t.name: (3, 1) for t in TASKS}
    shared = {id(p) for p in model.shared_parameters()}
    assert shared == {id(p) for p in model.encoder.parameters()}


def test_rejects_bad_input_and_hyperparameters() -> None:
    enc = MPNNEncoder(**SMALL)
    with pytest.raises(ValueError, match=r"\(batch, atoms, 4\)"):
        enc(torch.zeros(2, 29, 3))
    with pytest.raises(ValueError, match="cutoff"):
        MPNNEncoder(cutoff=-1.0)
    with pytest.raises(ValueError, match="steps"):
        MPNNEncoder(steps=0)


def test_invariant_to_atom_order(encoder: MPNNEncoder) -> None:
    x = molecules([7, 12, 29], seed=1).double()
    g = torch.Generator().manual_seed(3)
    permuted = x.clone()
    for i in range(x.shape[0]):
        permuted[i] = x[i, torch.randperm(29, generator=g)]  # padding moves too
    assert torch.allclose(encoder(x), encoder(permuted), atol=1e-10)


def test_invariant_to_rotation_and_translation(encoder: MPNNEncoder) -> None:
    x = molecules([9, 17], seed=2).double()
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4)))
    moved = x.clone()
    mask = x[..., :1] > 0
    moved[..., 1:] = torch.where(mask, x[..., 1:] @ q.T + torch.tensor([1.0, -2.0, 3.0]).double(), 0.0)
    assert torch.allclose(encoder(x), encoder(moved), atol=1e-10)


def test_padding_and_batch_neighbours_do_not_leak(encoder: MPNNEncoder) -> None:
    x = molecules([6, 20, 11], seed=5).double()
    alone = encoder(x[:1])
    noisy = x.clone()
    noisy[0, 6:, 1:] = torch.randn(23, 3, dtype=torch.float64) * 10  # coordinates of padding rows
    assert torch.allclose(encoder(noisy)[0], alone[0], atol=1e-10)
    assert torch.allclose(encoder(x)[0], alone[0], atol=1e-10)


def test_cutoff_removes_long_edges() -> None:
    torch.manual_seed(0)
    enc = MPNNEncoder(cutoff=2.0, **SMALL).double()
    x = molecules([4], seed=6).double()
    _, _, adj, dist = enc.graph(x)
    assert bool((dist[adj] <= 2.0).all())
    far = x.clone()
    far[0, 3, 1:] += 100.0  # an atom beyond every cutoff still counts as a node, with no edges
    _, _, adj_far, _ = enc.graph(far)
    assert not adj_far[0, 3].any() and not adj_far[0, :, 3].any()


def test_edge_conditioned_conv_matches_nnconv_definition() -> None:
    """sum over neighbours of h_j @ W(e_ij), W = edge_out(ReLU(edge_hidden(e))).view(d, d), mean-aggregated."""
    torch.manual_seed(0)
    d, edge_dim, hidden, n = 5, 4, 6, 7
    conv = EdgeConditionedConv(d, edge_dim, hidden).double()
    h = torch.randn(2, n, d, dtype=torch.float64)
    e = torch.randn(2, n, n, edge_dim, dtype=torch.float64)
    mask = torch.ones(2, n, dtype=torch.bool)
    mask[1, 5:] = False
    adj = (mask[:, :, None] & mask[:, None, :] & ~torch.eye(n, dtype=torch.bool)).double()
    deg = adj.sum(-1, keepdim=True).clamp_min(1.0)
    fast = conv(h, conv.edge_basis(e, adj), adj, deg)
    for b in range(2):
        for i in range(n):
            if not mask[b, i]:
                continue
            msgs = []
            for j in range(n):
                if adj[b, i, j]:
                    w = conv.edge_out(F.relu(conv.edge_hidden(e[b, i, j]))).view(d, d)
                    msgs.append(h[b, j] @ w)
            expected = torch.stack(msgs).mean(0) + conv.root(h[b, i])
            assert torch.allclose(fast[b, i], expected, atol=1e-10)


def test_gradients_reach_every_encoder_parameter() -> None:
    torch.manual_seed(0)
    enc = MPNNEncoder(**SMALL)
    enc(molecules([5, 8])).sum().backward()
    missing = [name for name, p in enc.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_builds_and_runs_on_the_meta_device() -> None:
    # the env sizes representation-level Jacobians with a model on the meta device
    with torch.device("meta"):
        enc, _ = mpnn(TASKS, **SMALL)
        rep = enc(torch.empty(2, 29, 4, device="meta"))
    assert rep.shape == (2, 16) and rep.device.type == "meta"

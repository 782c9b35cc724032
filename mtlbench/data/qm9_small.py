"""QM9-small: the 11 QM9 targets on a fixed subset of molecules, with fixed molecular descriptors.

A regression regime with targets on very different scales (QM9 is where weighting methods
differ most in published tables), sized for a CPU: a few seconds per epoch on 2 cores.

Source and targets: those of :mod:`mtlbench.data.qm9` (qm9pack 1.0.3's CSVs; the same 11
targets in the same units, atomization energies in eV).

Subset (fixed, published): the first :data:`SPLIT_SIZES` molecules of each split of the
registered QM9 split (:func:`mtlbench.data.qm9.split_ids`, a seeded permutation), i.e.
10,000 train, 2,000 val and 2,000 test molecules, each a uniform random sample of its QM9
split. :data:`SPLIT_SHA256` pins each subset's id list (GDB-9 indices, in that order).

Inputs: a fixed 49-d descriptor per molecule (:func:`descriptors`), computed from the
elements and geometry only, then standardised with the training subset's mean and std
(computed on load; constant features are left at 0):

* the 29 eigenvalues of the Coulomb matrix (Rupp et al., "Fast and accurate modeling of
  molecular atomization energies with machine learning", PRL 108, 058301, 2012),
  ``C_ii = 0.5 Z_i^2.4``, ``C_ij = Z_i Z_j / |R_i - R_j|`` (distances in Angstrom), sorted
  in decreasing order, zero-padded to 29;
* the counts of H, C, N, O and F atoms (5);
* a smoothed histogram of the interatomic distances: ``sum_{i<j} exp(-(d_ij - mu_k)^2 / (2 *
  0.25^2))`` for 12 centres ``mu_k`` evenly spaced on [0.5, 6] Angstrom (12);
* the three eigenvalues of the (unweighted) gyration tensor of the atom positions, in
  increasing order (3).

This replaces the MPNN of ``qm9-hps-v1`` (about 1.3 s per batch of 120 molecules on 2
cores) with an MLP on these descriptors (:mod:`mtlbench.models.mlp`): the screen keeps
QM9's 11 targets and their scales, not its state-of-the-art accuracy.

Targets are standardised with the training subset's mean and (unbiased) std,
:data:`TARGET_MEAN` / :data:`TARGET_STD`, written here literally (``tests/data/
test_qm9_small.py`` recomputes them); the env reports the MAE in the original units.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import torch

from mtlbench.data import qm9
from mtlbench.data.base import (
    DatasetCorrupt,
    Source,
    Splits,
    TensorMTLDataset,
    ids_sha256,
    rebuild_problems,
    register_source,
)

NAME = "qm9_small"

register_source(
    Source(
        name=NAME,
        url="https://pypi.org/project/qm9pack/",
        files="the qm9pack package (its CSVs; `pip install qm9pack`)",
        bundled=True,
    )
)
REVISION = "qm9pack-1.0.3/csv/subset-10000-2000-2000/descriptors-v1"
DESCRIPTION = (
    "QM9-small: the 11 QM9 targets of qm9pack's molecules on a fixed subset of the registered "
    "QM9 split (10,000 / 2,000 / 2,000 train / val / test), each molecule a fixed 49-d descriptor "
    "(Coulomb-matrix eigenvalues, element counts, distance histogram, gyration). Ships with "
    "qm9pack: nothing to prepare."
)
TASKS = qm9.TASKS
UNITS = qm9.UNITS
SPLITS = ("train", "val", "test")
SPLIT_SIZES: dict[str, int] = {"train": 10_000, "val": 2_000, "test": 2_000}
NUM_FEATURES = 49
RBF_CENTRES = torch.linspace(0.5, 6.0, 12, dtype=torch.float64)
RBF_WIDTH = 0.25

#: SHA-256 of each subset's id list (GDB-9 indices in permutation order)
SPLIT_SHA256: dict[str, str] = {
    "train": "55fd9f7a01df762f2ebeca8c52b8abe8301ac6b3aa6b0ae271ef4fe2d39a43ad",
    "val": "417bea012135f336297c25f001eb13ea4a124e18423420a80e61198a4dc58830",
    "test": "b1eb8f9de4e2958d4db56aea230630070209c9f7f0ae3221da2d033a6c671b7d",
}
#: training-subset mean and unbiased std of each target, in :data:`UNITS`
TARGET_MEAN: dict[str, float] = {
    "mu": 2.65652889,
    "alpha": 75.475852,
    "homo": -6.529515261619354,
    "lumo": 0.3233153510481985,
    "r2": 1192.69034419,
    "zpve": 4.072861039032166,
    "U0": -76.30402979402041,
    "U": -76.77003645444691,
    "H": -77.20904886188323,
    "G": -71.01129959969485,
    "cv": 31.678069499999996,
}
TARGET_STD: dict[str, float] = {
    "mu": 1.484671108292454,
    "alpha": 8.241351059190697,
    "homo": 0.5918762046939158,
    "lumo": 1.2596674777598498,
    "r2": 283.4045825651213,
    "zpve": 0.9029170100387555,
    "U0": 10.350146871429716,
    "U": 10.441714073194824,
    "H": 10.515942339027971,
    "G": 9.523355456463765,
    "cv": 4.080873812626063,
}

log = logging.getLogger(__name__)


def descriptors(z: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The ``(N, 49)`` float64 descriptors of molecules ``z`` (N, 29) and ``pos`` (N, 29, 3)."""
    zf = z.to(torch.float64)
    p = pos.to(torch.float64)
    mask = zf > 0
    pair = mask.unsqueeze(2) & mask.unsqueeze(1)
    n_atoms = z.shape[1]
    eye = torch.eye(n_atoms, dtype=torch.bool)
    dist = torch.cdist(p, p)
    off = pair & ~eye
    coulomb = torch.where(off, zf.unsqueeze(2) * zf.unsqueeze(1) / dist.clamp_min(1e-8), 0.0)
    coulomb = coulomb + torch.diag_embed(0.5 * zf.pow(2.4))
    eig = torch.linalg.eigvalsh(coulomb).flip(-1)  # decreasing; padding rows give zeros
    counts = torch.stack([(z == zn).sum(1) for zn in qm9.ATOMIC_NUMBER.values()], dim=1).to(torch.float64)
    upper = off & torch.ones(n_atoms, n_atoms, dtype=torch.bool).triu(1)
    rbf = torch.exp(-((dist.unsqueeze(-1) - RBF_CENTRES) ** 2) / (2 * RBF_WIDTH**2))
    hist = (rbf * upper.unsqueeze(-1)).sum((1, 2))
    m = mask.to(torch.float64).unsqueeze(-1)
    n = m.sum(1).clamp_min(1.0)
    centred = (p - (p * m).sum(1, keepdim=True) / n.unsqueeze(1)) * m
    gyration = centred.transpose(1, 2) @ centred / n.unsqueeze(-1)
    return torch.cat([eig, counts, hist, torch.linalg.eigvalsh(gyration)], dim=1)


def subset_ids() -> dict[str, torch.Tensor]:
    """The published molecule ids of each split of the subset (reads only the CSVs' first fields)."""
    full = qm9.split_ids(qm9.molecule_ids())
    return {s: full[s][: SPLIT_SIZES[s]] for s in SPLITS}


@functools.lru_cache(maxsize=1)
def _build() -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], dict[str, str], dict[str, Any]]:
    scan = qm9._scan()
    full = qm9.split_ids(scan.ids)
    ids = {s: full[s][: SPLIT_SIZES[s]] for s in SPLITS}
    manifest = {}
    for split in SPLITS:
        digest = ids_sha256(ids[split].tolist())
        if digest != SPLIT_SHA256[split]:
            raise DatasetCorrupt(
                NAME,
                f"split {split!r}",
                f"id list hash {digest[:12]} != published {SPLIT_SHA256[split][:12]}",
            )
        manifest[split] = digest
    mols = qm9._parse(scan, torch.cat([ids[s] for s in SPLITS]).tolist())  # sorted by id
    row = {int(i): k for k, i in enumerate(mols.ids.tolist())}
    feats, targets = {}, {}
    for split in SPLITS:
        rows = torch.tensor([row[int(i)] for i in ids[split].tolist()])
        feats[split] = descriptors(mols.z[rows], mols.pos[rows])
        targets[split] = mols.targets[rows].to(torch.float64)
    f_mean, f_std = feats["train"].mean(0), feats["train"].std(0)
    f_std = torch.where(f_std > 1e-12, f_std, torch.ones_like(f_std))
    t_mean = torch.tensor([TARGET_MEAN[t] for t in TASKS], dtype=torch.float64)
    t_std = torch.tensor([TARGET_STD[t] for t in TASKS], dtype=torch.float64)
    tensors = {
        s: (
            ((feats[s] - f_mean) / f_std).to(torch.float32),
            ((targets[s] - t_mean) / t_std).to(torch.float32),
        )
        for s in SPLITS
    }
    raw = {"train_targets": targets["train"]}
    return tensors, manifest, raw


def training_target_stats() -> tuple[dict[str, float], dict[str, float]]:
    """Recompute :data:`TARGET_MEAN` / :data:`TARGET_STD` from the training subset."""
    return qm9.target_stats(_build()[2]["train_targets"])


def load(root: Path | None = None, *, name: str = NAME, limit: int | None = None, **kwargs: Any) -> Splits:
    """The three splits in memory (fresh copies); ``limit`` keeps the first N molecules of each."""
    del root, name  # ships with qm9pack: the data root is not used
    if kwargs:
        raise TypeError(f"qm9_small.load() got unknown arguments {sorted(kwargs)}; it takes 'limit'")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    tensors, manifest, _ = _build()
    data = {
        s: TensorMTLDataset(x[:limit].clone(), {t: y[:limit, j].clone() for j, t in enumerate(TASKS)})
        for s, (x, y) in tensors.items()
    }
    info = {"tasks": TASKS, "units": dict(UNITS), "mean": dict(TARGET_MEAN), "std": dict(TARGET_STD)}
    return Splits(data["train"], data["val"], data["test"], manifest=dict(manifest), info=info)


def verify(root: Path | None = None) -> list[str]:
    """Rebuild the subset and compare its split hashes with the published ones."""
    return rebuild_problems(load, root)


def prepare(root: Path | None = None, source: Path | None = None) -> None:
    """Nothing to prepare: the molecules ship inside ``qm9pack``."""
    del root, source
    log.info("qm9_small ships with qm9pack; nothing to prepare")

"""QM9, read from the CSVs shipped in PyPI ``qm9pack``: 11 regression targets per molecule.

Source: QM9 (Ramakrishnan, Dral, Rupp, von Lilienfeld, "Quantum chemistry structures and
properties of 134 kilo molecules", Scientific Data 1, 140022, 2014), as packaged by
``qm9pack`` 1.0.3 (MIT): ``qm9pack/data/qm9_part{1,2,3}.csv``, one row per molecule with its
B3LYP geometry (``XYZ_Ang``) and properties in the units of the QM9 ``.xyz`` files (Hartree,
Debye, bohr^3, ...). The package holds the 130,831 molecules that passed QM9's consistency
check (the 3,054 ``uncharacterized`` ones are absent), the same set PyTorch Geometric uses.
``qm9pack.get_data`` needs ``pkg_resources``; we never import the package, we only locate
its folder and read the CSVs.

Targets (the 11 of Nash-MTL and LibMTL: PyG target indices 0, 1, 2, 3, 5, 6, 12, 13, 14, 15,
11), converted as PyTorch Geometric does:

=======  ================================  ============  ==========================
task     column                            unit          conversion
=======  ================================  ============  ==========================
mu       Dipole_debye                      D             none
alpha    Polarizability_bohr3              bohr^3        none
homo     HOMO_au                           eV            x 27.211386246
lumo     LUMO_au                           eV            x 27.211386246
r2       R2_bohr2                          bohr^2        none
zpve     ZPVE_au                           eV            x 27.211386246
U0       InternalEnergy_0K_au              eV            atomization, x 27.211386246
U        InternalEnergy_298K_au            eV            atomization, x 27.211386246
H        Enthalphy_298K_au                 eV            atomization, x 27.211386246
G        GibbsFreeEnergy_298K_au           eV            atomization, x 27.211386246
cv       Heatcapacity_Cv_cal_mol_K         cal/(mol K)   none
=======  ================================  ============  ==========================

Atomization energy = total energy - sum over atoms of the free-atom reference energy
(:data:`ATOMREF_HARTREE`, QM9's ``atomref.txt``; PyG's ``atomrefs`` are the same numbers in
eV). PyG takes targets 12-15 from MoleculeNet's kcal/mol columns (x 0.04336414 eV); computing
them from Hartree here differs by about 1e-6 relative (rounding of the factors).

Inputs use only elements and geometry (no Mulliken charges or other computed properties):
each molecule is a ``(29, 4)`` float tensor, row ``a`` = ``[Z_a, x_a, y_a, z_a]`` (atomic
number, coordinates in Angstrom), padded with zero rows (``Z = 0``) beyond its atom count.
The graph (complete, distance-featurised) is built by the model (:mod:`mtlbench.models.mpnn`).

Splits (fixed, published; the sizes of Nash-MTL and LibMTL): the molecule ids (the GDB-9 index in
``XYZ_file``, 1..133885, ``Index`` must agree) are sorted, permuted with
``torch.randperm(n, generator=torch.Generator().manual_seed(0))``; the first 10,000 are test,
the next 10,000 val, the remaining 110,831 train. Each split's ids, in that order, are hashed
with :func:`~mtlbench.data.base.ids_sha256`; :data:`SPLIT_SHA256` pins them.

Targets are standardised with the training split's mean and (unbiased) std,
:data:`TARGET_MEAN` / :data:`TARGET_STD`, computed once from the full training split and
written here literally (``tests/data/test_qm9.py`` recomputes them); the env reports MAE in
the units above by scaling back with the std.

The first full :func:`load` parses the CSVs (about 10 s) and caches the tensors at
``<root>/qm9/qm9_v1.pt`` (written atomically, with the SHA-256 of its content inside, checked
on every load). ``load(limit=N)`` without a cache parses only the rows it needs.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.util
import io
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mtlbench.data.base import (
    DatasetCorrupt,
    DatasetNotFound,
    Source,
    Splits,
    TensorMTLDataset,
    ids_sha256,
    register_source,
)

NAME = "qm9"
REVISION = "qm9pack-1.0.3/csv/rule-v1"
DESCRIPTION = (
    "QM9 (Ramakrishnan et al. 2014), 130,831 small organic molecules (up to 29 atoms of H, C, N, "
    "O, F) from the CSVs in PyPI qm9pack; 11 regression targets (mu, alpha, homo, lumo, r2, zpve, "
    "U0, U, H, G, cv; PyG units, atomization energies in eV). Fixed seeded split 110,831 / "
    "10,000 / 10,000 train / val / test. Ships with the package: nothing to download "
    "(`mtlbench data prepare qm9` only pre-builds the parsed cache)."
)

TASKS: tuple[str, ...] = ("mu", "alpha", "homo", "lumo", "r2", "zpve", "U0", "U", "H", "G", "cv")
#: CSV column of each task
COLUMNS: dict[str, str] = {
    "mu": "Dipole_debye",
    "alpha": "Polarizability_bohr3",
    "homo": "HOMO_au",
    "lumo": "LUMO_au",
    "r2": "R2_bohr2",
    "zpve": "ZPVE_au",
    "U0": "InternalEnergy_0K_au",
    "U": "InternalEnergy_298K_au",
    "H": "Enthalphy_298K_au",  # sic, qm9pack's spelling
    "G": "GibbsFreeEnergy_298K_au",
    "cv": "Heatcapacity_Cv_cal_mol_K",
}
UNITS: dict[str, str] = {
    "mu": "D",
    "alpha": "bohr^3",
    "homo": "eV",
    "lumo": "eV",
    "r2": "bohr^2",
    "zpve": "eV",
    "U0": "eV",
    "U": "eV",
    "H": "eV",
    "G": "eV",
    "cv": "cal/(mol K)",
}
#: CODATA 2018 Hartree energy in eV (PyG's HAR2EV)
HARTREE_TO_EV = 27.211386246
HARTREE_TASKS = frozenset({"homo", "lumo", "zpve", "U0", "U", "H", "G"})
#: free-atom reference energies in Hartree (QM9 ``atomref.txt``, B3LYP/6-31G(2df,p))
ATOMREF_HARTREE: dict[str, dict[str, float]] = {
    "U0": {"H": -0.500273, "C": -37.846772, "N": -54.583861, "O": -75.064579, "F": -99.718730},
    "U": {"H": -0.498857, "C": -37.845355, "N": -54.582445, "O": -75.063162, "F": -99.717314},
    "H": {"H": -0.497912, "C": -37.844411, "N": -54.581501, "O": -75.062219, "F": -99.716370},
    "G": {"H": -0.510927, "C": -37.861317, "N": -54.598897, "O": -75.079532, "F": -99.733544},
}
ELEMENTS: tuple[str, ...] = ("H", "C", "N", "O", "F")
ATOMIC_NUMBER: dict[str, int] = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
MAX_ATOMS = 29

CSV_FILES: tuple[str, ...] = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
#: SHA-256 of qm9pack 1.0.3's CSVs (checked by :func:`verify`, not on every load)
SOURCE_SHA256: dict[str, str] = {
    "qm9_part1.csv": "19f0a5d595462d52cd82eef3370f3e9eb55a1f52cb14985657200349568deff3",
    "qm9_part2.csv": "2bca113fdc0b28a13563c80ed9b240e934f3da6c64c64fe74ddb4f0f36036e61",
    "qm9_part3.csv": "9c5efb5733d2af149db8d95d36ff198b4ffed12d9f7b344220a1e5877d5c6a43",
}
NUM_MOLECULES = 130_831

SPLIT_SEED = 0
#: the split rule cuts the seeded permutation in this order; train takes the rest
SPLIT_ORDER: tuple[str, ...] = ("test", "val", "train")
SPLIT_SIZES: dict[str, int] = {"train": 110_831, "val": 10_000, "test": 10_000}
SPLIT_SHA256: dict[str, str] = {
    "train": "45e47178cfde761e01a504c020849a2aed3da957da883d272f9c8281bbd267d0",
    "val": "57695755db4c667aae7f75ccdb619402df154032b91f35b5a6b2bb6b973fa552",
    "test": "9e3a0fbf5eeb26f9eb23fb57b3414072973bab970547233902fe3c06242856ca",
}
#: training-split mean and unbiased std of each target, in :data:`UNITS`
TARGET_MEAN: dict[str, float] = {
    "mu": 2.6724556658335663,
    "alpha": 75.28425287148902,
    "homo": -6.5364625555468985,
    "lumo": 0.3208451534455102,
    "r2": 1189.7218385316382,
    "zpve": 4.056065861799935,
    "U0": -76.11176557274922,
    "U": -76.57619082410443,
    "H": -77.01386549292786,
    "G": -70.83294651085366,
    "cv": 31.621576779060007,
}
TARGET_STD: dict[str, float] = {
    "mu": 1.4989352570544008,
    "alpha": 8.17171771531183,
    "homo": 0.5970824929173151,
    "lumo": 1.2741437797883042,
    "r2": 280.8633757341129,
    "zpve": 0.9021151249783032,
    "U0": 10.322702132918081,
    "U": 10.414163965932154,
    "H": 10.48828782940589,
    "G": 9.497171889092165,
    "cv": 4.0651745880349,
}

CACHE_FORMAT = "mtlbench-qm9-v1"
CACHE_PATH = Path("qm9") / "qm9_v1.pt"

_NEEDED = ("XYZ_file", "Index", "N_atoms", "Elements", "XYZ_Ang", *COLUMNS.values())
_ID_RE = re.compile(rb'^"?dsgdb9nsd_(\d+)\.xyz"?,')
_FILE_RE = re.compile(r"dsgdb9nsd_(\d+)\.xyz")

log = logging.getLogger(__name__)

register_source(
    Source(
        name="qm9",
        url="https://pypi.org/project/qm9pack/",
        files="the qm9pack package (its CSVs; `pip install qm9pack`)",
        bundled=True,
    )
)


# ------------------------------------------------------------------------------ parsing
@dataclass(frozen=True)
class Molecules:
    """Parsed molecules sorted by id: the cache's content."""

    ids: torch.Tensor  # (N,) int64, GDB-9 index
    z: torch.Tensor  # (N, 29) uint8 atomic numbers, 0 = padding
    pos: torch.Tensor  # (N, 29, 3) float32 coordinates in Angstrom, 0 for padding
    targets: torch.Tensor  # (N, 11) float64 in UNITS, columns in TASKS order

    def __len__(self) -> int:
        return self.ids.shape[0]


def source_dir(source: str | os.PathLike[str] | None = None) -> Path:
    """The folder with ``qm9_part{1,2,3}.csv``: ``source``, else ``qm9pack``'s package data."""
    if source is not None:
        folder = Path(source).expanduser()
    else:
        # find_spec locates the package without importing it (its __init__ needs pkg_resources)
        module_spec = importlib.util.find_spec("qm9pack")
        if module_spec is None or not module_spec.submodule_search_locations:
            raise DatasetNotFound(
                NAME, Path("<site-packages>"), "the PyPI package 'qm9pack' (pip install qm9pack)"
            )
        folder = Path(next(iter(module_spec.submodule_search_locations))) / "data"
    for name in CSV_FILES:
        if not (folder / name).is_file():
            raise DatasetNotFound(NAME, folder, name)
    return folder


@dataclass(frozen=True)
class _Scan:
    """The CSVs split into rows (each row is one line), with the molecule id of every row."""

    folder: Path
    header: list[str]
    lines: list[bytes]
    ids: np.ndarray  # (rows,) int64, file order


def _scan(source: str | os.PathLike[str] | None = None) -> _Scan:
    """Read the CSVs once: header, raw data lines, and the id in each line's first field."""
    folder = source_dir(source)
    header: list[str] | None = None
    lines: list[bytes] = []
    for name in CSV_FILES:
        path = folder / name
        data = path.read_bytes()
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        raw = data.split(b"\n")
        this_header = next(csv.reader([raw[0].decode()]))
        if header is None:
            header = this_header
            missing = [c for c in _NEEDED if c not in header]
            if missing:
                raise DatasetCorrupt(NAME, path, f"header lacks the columns {missing}")
        elif this_header != header:
            raise DatasetCorrupt(NAME, path, f"header differs from {CSV_FILES[0]}'s")
        lines.extend(line for line in raw[1:] if line)
    assert header is not None
    matches = [_ID_RE.match(line[:40]) for line in lines]  # matching the short head is ~5x faster
    for row, match in enumerate(matches):
        if match is None:
            raise DatasetCorrupt(
                NAME, f"{folder} (data row {row + 1})", "the first field is not 'dsgdb9nsd_<index>.xyz'"
            )
    ids = np.array([int(m.group(1)) for m in matches], dtype=np.int64)  # type: ignore[union-attr]
    ordered = np.sort(ids)
    dup = ordered[1:][np.diff(ordered) == 0]
    if dup.size:
        raise DatasetCorrupt(NAME, folder, f"molecule dsgdb9nsd_{int(dup[0]):06d} appears twice")
    return _Scan(folder, header, lines, ids)


def molecule_ids(source: str | os.PathLike[str] | None = None) -> np.ndarray:
    """All molecule ids in the source, sorted (reads only the first field of each row)."""
    return np.sort(_scan(source).ids)


_STRIP = str.maketrans("", "", "[]' \"")


def parse_table(table: pd.DataFrame, where: str = "CSV") -> Molecules:
    """Turn qm9pack's columns (a DataFrame of the raw CSV) into :class:`Molecules` sorted by id.

    Vectorised: the element and coordinate lists of all rows are joined and parsed at once.
    """
    n_rows = len(table)
    try:
        mol_id = table["Index"].to_numpy(dtype=np.int64)
        names = table["XYZ_file"].tolist()
        file_id = np.array([int(_FILE_RE.fullmatch(f).group(1)) for f in names], dtype=np.int64)  # type: ignore[union-attr]
        n_atoms = table["N_atoms"].to_numpy(dtype=np.int64)
        raw = table[list(COLUMNS.values())].to_numpy(dtype=np.float64)
    except (ValueError, TypeError, AttributeError) as err:
        raise DatasetCorrupt(NAME, where, f"a field has the wrong type ({err})") from err
    bad = np.flatnonzero(file_id != mol_id)
    if bad.size:
        raise DatasetCorrupt(NAME, where, f"Index {mol_id[bad[0]]} != XYZ_file index {file_id[bad[0]]}")
    elements = [str(e) for e in table["Elements"].tolist()]
    coords = [str(c) for c in table["XYZ_Ang"].tolist()]
    n_elements = np.array([e.count(",") + 1 for e in elements], dtype=np.int64)
    n_coords = np.array([c.count(",") + 1 for c in coords], dtype=np.int64)
    bad = np.flatnonzero(
        (n_atoms < 1) | (n_atoms > MAX_ATOMS) | (n_elements != n_atoms) | (n_coords != 3 * n_atoms)
    )
    if bad.size:
        i = bad[0]
        raise DatasetCorrupt(
            NAME,
            where,
            f"molecule {mol_id[i]}: N_atoms={n_atoms[i]} but {n_elements[i]} elements and {n_coords[i]} "
            f"coordinates (expected 1..{MAX_ATOMS} atoms, 3 coordinates each)",
        )
    symbols = ",".join(elements).translate(_STRIP).split(",") if n_rows else []
    try:
        atomic = np.array([ATOMIC_NUMBER[s] for s in symbols], dtype=np.uint8)
    except KeyError as err:
        raise DatasetCorrupt(NAME, where, f"unknown element {err.args[0]!r}; QM9 has {ELEMENTS}") from err
    # np.fromstring (text mode; twice as fast as float() per item) raises on a non-number in
    # recent NumPy and stops short with a DeprecationWarning in older ones: handle both
    flat = ",".join(coords).translate(_STRIP)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            xyz = np.fromstring(flat, dtype=np.float64, sep=",") if n_rows else np.zeros(0)
    except ValueError:
        xyz = np.zeros(0)
    if xyz.size != 3 * int(n_atoms.sum()):
        raise DatasetCorrupt(NAME, where, "XYZ_Ang holds something that is not a number")
    # scatter the flat per-atom arrays into padded (rows, 29) slots
    row = np.repeat(np.arange(n_rows), n_atoms)
    slot = np.arange(row.size) - np.repeat(np.cumsum(n_atoms) - n_atoms, n_atoms)
    z = torch.zeros(n_rows, MAX_ATOMS, dtype=torch.uint8)
    pos = torch.zeros(n_rows, MAX_ATOMS, 3, dtype=torch.float32)
    z[row, slot] = torch.from_numpy(atomic)
    pos[row, slot] = torch.from_numpy(xyz.reshape(-1, 3)).to(torch.float32)
    ids = torch.tensor(mol_id, dtype=torch.int64)
    order = torch.argsort(ids)
    return Molecules(
        ids[order],
        z[order],
        pos[order],
        convert_targets(torch.tensor(raw, dtype=torch.float64)[order], z[order]),
    )


def convert_targets(raw: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Raw CSV values (N, 11; columns in TASKS order) -> targets in :data:`UNITS`.

    Hartree quantities become eV; U0, U, H, G become atomization energies (total energy
    minus the free-atom references of the molecule's atoms).
    """
    out = raw.to(torch.float64).clone()
    counts = {e: (z == ATOMIC_NUMBER[e]).sum(dim=1).to(torch.float64) for e in ELEMENTS}
    for j, task in enumerate(TASKS):
        if task in ATOMREF_HARTREE:
            ref = ATOMREF_HARTREE[task]
            out[:, j] = out[:, j] - sum(counts[e] * ref[e] for e in ELEMENTS)
        if task in HARTREE_TASKS:
            out[:, j] = out[:, j] * HARTREE_TO_EV
    return out


def parse_csv(source: str | os.PathLike[str] | None = None, ids: Iterable[int] | None = None) -> Molecules:
    """Parse the CSVs (all rows, or only those whose molecule id is in ``ids``)."""
    return _parse(_scan(source), ids)


def _parse(scan: _Scan, ids: Iterable[int] | None) -> Molecules:
    lines = scan.lines
    if ids is not None:
        wanted = np.fromiter(ids, dtype=np.int64)
        keep = np.isin(scan.ids, wanted)
        absent = np.setdiff1d(wanted, scan.ids[keep])
        if absent.size:
            raise DatasetCorrupt(NAME, scan.folder, f"molecules {absent[:5].tolist()} are not in the CSVs")
        lines = [lines[i] for i in np.flatnonzero(keep)]
    body = io.BytesIO(b"\n".join([",".join(scan.header).encode(), *lines]))
    try:
        table = pd.read_csv(
            body, usecols=list(_NEEDED), dtype={c: str for c in ("XYZ_file", "Elements", "XYZ_Ang")}
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise DatasetCorrupt(NAME, scan.folder, f"unparsable CSV ({err})") from err
    return parse_table(table, where=str(scan.folder))


# ------------------------------------------------------------------------------ splits
def split_ids(all_ids: Sequence[int] | np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
    """The published split rule: ``{split: ids}`` in permutation order (see the module docstring)."""
    ordered = torch.sort(torch.as_tensor(np.asarray(all_ids), dtype=torch.int64)).values
    n = ordered.numel()
    if n <= SPLIT_SIZES["test"] + SPLIT_SIZES["val"]:
        raise ValueError(f"the QM9 split rule needs more than 20,000 molecules, got {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    out, start = {}, 0
    for split in SPLIT_ORDER:
        stop = n if split == "train" else start + SPLIT_SIZES[split]
        out[split] = ordered[perm[start:stop]]
        start = stop
    return out


def target_stats(targets: torch.Tensor) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and unbiased std per task of a (N, 11) float64 target matrix."""
    t = targets.to(torch.float64)
    mean, std = t.mean(dim=0), t.std(dim=0)
    return dict(zip(TASKS, mean.tolist())), dict(zip(TASKS, std.tolist()))


# ------------------------------------------------------------------------------ cache
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_sha256(mols: Molecules) -> str:
    """SHA-256 over the cached tensors (shape, dtype and bytes of each, in a fixed order)."""
    h = hashlib.sha256(CACHE_FORMAT.encode())
    for t in (mols.ids, mols.z, mols.pos, mols.targets):
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def write_cache(path: Path, mols: Molecules) -> None:
    """Write the cache atomically (temp file + rename), with the SHA-256 of its content inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CACHE_FORMAT,
        "tasks": list(TASKS),
        "ids": mols.ids,
        "z": mols.z,
        "pos": mols.pos,
        "targets": mols.targets,
        "sha256": content_sha256(mols),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is as readable as the data root
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_cache(path: Path) -> Molecules:
    """Read a cache written by :func:`write_cache`; any damage raises :class:`DatasetCorrupt`."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        mols = Molecules(payload["ids"], payload["z"], payload["pos"], payload["targets"])
        recorded = payload["sha256"]
    except Exception as err:  # unreadable zip, bad pickle, missing key: all mean "rebuild it"
        raise DatasetCorrupt(NAME, path, f"unreadable ({type(err).__name__}: {err})") from err
    if payload.get("format") != CACHE_FORMAT or tuple(payload.get("tasks", ())) != TASKS:
        raise DatasetCorrupt(NAME, path, f"not a {CACHE_FORMAT} cache")
    n = len(mols)
    shapes = (tuple(mols.z.shape), tuple(mols.pos.shape), tuple(mols.targets.shape))
    if shapes != ((n, MAX_ATOMS), (n, MAX_ATOMS, 3), (n, len(TASKS))):
        raise DatasetCorrupt(NAME, path, f"tensor shapes {shapes} do not match {n} molecules")
    if content_sha256(mols) != recorded:
        raise DatasetCorrupt(
            NAME, path, "its content's sha256 differs from the one recorded when it was written"
        )
    return mols


def build_cache(root: Path, source: str | os.PathLike[str] | None = None) -> Molecules:
    """Parse every molecule and write ``<root>/qm9/qm9_v1.pt`` (about 10 s)."""
    log.info("qm9: parsing %s (first use; cached afterwards)", source_dir(source))
    mols = parse_csv(source)
    write_cache(Path(root) / CACHE_PATH, mols)
    return mols


# ------------------------------------------------------------------------------ contract
def pack_inputs(z: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``(N, 29)`` atomic numbers and ``(N, 29, 3)`` positions -> the ``(N, 29, 4)`` model input."""
    return torch.cat([z.to(torch.float32).unsqueeze(-1), pos.to(torch.float32)], dim=-1)


def standardise(targets: torch.Tensor) -> torch.Tensor:
    """``(N, 11)`` targets in :data:`UNITS` -> standardised with the published training stats."""
    mean = torch.tensor([TARGET_MEAN[t] for t in TASKS], dtype=torch.float64)
    std = torch.tensor([TARGET_STD[t] for t in TASKS], dtype=torch.float64)
    return (targets.to(torch.float64) - mean) / std


def _dataset(mols: Molecules, ids: torch.Tensor) -> TensorMTLDataset:
    rows = torch.searchsorted(mols.ids, ids)
    if (rows >= len(mols)).any() or not torch.equal(mols.ids[rows.clamp_max(len(mols) - 1)], ids):
        raise DatasetCorrupt(NAME, "split", "a split id is missing from the parsed molecules")
    y = standardise(mols.targets[rows]).to(torch.float32)
    return TensorMTLDataset(
        pack_inputs(mols.z[rows], mols.pos[rows]), {t: y[:, j].contiguous() for j, t in enumerate(TASKS)}
    )


def load(root: Path | None = None, *, name: str = NAME, limit: int | None = None, **kwargs: Any) -> Splits:
    """The three splits in memory; ``limit`` keeps the first N molecules of each split.

    Reads ``<root>/qm9/qm9_v1.pt`` when present; otherwise parses ``qm9pack``'s CSVs (and,
    without ``limit``, writes that cache). The split manifest is checked against
    :data:`SPLIT_SHA256`.
    """
    del name
    if kwargs:
        raise TypeError(f"qm9.load() got unknown arguments {sorted(kwargs)}; it takes 'limit'")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    cache = Path(root) / CACHE_PATH if root is not None else None
    if cache is None or not cache.is_file():
        if limit is not None:  # no cache: parse only the rows kept (memoised per process, they are few)
            folder = source_dir()
            mols, split_lists, manifest = _limited(limit, folder, _stamp(folder))
            return _splits(mols, split_lists, dict(manifest), limited=True)
        mols = parse_csv() if cache is None else build_cache(Path(root))  # type: ignore[arg-type]
    else:
        mols = read_cache(cache)
    split_lists = split_ids(mols.ids)
    manifest = _check_manifest(split_lists, where=str(cache or source_dir()))
    if limit is not None:
        split_lists = {s: ids[:limit] for s, ids in split_lists.items()}
    return _splits(mols, split_lists, manifest, limited=limit is not None)


def _splits(
    mols: Molecules, split_lists: Mapping[str, torch.Tensor], manifest: dict[str, str], limited: bool
) -> Splits:
    data = {s: _dataset(mols, ids) for s, ids in split_lists.items()}
    info = {
        "tasks": TASKS,
        "units": dict(UNITS),
        "mean": dict(TARGET_MEAN),
        "std": dict(TARGET_STD),
        "inputs": "(29, 4) per molecule: [atomic number, x, y, z in Angstrom], zero rows = padding",
        "ids": {s: ids.tolist() for s, ids in split_lists.items()} if limited else None,
    }
    return Splits(data["train"], data["val"], data["test"], manifest=manifest, info=info)


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Size and mtime of each CSV: a changed source never hits a stale memo."""
    return tuple((n, (folder / n).stat().st_size, (folder / n).stat().st_mtime_ns) for n in CSV_FILES)


@functools.lru_cache(maxsize=4)
def _limited(
    limit: int, folder: Path, stamp: tuple[tuple[str, int, int], ...]
) -> tuple[Molecules, dict[str, torch.Tensor], dict[str, str]]:
    """The first ``limit`` molecules of each split, the limited id lists and the full manifest."""
    del stamp  # part of the memo key only
    scan = _scan(folder)
    split_lists = split_ids(scan.ids)
    manifest = _check_manifest(split_lists, where=str(folder))
    split_lists = {s: ids[:limit] for s, ids in split_lists.items()}
    return _parse(scan, torch.cat(list(split_lists.values())).tolist()), split_lists, manifest


def _check_manifest(split_lists: Mapping[str, torch.Tensor], where: str) -> dict[str, str]:
    manifest = {}
    for split, ids in split_lists.items():
        digest = ids_sha256(ids.tolist())
        expected = SPLIT_SHA256[split]
        if digest != expected:
            raise DatasetCorrupt(
                NAME, where, f"split {split!r} id list hash {digest[:12]} != published {expected[:12]}"
            )
        manifest[split] = digest
    return manifest


def verify(root: Path | None = None) -> list[str]:
    """Check the source CSVs' hashes and, when present, the cache and the split manifest."""
    problems: list[str] = []
    try:
        folder = source_dir()
    except DatasetNotFound as err:
        return [str(err)]
    for file, expected in SOURCE_SHA256.items():
        if _sha256_file(folder / file) != expected:
            problems.append(f"{folder / file}: sha256 differs from qm9pack 1.0.3's")
    cache = Path(root) / CACHE_PATH if root is not None else None
    try:
        if cache is not None and cache.is_file():
            mols = read_cache(cache)
            if len(mols) != NUM_MOLECULES:
                problems.append(f"{cache}: {len(mols)} molecules, expected {NUM_MOLECULES}")
            _check_manifest(split_ids(mols.ids), where=str(cache))
        else:
            _check_manifest(split_ids(molecule_ids()), where=str(folder))
    except DatasetCorrupt as err:
        problems.append(str(err))
    return problems


def prepare(root: Path | None = None, source: Path | None = None) -> None:
    """Build the parsed-tensor cache under ``root`` from qm9pack's CSVs (or from ``source``)."""
    if root is None:
        raise ValueError("qm9.prepare needs a data root to write its cache to")
    mols = build_cache(Path(root), source)
    log.info("qm9: cached %d molecules at %s", len(mols), Path(root) / CACHE_PATH)

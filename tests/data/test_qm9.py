"""QM9 loader: parsing qm9pack's CSV format, unit conversion, the split rule, the cache.

The default tests never parse all 130,831 molecules: they use a synthetic CSV written here in
exactly qm9pack's format, the real package's id column, and a few real rows. The full parse
(standardisation statistics, cache round trip on the real data) is marked ``slow``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mtlbench.data import qm9
from mtlbench.data.base import DatasetCorrupt, ids_sha256

HEADER = (
    "XYZ_file,Index,SMILES,InChi,N_atoms,Stoichiometry,Elements,XYZ_Ang,Mulliken_pop,Harmonic_Freq_cmi,"
    "RotA_GHz,RotB_GHz,RotC_GHz,Dipole_debye,Polarizability_bohr3,HOMO_au,LUMO_au,HOMO_LUMO_gap_au,"
    "R2_bohr2,ZPVE_au,InternalEnergy_0K_au,InternalEnergy_298K_au,Enthalphy_298K_au,"
    "GibbsFreeEnergy_298K_au,Heatcapacity_Cv_cal_mol_K"
)
# Rows 1 (CH4), 3 (H2O) and 184 (CF4) of qm9pack 1.0.3, verbatim.
CH4 = (
    "\"dsgdb9nsd_000001.xyz\",1,\"C\",\"InChI=1S/CH4/h1H4\",5,\"[4,1,0,0,0]\",\"['C','H','H','H','H']\","
    '"[[-0.0126981359,1.0858041578,0.0080009958],[0.002150416,-0.0060313176,0.0019761204],'
    "[1.0117308433,1.4637511618,0.0002765748],[-0.540815069,1.4475266138,-0.8766437152],"
    '[-0.5238136345,1.4379326443,0.9063972942]]","[-0.535689,0.133921,0.133922,0.133923,0.133923]",'
    '"[1341.307,1341.3284,1341.365,1562.6731,1562.7453,3038.3205,3151.6034,3151.6788,3151.7078]",'
    "157.7118,157.70997,157.70699,0.,13.21,-0.3877,0.1171,0.5048,35.3641,0.044749,-40.47893,-40.476062,"
    "-40.475117,-40.498597,6.469"
)
H2O = (
    '"dsgdb9nsd_000003.xyz",3,"O","InChI=1S/H2O/h1H2",3,"[2,0,0,1,0]","[\'O\',\'H\',\'H\']",'
    '"[[-0.0343604951,0.9775395708,0.0076015923],[0.0647664923,0.0205721989,0.0015346341],'
    '[0.8717903737,1.3007924048,0.0006931336]]","[-0.589706,0.294853,0.294853]",'
    '"[1671.4222,3803.6305,3907.698]",799.58812,437.90386,282.94545,1.8511,6.31,-0.2928,0.0687,0.3615,'
    "19.0002,0.021375,-76.404702,-76.401867,-76.400922,-76.422349,6.002"
)
CF4 = (
    '"dsgdb9nsd_000184.xyz",184,"FC(F)(F)F","InChI=1S/CF4/c2-1(3,4)5",5,"[0,1,0,0,4]",'
    "\"['F','C','F','F','F']\",\"[[0.0010921821,0.0735451051,0.0024996288],"
    "[-0.0168887554,1.3947684349,0.009692655],[1.2227713731,1.8522134169,0.0003138912],"
    '[-0.6559701536,1.8325027456,-1.0609125843],[-0.6354026161,1.8208575876,1.0969063093]]",'
    '"[-0.063897,0.255845,-0.063938,-0.064034,-0.063976]","[429.729,430.4483,625.9373,626.1957,'
    '626.5807,914.9479,1290.7011,1290.8863,1291.31]",5.71326,5.71279,5.71267,0.0003,15.93,-0.4286,0.1935,'
    "0.6221,279.3208,0.017147,-437.484875,-437.480956,-437.480011,-437.512059,12.639"
)


def write_source(folder: Path, parts: tuple[list[str], list[str], list[str]]) -> Path:
    """Write qm9_part{1,2,3}.csv with the given data lines (qm9pack's layout, trailing newline)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in zip(qm9.CSV_FILES, parts):
        (folder / name).write_text("\n".join([HEADER, *lines]) + "\n")
    return folder


@pytest.fixture(scope="module")
def real() -> qm9._Scan:
    """qm9pack's CSVs read once for the module (about 1 s: ids only, no row is parsed)."""
    return qm9._scan()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    # out of id order across the files, so the parser's sorting is exercised
    return write_source(tmp_path / "src", ([CF4], [H2O], [CH4]))


# ------------------------------------------------------------------------------ parsing
def test_parse_synthetic_csv(source: Path) -> None:
    mols = qm9.parse_csv(source)
    assert mols.ids.tolist() == [1, 3, 184]
    assert mols.z.shape == (3, qm9.MAX_ATOMS) and mols.z.dtype == torch.uint8
    assert mols.pos.shape == (3, qm9.MAX_ATOMS, 3)
    assert mols.z[0, :6].tolist() == [6, 1, 1, 1, 1, 0]
    assert mols.z[1, :4].tolist() == [8, 1, 1, 0]
    assert mols.z[2, :6].tolist() == [9, 6, 9, 9, 9, 0]
    assert ((mols.z > 0).sum(1)).tolist() == [5, 3, 5]
    assert mols.pos[0, 2].tolist() == pytest.approx([1.0117308433, 1.4637511618, 0.0002765748], abs=1e-6)
    assert (mols.pos[0, 5:] == 0).all() and (mols.pos[1, 3:] == 0).all()
    assert qm9.molecule_ids(source).tolist() == [1, 3, 184]


def test_parse_selected_rows(source: Path) -> None:
    mols = qm9.parse_csv(source, ids=[184, 1])
    assert mols.ids.tolist() == [1, 184]
    with pytest.raises(DatasetCorrupt, match=r"\[2\] are not in the CSVs"):
        qm9.parse_csv(source, ids=[2])


def test_units_and_atomization_energy_hand_example(source: Path) -> None:
    ch4 = dict(zip(qm9.TASKS, qm9.parse_csv(source).targets[0].tolist()))
    ev = 27.211386246
    # U0 atomization energy of CH4: E(CH4) - E(C) - 4 E(H), from atomref.txt, in eV
    assert ch4["U0"] == pytest.approx((-40.47893 - (-37.846772) - 4 * (-0.500273)) * ev, abs=1e-9)
    assert ch4["U0"] == pytest.approx(-17.1722, abs=1e-3)  # PyG's QM9 y[0, 12]
    assert ch4["G"] == pytest.approx((-40.498597 - (-37.861317) - 4 * (-0.510927)) * ev, abs=1e-9)
    assert ch4["homo"] == pytest.approx(-0.3877 * ev)
    assert ch4["lumo"] == pytest.approx(0.1171 * ev)
    assert ch4["zpve"] == pytest.approx(0.044749 * ev)
    assert (ch4["mu"], ch4["alpha"], ch4["r2"], ch4["cv"]) == pytest.approx((0.0, 13.21, 35.3641, 6.469))


def test_atomization_counts_fluorine(source: Path) -> None:
    cf4 = dict(zip(qm9.TASKS, qm9.parse_csv(source).targets[2].tolist()))
    expected = (-437.484875 - (-37.846772) - 4 * (-99.718730)) * 27.211386246
    assert cf4["U0"] == pytest.approx(expected, abs=1e-9)


def _bad(line: str, old: str, new: str) -> str:
    assert old in line
    return line.replace(old, new, 1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (_bad(CH4, '",1,"C",', '",2,"C",'), "Index 2 != XYZ_file index 1"),
        (_bad(CH4, '"InChI=1S/CH4/h1H4",5,', '"InChI=1S/CH4/h1H4",6,'), "N_atoms=6 but 5 elements"),
        (_bad(CH4, "'C','H','H'", "'C','S','H'"), "unknown element 'S'"),
        (_bad(CH4, "[[-0.0126981359", "[[abc"), "XYZ_Ang holds something that is not a number"),
        (_bad(CH4, '"dsgdb9nsd_000001.xyz"', '"molecule_1.xyz"'), "first field"),
    ],
    ids=["index", "n_atoms", "element", "coordinate", "file_name"],
)
def test_bad_rows_raise_one_clear_error(tmp_path: Path, line: str, message: str) -> None:
    folder = write_source(tmp_path / "bad", ([line], [H2O], [CF4]))
    with pytest.raises(DatasetCorrupt, match=message):
        qm9.parse_csv(folder)


def test_missing_column_and_file(tmp_path: Path) -> None:
    folder = write_source(tmp_path / "nocol", ([CH4], [H2O], [CF4]))
    text = (folder / "qm9_part1.csv").read_text().replace("HOMO_au", "HOMO")
    (folder / "qm9_part1.csv").write_text(text)
    with pytest.raises(DatasetCorrupt, match="lacks the columns"):
        qm9.parse_csv(folder)
    (folder / "qm9_part3.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"qm9_part3\.csv"):
        qm9.parse_csv(folder)


def test_duplicate_molecule_is_an_error(tmp_path: Path) -> None:
    folder = write_source(tmp_path / "dup", ([CH4], [H2O], [CH4]))
    with pytest.raises(DatasetCorrupt, match="appears twice"):
        qm9.parse_csv(folder)


def test_real_package_first_rows(real: qm9._Scan) -> None:
    assert real.lines[0].startswith(b'"dsgdb9nsd_000001.xyz",1,"C",')
    mols = qm9._parse(real, [1, 2, 3])
    assert mols.ids.tolist() == [1, 2, 3]
    assert mols.z[:, :5].tolist() == [[6, 1, 1, 1, 1], [7, 1, 1, 1, 0], [8, 1, 1, 0, 0]]
    u0 = mols.targets[:, qm9.TASKS.index("U0")]
    assert u0[0].item() == pytest.approx(-17.1722, abs=1e-3)


# ------------------------------------------------------------------------------ inputs
def test_pack_inputs_layout_and_mask(source: Path) -> None:
    mols = qm9.parse_csv(source)
    x = qm9.pack_inputs(mols.z, mols.pos)
    assert x.shape == (3, qm9.MAX_ATOMS, 4) and x.dtype == torch.float32
    assert torch.equal(x[..., 0], mols.z.float())
    assert torch.equal(x[..., 1:], mols.pos)
    assert ((x[..., 0] > 0).sum(1)).tolist() == [5, 3, 5]


def test_standardise_uses_published_stats() -> None:
    mean = torch.tensor([qm9.TARGET_MEAN[t] for t in qm9.TASKS], dtype=torch.float64)
    std = torch.tensor([qm9.TARGET_STD[t] for t in qm9.TASKS], dtype=torch.float64)
    y = torch.stack([mean, mean + std])
    assert torch.allclose(qm9.standardise(y), torch.tensor([[0.0] * 11, [1.0] * 11], dtype=torch.float64))


def test_target_stats_are_unbiased_mean_and_std() -> None:
    y = torch.arange(22, dtype=torch.float64).view(2, 11)
    mean, std = qm9.target_stats(y)
    assert mean["mu"] == 5.5 and std["mu"] == pytest.approx(11 / 2**0.5)


# ------------------------------------------------------------------------------ splits
def test_split_rule_sizes_disjoint_and_published_hashes(real: qm9._Scan) -> None:
    all_ids = torch.sort(torch.from_numpy(real.ids)).values
    assert all_ids.numel() == qm9.NUM_MOLECULES == 130_831
    splits = qm9.split_ids(all_ids)
    assert {s: len(v) for s, v in splits.items()} == qm9.SPLIT_SIZES
    assert sum(qm9.SPLIT_SIZES.values()) == qm9.NUM_MOLECULES
    union = torch.cat(list(splits.values()))
    assert torch.equal(torch.sort(union).values, all_ids)  # disjoint and complete
    # the rule, written out: seed-0 permutation of the sorted ids, test | val | train
    perm = torch.randperm(all_ids.numel(), generator=torch.Generator().manual_seed(0))
    assert torch.equal(splits["test"], all_ids[perm[:10_000]])
    assert torch.equal(splits["val"], all_ids[perm[10_000:20_000]])
    assert torch.equal(splits["train"], all_ids[perm[20_000:]])
    assert {s: ids_sha256(v.tolist()) for s, v in splits.items()} == qm9.SPLIT_SHA256


def test_load_limit_parses_only_what_it_needs(tmp_path: Path, real: qm9._Scan) -> None:
    splits = qm9.load(tmp_path, limit=16)
    assert not (tmp_path / qm9.CACHE_PATH).exists()  # a limited load writes no cache
    assert splits.manifest == qm9.SPLIT_SHA256
    expected_ids = {s: v[:16].tolist() for s, v in qm9.split_ids(real.ids).items()}
    assert splits.info["ids"] == expected_ids
    assert splits.info["std"] == qm9.TARGET_STD and splits.info["units"]["U0"] == "eV"
    x, y = next(
        splits.test.batches(16, shuffle=False, generator=None, drop_last=False, device=torch.device("cpu"))
    )
    assert x.shape == (16, qm9.MAX_ATOMS, 4) and set(y) == set(qm9.TASKS)
    assert all(v.shape == (16,) and v.dtype == torch.float32 for v in y.values())
    # the standardised targets undo to the parsed values
    raw = qm9._parse(real, expected_ids["test"])
    rows = torch.searchsorted(raw.ids, torch.tensor(expected_ids["test"]))
    for j, task in enumerate(qm9.TASKS):
        back = y[task].double() * qm9.TARGET_STD[task] + qm9.TARGET_MEAN[task]
        assert torch.allclose(back, raw.targets[rows, j], rtol=1e-5, atol=1e-5 * qm9.TARGET_STD[task])


def test_load_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="limit"):
        qm9.load(tmp_path, limit=0)
    with pytest.raises(TypeError, match="unknown arguments"):
        qm9.load(tmp_path, size=3)


# ------------------------------------------------------------------------------ cache
def test_cache_round_trip_and_corruption(tmp_path: Path, source: Path) -> None:
    mols = qm9.parse_csv(source)
    path = tmp_path / qm9.CACHE_PATH
    qm9.write_cache(path, mols)
    assert [p.name for p in path.parent.iterdir()] == ["qm9_v1.pt"]  # no temp file left
    back = qm9.read_cache(path)
    for field in ("ids", "z", "pos", "targets"):
        assert torch.equal(getattr(back, field), getattr(mols, field))
    # a changed value, saved without updating the recorded hash
    payload = torch.load(path, weights_only=True)
    payload["pos"][0, 0, 0] += 1.0
    torch.save(payload, path)
    with pytest.raises(DatasetCorrupt, match="sha256 differs"):
        qm9.read_cache(path)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(DatasetCorrupt, match="unreadable"):
        qm9.read_cache(path)


def test_module_contract() -> None:
    assert qm9.NAME == "qm9" and "130,831" in qm9.DESCRIPTION
    assert callable(qm9.load) and callable(qm9.verify) and callable(qm9.prepare)
    assert len(qm9.TASKS) == 11 and set(qm9.COLUMNS) == set(qm9.TASKS) == set(qm9.UNITS)
    assert set(qm9.TARGET_MEAN) == set(qm9.TARGET_STD) == set(qm9.TASKS)
    assert all(s > 0 for s in qm9.TARGET_STD.values())


# ------------------------------------------------------------------------------ full data
@pytest.mark.slow
def test_full_load_cache_and_published_statistics(tmp_path: Path) -> None:
    splits = qm9.load(tmp_path)  # parses all 130,831 molecules and writes the cache
    assert (tmp_path / qm9.CACHE_PATH).is_file()
    assert {s: len(splits[s]) for s in ("train", "val", "test")} == qm9.SPLIT_SIZES
    mols = qm9.read_cache(tmp_path / qm9.CACHE_PATH)
    assert len(mols) == qm9.NUM_MOLECULES
    train_rows = torch.searchsorted(mols.ids, qm9.split_ids(mols.ids)["train"])
    mean, std = qm9.target_stats(mols.targets[train_rows])
    for task in qm9.TASKS:
        assert qm9.TARGET_MEAN[task] == pytest.approx(mean[task], rel=1e-12, abs=1e-12)
        assert qm9.TARGET_STD[task] == pytest.approx(std[task], rel=1e-12)
    # training statistics only: the all-molecule mean differs
    all_mean, _ = qm9.target_stats(mols.targets)
    assert all_mean["r2"] != pytest.approx(qm9.TARGET_MEAN["r2"], rel=1e-9)
    # standardised training targets have mean 0, std 1
    y = torch.stack([splits.train.targets[t].double() for t in qm9.TASKS], dim=1)
    assert torch.allclose(y.mean(0), torch.zeros(11, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(y.std(0), torch.ones(11, dtype=torch.float64), atol=1e-5)
    again = qm9.load(tmp_path)  # from the cache
    assert torch.equal(again.test.inputs, splits.test.inputs)
    assert qm9.verify(tmp_path) == []

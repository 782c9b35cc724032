"""XTREME PAWS-X / UD-POS loaders: release formats, XTREME's preprocessing, injectable tokenizer."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest
import torch

from mtlbench.data import DatasetCorrupt, DatasetNotFound, load_dataset, xtreme
from mtlbench.evaluation.metrics import UDPOS_LABELS
from tests.data.text_fixtures import write_pawsx, write_udpos, write_vocab

pytest.importorskip("transformers")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("xtreme")
    write_pawsx(r)
    write_udpos(r, long_sentence=30)
    write_vocab(r / "vocab.txt")
    return r


@pytest.fixture(scope="module")
def tok(root: Path) -> object:
    return xtreme.resolve_tokenizer(str(root / "vocab.txt"))


# ----------------------------------------------------------------------------- PAWS-X
def test_pawsx_pairs_are_encoded_per_language(root: Path, tok: object) -> None:
    splits = load_dataset("pawsx", str(root), tokenizer=tok, max_length=24)
    assert splits.info["split_sizes"]["val"] == {"en": 4, "zh": 4, "de": 4, "es": 4}
    x, y = next(splits.val.batches(4, shuffle=False, generator=None, drop_last=False, device=CPU))
    assert set(x) == {"en", "zh", "de", "es"}
    ids = x["de"]["input_ids"]
    assert ids.shape == (4, 24) and (ids[:, 0] == tok.cls_token_id).all()  # type: ignore[attr-defined]
    assert (x["de"]["token_type_ids"].sum(1) > 0).all()  # a second segment
    assert ((ids != tok.pad_token_id) == x["de"]["attention_mask"].bool()).all()  # type: ignore[attr-defined]
    assert (ids != tok.unk_token_id).all()  # type: ignore[attr-defined]  # the vocab covers the fixture
    ids_, _, _, labels = xtreme.read_pawsx(root / "pawsx" / "de" / "dev_2k.tsv")
    assert y["de"].tolist() == labels and ids_ == ["1", "2", "3", "4"]


def test_pawsx_train_files_follow_the_release(root: Path) -> None:
    assert xtreme._pawsx_file(root, "en", "train").name == "train.tsv"
    assert xtreme._pawsx_file(root, "zh", "train").name == "translated_train.tsv"
    assert xtreme._pawsx_file(root, "es", "test").name == "test_2k.tsv"


def test_tokenizer_can_be_named_by_its_vocab_file(root: Path) -> None:
    a = load_dataset("pawsx", str(root), tokenizer=str(root / "vocab.txt"), max_length=16, limit=2)
    assert a.train.task_sizes() == {"en": 2, "zh": 2, "de": 2, "es": 2}


def test_pawsx_missing_file_is_reported_before_the_tokenizer(root: Path, tmp_path: Path) -> None:
    shutil.copytree(root / "pawsx", tmp_path / "pawsx")
    (tmp_path / "pawsx" / "es" / "translated_train.tsv").unlink()
    with pytest.raises(DatasetNotFound, match=r"translated_train.tsv"):
        load_dataset("pawsx", str(tmp_path), tokenizer="no-such-tokenizer-anywhere")
    with pytest.raises(DatasetNotFound, match=r"mtlbench data prepare udpos"):
        load_dataset("udpos", str(tmp_path))


def test_pawsx_bad_line_is_named(root: Path, tmp_path: Path) -> None:
    shutil.copytree(root / "pawsx", tmp_path / "pawsx")
    f = tmp_path / "pawsx" / "zh" / "dev_2k.tsv"
    f.write_text(f.read_text().rsplit("\t", 1)[0] + "\n")  # truncated last line: no label
    with pytest.raises(DatasetCorrupt, match=r"dev_2k.tsv:5"):
        xtreme.read_pawsx(f)
    assert any("dev_2k.tsv:5" in p for p in xtreme.verify(tmp_path, name="pawsx"))


def test_uncached_tokenizer_gives_a_clear_error() -> None:
    with pytest.raises(FileNotFoundError, match=r"never downloads"):
        xtreme.resolve_tokenizer("mtlbench-test/no-such-model")


# ----------------------------------------------------------------------------- UD-POS
def test_labels_are_xtremes_and_the_metrics(root: Path) -> None:
    assert xtreme.LABELS == UDPOS_LABELS
    assert set(xtreme.UPOS) == set(UDPOS_LABELS[1:])


def test_conllu_reader_follows_xtreme(root: Path) -> None:
    sents = xtreme.read_conllu(root / "udpos" / "UD_en-EWT" / "en_ewt-ud-train.conllu")
    ids = [s.id for s in sents]
    assert "en_ewt-ud-train.conllu#withheld" not in ids  # forms "_" only: dropped
    first = sents[0]
    assert first.id == "en_ewt-ud-train.conllu#ewt-train-0"
    assert first.words[0] == "don't" and first.tags[0] == "AUX"  # fused form, tag of its head word
    assert "elided" not in first.words  # empty node skipped
    assert len(first.words) == len(first.tags)
    vi = xtreme.read_conllu(root / "udpos" / "UD_vi-VTB" / "vi_vtb-ud-train.conllu")[0]
    assert "HàNội" in vi.words  # spaces inside a form removed, as XTREME does


def test_udpos_first_piece_labels_and_chunking(root: Path, tok: object) -> None:
    splits = load_dataset("udpos", str(root), tokenizer=tok, max_length=16)
    sizes = splits.info["split_sizes"]
    # en: ewt + gum treebanks, 6 sentences each, plus one 31-piece sentence each cut into 3 rows of <= 14
    assert sizes["train"]["en"] == 2 * (6 + 3)
    assert sizes["val"] == {"en": 6, "zh": 3, "te": 3, "vi": 3}
    x, y = next(splits.train.batches(64, shuffle=False, generator=None, drop_last=False, device=CPU))
    ids, labels, mask = x["en"]["input_ids"], y["en"], x["en"]["attention_mask"].bool()
    assert ids.shape == labels.shape == (18, 16)
    assert (labels[:, 0] == -100).all()  # [CLS]
    assert (labels[~mask] == -100).all()  # padding
    scored = labels[labels != -100]
    assert scored.min() >= 1 and scored.max() < len(xtreme.LABELS)  # never "O"
    sents = [
        s
        for f in ("UD_en-EWT/en_ewt-ud-train.conllu", "UD_en-GUM/en_gum-ud-train.conllu")
        for s in xtreme.read_conllu(root / "udpos" / f)
    ]
    assert (labels != -100).sum() == sum(len(s.words) for s in sents)  # no word lost to the cut
    assert splits.manifest["train"] == xtreme.ids_sha256(
        [f"en:{s.id}" for s in sents]
        + [
            f"{lang}:{s.id}"
            for lang, f in (
                ("zh", "UD_zh-GSD/zh_gsd-ud-train.conllu"),
                ("te", "UD_te-MTG/te_mtg-ud-train.conllu"),
                ("vi", "UD_vi-VTB/vi_vtb-ud-train.conllu"),
            )
            for s in xtreme.read_conllu(root / "udpos" / f)
        ]
    )


def test_treebanks_can_be_restricted(root: Path, tok: object) -> None:
    splits = load_dataset("udpos", str(root), tokenizer=tok, max_length=64, treebanks={"en": ["gum"]})
    assert splits.info["split_sizes"]["test"]["en"] == 3


def test_udpos_unknown_tag_and_bad_columns_are_named(root: Path, tmp_path: Path) -> None:
    shutil.copytree(root / "udpos", tmp_path / "udpos")
    f = tmp_path / "udpos" / "UD_te-MTG" / "te_mtg-ud-dev.conllu"
    lines = f.read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("1\t"))
    cols = lines[k].split("\t")
    lines[k] = "\t".join([*cols[:3], "NOPE", *cols[4:]])
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetCorrupt, match=rf"te_mtg-ud-dev.conllu:{k + 1}.*NOPE"):
        xtreme.read_conllu(f)
    f.write_text("1\tonly\tthree\n\n")
    with pytest.raises(DatasetCorrupt, match=r"te_mtg-ud-dev.conllu:1.*10 tab-separated"):
        xtreme.read_conllu(f)


def test_prepare_from_local_archives(root: Path, tmp_path: Path) -> None:
    pawsx = tmp_path / "x-final.tar.gz"
    with tarfile.open(pawsx, "w:gz") as tf:
        tf.add(root / "pawsx", arcname="x-final")
    ud = tmp_path / "ud-treebanks-v2.5.tgz"
    with tarfile.open(ud, "w:gz") as tf:
        tf.add(root / "udpos", arcname="ud-treebanks-v2.5")
    target = tmp_path / "data"
    xtreme.prepare(target, pawsx)  # name inferred from the archive's name
    xtreme.prepare(target, ud, name="udpos")
    assert xtreme.verify(target) == []
    assert sorted(p.name for p in (target / "udpos").iterdir()) == sorted(
        p.name for p in (root / "udpos").iterdir()
    )

"""XTREME PAWS-X and UD-POS: one task per language, each with its own sentences.

Lin et al. (TMLR 2022, Section 5.2 and Appendix C) take two XTREME tasks (Hu et al., ICML
2020) and build a multilingual multi-task problem from each with the four languages that
have the most data. Every language has its own inputs, so a batch is
``({lang: encoded}, {lang: labels})`` (:class:`mtlbench.data.multi_input.MultiInputDataset`),
where ``encoded`` is ``{"input_ids", "attention_mask", "token_type_ids"}``, ``(B, L)``.

* ``pawsx`` (Yang et al., EMNLP 2019; paraphrase identification): en, zh, de, es. The
  release ``x-final.tar.gz`` unpacks to ``<lang>/`` folders, kept as is::

      pawsx/en/train.tsv            pawsx/<lang>/translated_train.tsv   (de, es, zh: the
      pawsx/<lang>/dev_2k.tsv       pawsx/<lang>/test_2k.tsv             machine-translated
                                                                         training set)

  Each TSV has a header and the columns ``id, sentence1, sentence2, label`` (label 0/1).
  Sentence pairs are encoded as ``[CLS] s1 [SEP] s2 [SEP]``, truncated longest-first to
  ``max_length`` (128) and padded; the target is the label.

* ``udpos`` (Universal Dependencies v2.5; part-of-speech tagging with the 17 UPOS tags): en,
  zh, te, vi. The treebank folders of the UD release are kept as is::

      udpos/UD_<Treebank>/<lang>_<tb>-ud-{train,dev,test}.conllu

  As in XTREME's preprocessing, every treebank of a language is used (``<lang>_*``; pass
  ``treebanks={"en": ["ewt"]}`` to restrict), a multiword token replaces its syntactic
  words (tagged with the UPOS of the word whose head lies outside the token, XTREME takes
  the tag by a precedence list), empty nodes are skipped, spaces and zero-width
  non-joiners are removed from word forms, sentences whose forms are all (or all but one)
  ``_`` are dropped (treebanks whose text is withheld), and a sentence longer than
  ``max_length - 2`` word pieces is cut at word boundaries into several sequences. The
  first word piece of a word carries its tag id in :data:`LABELS` (XTREME's label list:
  ``O``, never used as a target, then the 17 tags sorted); other pieces, ``[CLS]``,
  ``[SEP]`` and padding carry -100 (ignored by ``token_cross_entropy`` and the metric).

Splits: the official train / dev / test files (dev is the validation split). Ids are
``<lang>:<id>`` (PAWS-X) or ``<lang>:<file>#<sent_id or index>`` (UD), hashed per split into
``Splits.manifest``.

Tokenisation is injectable: ``tokenizer`` is a Hugging Face tokenizer object, a WordPiece
vocabulary file (``vocab.txt``; cased, as mBERT), a local tokenizer folder, or a model
name looked up in the local Hugging Face cache only (default
``bert-base-multilingual-cased``). Nothing is downloaded at load time; ``prepare``
downloads the two official archives.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mtlbench.data.base import (
    DatasetCorrupt,
    DatasetNotFound,
    Source,
    Splits,
    download,
    ids_sha256,
    register_source,
)
from mtlbench.data.multi_input import MultiInputDataset, TensorPart, safe_extractall

__all__ = [
    "DESCRIPTION",
    "LABELS",
    "LANGUAGES",
    "NAME",
    "UPOS",
    "download",
    "load",
    "prepare",
    "read_conllu",
    "read_pawsx",
    "resolve_tokenizer",
    "verify",
]

NAME = "xtreme"
DESCRIPTION = (
    "XTREME (Hu et al. 2020) as two multilingual MTL problems: PAWS-X paraphrase identification "
    "(en, zh, de, es; ~49.4K/2K/2K pairs per language) and UD v2.5 POS tagging (en, zh, te, vi). "
    "One task per language with its own inputs; mBERT tokenisation, 128 word pieces. "
    "`mtlbench data prepare pawsx|udpos` downloads the official archives."
)
MODEL_NAME = "bert-base-multilingual-cased"
LANGUAGES: dict[str, tuple[str, ...]] = {"pawsx": ("en", "zh", "de", "es"), "udpos": ("en", "zh", "te", "vi")}
REVISIONS = {"pawsx": "pawsx-x-final", "udpos": "ud-treebanks-v2.5/all-treebanks-per-language"}
#: the 17 universal POS tags (https://universaldependencies.org/u/pos/), label ids in this order
UPOS: tuple[str, ...] = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
#: the label ids of UD-POS targets: XTREME's list, "O" (never a target) then the sorted UPOS
#: tags, so that a model has 18 outputs as in XTREME and ``token_f1`` reads the ids right
LABELS: tuple[str, ...] = ("O", *sorted(UPOS))
_LABEL_ID = {tag: i for i, tag in enumerate(LABELS)}
SPLITS = ("train", "val", "test")
PAWSX_FILES = {"val": "dev_2k.tsv", "test": "test_2k.tsv"}
UD_SPLITS = {"train": "train", "val": "dev", "test": "test"}
IGNORE = -100

URLS = {
    "pawsx": "https://storage.googleapis.com/paws/pawsx/x-final.tar.gz",
    "udpos": "https://lindat.mff.cuni.cz/repository/xmlui/bitstream/handle/11234/1-3105/ud-treebanks-v2.5.tgz",
}
#: SHA-256 of the official archives; None until pinned (the digest of a download is logged
#: and written beside it, ``<archive>.sha256``)
ARCHIVE_SHA256: dict[str, str | None] = {"pawsx": None, "udpos": None}
#: SHA-256 of each split's id list; empty until computed on the official release
SPLIT_SHA256: dict[str, dict[str, str]] = {"pawsx": {}, "udpos": {}}

log = logging.getLogger(__name__)

register_source(
    Source(
        name="pawsx",
        url=URLS["pawsx"],
        files="x-final.tar.gz",
        path="that archive (or the folder it was extracted to)",
        downloads=True,
    ),
    Source(
        name="udpos",
        url=URLS["udpos"],
        files="ud-treebanks-v2.5.tgz (Universal Dependencies 2.5, http://hdl.handle.net/11234/1-3105)",
        path="that archive (or the folder it was extracted to)",
        downloads=True,
    ),
)


# ----------------------------------------------------------------------------- readers
def _pawsx_file(root: Path, lang: str, split: str) -> Path:
    if split == "train":
        return root / "pawsx" / lang / ("train.tsv" if lang == "en" else "translated_train.tsv")
    return root / "pawsx" / lang / PAWSX_FILES[split]


def read_pawsx(path: Path) -> tuple[list[str], list[str], list[str], list[int]]:
    """``(ids, sentence1, sentence2, labels)`` of one PAWS-X TSV file (header, 4 columns)."""
    ids, s1, s2, labels = [], [], [], []
    with path.open(encoding="utf-8", newline="\n") as f:
        header = f.readline()
        if not header.startswith("id\t"):
            raise DatasetCorrupt(
                "pawsx",
                f"{path}:1",
                f"expected the header 'id sentence1 sentence2 label', got {header[:40]!r}",
            )
        for lineno, line in enumerate(f, 2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) < 4 or fields[3].strip() not in ("0", "1"):
                raise DatasetCorrupt(
                    "pawsx",
                    f"{path}:{lineno}",
                    "expected 4 tab-separated columns id, sentence1, sentence2, label (0/1)",
                )
            ids.append(fields[0])
            s1.append(fields[1].strip())
            s2.append(fields[2].strip())
            labels.append(int(fields[3]))
    if not ids:
        raise DatasetCorrupt("pawsx", path, "no examples")
    return ids, s1, s2, labels


@dataclass
class Sentence:
    id: str
    words: list[str]
    tags: list[str]


def read_conllu(path: Path) -> list[Sentence]:
    """The sentences of a CoNLL-U file, with XTREME's treatment (module docstring)."""
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    tag_lines: list[int] = []
    sent_id: str | None = None
    fused: tuple[int, int, str, int] | None = None  # (first, last, form, line) of an open multiword token
    fused_sub: list[tuple[str, int]] = []  # (upos, head) of its syntactic words

    def close_fused() -> None:
        nonlocal fused, fused_sub
        assert fused is not None
        first, last, form, line = fused
        outside = [upos for upos, head in fused_sub if not first <= head <= last]
        words.append(form)
        tags.append(outside[0] if outside else (fused_sub[0][0] if fused_sub else "X"))
        tag_lines.append(line)
        fused, fused_sub = None, []

    def end_sentence(lineno: int) -> None:
        nonlocal words, tags, tag_lines, sent_id
        if fused is not None:
            close_fused()
        if words:
            num_empty = sum(w == "_" for w in words)
            if num_empty == 0 or num_empty < len(words) - 1:
                for tag, tl in zip(tags, tag_lines):
                    if tag not in UPOS:
                        raise DatasetCorrupt("udpos", f"{path}:{tl}", f"unknown UPOS tag {tag!r}")
                clean = ["".join(w.replace("\u200c", "").split(" ")) for w in words]
                sentences.append(Sentence(sent_id or f"{path.name}#{len(sentences)}", clean, list(tags)))
        words, tags, tag_lines, sent_id = [], [], [], None

    with path.open(encoding="utf-8") as f:
        lineno = 0
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                end_sentence(lineno)
                continue
            if line.startswith("#"):
                key, _, value = line[1:].partition("=")
                if key.strip() == "sent_id":
                    sent_id = f"{path.name}#{value.strip()}"
                continue
            cols = line.split("\t")
            if len(cols) != 10:
                raise DatasetCorrupt(
                    "udpos", f"{path}:{lineno}", f"expected 10 tab-separated columns, got {len(cols)}"
                )
            tid = cols[0]
            if "." in tid:  # empty node of the enhanced graph
                continue
            if "-" in tid:
                if fused is not None:
                    close_fused()
                try:
                    a, b = (int(v) for v in tid.split("-"))
                except ValueError:
                    raise DatasetCorrupt("udpos", f"{path}:{lineno}", f"bad token id {tid!r}") from None
                fused = (a, b, cols[1], lineno)
                continue
            try:
                i = int(tid)
                head = int(cols[6]) if cols[6] != "_" else 0
            except ValueError:
                raise DatasetCorrupt(
                    "udpos", f"{path}:{lineno}", f"bad token id or head {tid!r}/{cols[6]!r}"
                ) from None
            if fused is not None and fused[0] <= i <= fused[1]:
                fused_sub.append((cols[3], head))
                if i == fused[1]:
                    close_fused()
                continue
            if fused is not None:
                close_fused()
            words.append(cols[1])
            tags.append(cols[3])
            tag_lines.append(lineno)
        end_sentence(lineno + 1)
    return sentences


def _ud_files(root: Path, lang: str, split: str, treebanks: Sequence[str] | None) -> list[Path]:
    files = sorted((root / "udpos").glob(f"UD_*/{lang}_*-ud-{UD_SPLITS[split]}.conllu"))
    if treebanks is not None:
        files = [p for p in files if p.name.split("-", 1)[0].split("_", 1)[1] in treebanks]
    return files


# ----------------------------------------------------------------------------- tokenizer
def _transformers() -> Any:
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - optional dependency
        raise ImportError("XTREME needs Hugging Face transformers: pip install 'mtlbench[nlp]'") from err
    return transformers


def resolve_tokenizer(tokenizer: Any = None) -> Any:
    """A tokenizer object from an object, a ``vocab.txt``, a local folder or a cached model name."""
    if tokenizer is None:
        tokenizer = MODEL_NAME
    if not isinstance(tokenizer, str | os.PathLike):
        return tokenizer
    tf = _transformers()
    path = Path(tokenizer)
    if path.is_file():
        vocab: dict[str, int] = {}
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            vocab.setdefault(line.rstrip("\r\n"), i)
        cls = tf.BertTokenizerFast
        if "vocab" in inspect.signature(cls.__init__).parameters:  # transformers >= 5
            return cls(vocab=vocab, do_lower_case=False)
        return cls(vocab_file=str(path), do_lower_case=False)  # pragma: no cover - transformers 4
    try:
        if path.is_dir():
            return tf.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        return tf.AutoTokenizer.from_pretrained(str(tokenizer), local_files_only=True)
    except OSError as err:
        raise FileNotFoundError(
            f"tokenizer {str(tokenizer)!r} is not in the local Hugging Face cache; mtlbench never "
            f"downloads at run time. Fetch it once on a machine with network access "
            f"(`huggingface-cli download {tokenizer}`), or pass "
            "overrides={'dataset.kwargs.tokenizer': '<path to vocab.txt or tokenizer folder>'}."
        ) from err


def _encode_pairs(tok: Any, s1: list[str], s2: list[str], max_length: int) -> dict[str, torch.Tensor]:
    parts: dict[str, list[torch.Tensor]] = {"input_ids": [], "attention_mask": [], "token_type_ids": []}
    chunk = 4096
    for start in range(0, len(s1), chunk):
        enc = tok(
            s1[start : start + chunk],
            s2[start : start + chunk],
            max_length=max_length,
            truncation="longest_first",
            padding="max_length",
            return_token_type_ids=True,
            return_attention_mask=True,
        )
        parts["input_ids"].append(torch.tensor(enc["input_ids"], dtype=torch.int32))
        parts["attention_mask"].append(torch.tensor(enc["attention_mask"], dtype=torch.int8))
        parts["token_type_ids"].append(torch.tensor(enc["token_type_ids"], dtype=torch.int8))
    return {k: torch.cat(v) for k, v in parts.items()}


def _encode_tagged(
    tok: Any, sentences: Sequence[Sentence], max_length: int
) -> tuple[dict[str, torch.Tensor], torch.Tensor, list[int]]:
    """Word-piece sequences with first-piece labels; returns inputs, labels and the source sentence of each row."""
    words = [w for s in sentences for w in s.words]
    pieces = tok(words, add_special_tokens=False)["input_ids"] if words else []
    unk, cls, sep, pad = tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.pad_token_id
    room = max_length - 2
    rows: list[tuple[list[int], list[int]]] = []
    source: list[int] = []
    k = 0
    for si, sent in enumerate(sentences):
        ids: list[int] = []
        labels: list[int] = []
        for tag in sent.tags:
            wp = list(pieces[k])
            k += 1
            if not wp or len(wp) > room:
                wp = [unk]
            if len(ids) + len(wp) > room:
                rows.append((ids, labels))
                source.append(si)
                ids, labels = [], []
            ids += wp
            labels += [_LABEL_ID[tag]] + [IGNORE] * (len(wp) - 1)
        rows.append((ids, labels))
        source.append(si)
    n = len(rows)
    input_ids = torch.full((n, max_length), pad, dtype=torch.int32)
    attention = torch.zeros((n, max_length), dtype=torch.int8)
    target = torch.full((n, max_length), IGNORE, dtype=torch.int16)
    for r, (ids, labels) in enumerate(rows):
        m = len(ids) + 2
        input_ids[r, :m] = torch.tensor([cls, *ids, sep], dtype=torch.int32)
        attention[r, :m] = 1
        target[r, 1 : m - 1] = torch.tensor(labels, dtype=torch.int16)
    inputs = {
        "input_ids": input_ids,
        "attention_mask": attention,
        "token_type_ids": torch.zeros_like(attention),
    }
    return inputs, target, source


# ----------------------------------------------------------------------------- contract
def _check_files(
    root: Path, name: str, languages: Sequence[str], treebanks: Mapping[str, Sequence[str]] | None
) -> None:
    if not (root / name).is_dir():
        raise DatasetNotFound(name, root, f"the folder {name}/")
    for lang in languages:
        for split in SPLITS:
            if name == "pawsx":
                path = _pawsx_file(root, lang, split)
                if not path.is_file():
                    raise DatasetNotFound(name, root, str(path.relative_to(root)))
            elif not _ud_files(root, lang, split, (treebanks or {}).get(lang)):
                raise DatasetNotFound(name, root, f"udpos/UD_*/{lang}_*-ud-{UD_SPLITS[split]}.conllu")


def load(
    root: Path,
    *,
    name: str = "pawsx",
    languages: Sequence[str] | None = None,
    tokenizer: Any = None,
    max_length: int = 128,
    treebanks: Mapping[str, Sequence[str]] | None = None,
    check_manifest: bool = True,
    limit: int | None = None,
) -> Splits:
    """The three splits of ``pawsx`` or ``udpos``, one task per language, tokenised in memory.

    ``limit`` keeps the first N examples per language and split (quick experiments).
    """
    if name not in LANGUAGES:
        raise KeyError(f"the xtreme module serves {sorted(LANGUAGES)}, not {name!r}")
    if max_length < 8:
        raise ValueError(f"max_length must be >= 8, got {max_length}")
    root = Path(root)
    langs = tuple(languages or LANGUAGES[name])
    _check_files(root, name, langs, treebanks)  # a missing dataset fails before anything else
    tok = resolve_tokenizer(tokenizer)
    splits: dict[str, MultiInputDataset] = {}
    manifest: dict[str, str] = {}
    sizes: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        parts, all_ids = {}, []
        for lang in langs:
            if name == "pawsx":
                ids, s1, s2, labels = read_pawsx(_pawsx_file(root, lang, split))
                all_ids += [f"{lang}:{i}" for i in ids]
                if limit is not None:
                    s1, s2, labels = s1[:limit], s2[:limit], labels[:limit]
                inputs = _encode_pairs(tok, s1, s2, max_length)
                parts[lang] = TensorPart(inputs, torch.tensor(labels, dtype=torch.long))
            else:
                sentences = [
                    s
                    for p in _ud_files(root, lang, split, (treebanks or {}).get(lang))
                    for s in read_conllu(p)
                ]
                if not sentences:
                    raise DatasetCorrupt(name, root / "udpos", f"no {lang} sentences in the {split} files")
                all_ids += [f"{lang}:{s.id}" for s in sentences]
                if limit is not None:
                    sentences = sentences[:limit]
                inputs, target, _ = _encode_tagged(tok, sentences, max_length)
                parts[lang] = TensorPart(inputs, target)
        manifest[split] = ids_sha256(all_ids)
        pinned = SPLIT_SHA256[name].get(split)
        if check_manifest and pinned and pinned != manifest[split]:
            raise DatasetCorrupt(
                name, f"split {split!r}", f"id list hash {manifest[split][:12]} != published {pinned[:12]}"
            )
        splits[split] = MultiInputDataset(parts)
        sizes[split] = splits[split].task_sizes()
    return Splits(
        splits["train"],
        splits["val"],
        splits["test"],
        manifest=manifest,
        info={"languages": langs, "split_sizes": sizes, "labels": LABELS if name == "udpos" else ("0", "1")},
    )


def verify(root: Path, *, name: str | None = None) -> list[str]:
    """Check that every file of ``name`` (default: both) is present and parses."""
    root = Path(root)
    problems: list[str] = []
    for n in [name] if name else list(LANGUAGES):
        try:
            _check_files(root, n, LANGUAGES[n], None)
            for lang in LANGUAGES[n]:
                for split in SPLITS:
                    if n == "pawsx":
                        read_pawsx(_pawsx_file(root, lang, split))
                    else:
                        for path in _ud_files(root, lang, split, None):
                            read_conllu(path)
        except (DatasetNotFound, DatasetCorrupt) as err:
            problems.append(str(err))
    return problems


# ----------------------------------------------------------------------------- prepare
def _install_pawsx(root: Path, archive: Path, languages: Sequence[str]) -> None:
    with tempfile.TemporaryDirectory(dir=root, prefix=".pawsx-") as tmp:
        if archive.is_dir():
            src = archive
        else:
            with tarfile.open(archive) as tf:
                safe_extractall(tf, tmp, "xtreme")
            src = Path(tmp)
        base = next((p.parent.parent for p in sorted(src.rglob("en/train.tsv"))), None)
        if base is None:
            raise DatasetCorrupt("pawsx", archive, "no en/train.tsv inside")
        staging = Path(tmp) / "staging"
        for lang in languages:
            shutil.copytree(base / lang, staging / lang)
        target = root / "pawsx"
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)


def _install_udpos(root: Path, archive: Path, languages: Sequence[str]) -> None:
    wanted = tuple(f"{lang}_" for lang in languages)
    with tempfile.TemporaryDirectory(dir=root, prefix=".udpos-") as tmp:
        staging = Path(tmp) / "udpos"
        if archive.is_dir():
            for path in sorted(archive.rglob("UD_*/*.conllu")):
                if path.name.startswith(wanted):
                    (staging / path.parent.name).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, staging / path.parent.name / path.name)
        else:
            with tarfile.open(archive) as tf:
                for member in tf:
                    p = Path(member.name)
                    if (
                        member.isfile()
                        and p.suffix == ".conllu"
                        and p.name.startswith(wanted)
                        and p.parent.name.startswith("UD_")
                    ):
                        (staging / p.parent.name).mkdir(parents=True, exist_ok=True)
                        fin = tf.extractfile(member)
                        assert fin is not None  # member.isfile(), so extractfile gives its stream
                        with fin, (staging / p.parent.name / p.name).open("wb") as fout:
                            shutil.copyfileobj(fin, fout)
        if not staging.is_dir():
            raise DatasetCorrupt("udpos", archive, f"no UD_*/{{{','.join(languages)}}}_*.conllu files inside")
        target = root / "udpos"
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)


def prepare(root: Path, source: Path | None = None, *, name: str | None = None) -> None:
    """Install PAWS-X and/or UD v2.5 (``name``: ``pawsx``, ``udpos`` or both) under the data root.

    Without ``source`` the official archive is downloaded (with resume, and a SHA-256 check
    once :data:`ARCHIVE_SHA256` is pinned) into ``<root>/<name>.download/``: PAWS-X from
    Google's ``x-final.tar.gz``, UD v2.5 from LINDAT (``ud-treebanks-v2.5.tgz``, ~330 MB).
    With ``source`` (an archive, or the folder it was extracted to) nothing is downloaded.
    PAWS-X keeps the release's ``<lang>/`` folders; for UD only the ``<lang>_*.conllu`` files
    of the needed languages are kept, in their ``UD_<Treebank>/`` folders.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if name is None and source is not None:
        stem = Path(source).name
        name = "pawsx" if "x-final" in stem or "paws" in stem else "udpos" if "ud-treebanks" in stem else None
        if name is None:
            raise ValueError(f"cannot tell whether {source} is PAWS-X or UD; pass name='pawsx' or 'udpos'")
    for n in [name] if name else list(LANGUAGES):
        if n not in LANGUAGES:
            raise KeyError(f"the xtreme module serves {sorted(LANGUAGES)}, not {n!r}")
        archive = Path(source) if source is not None else None
        if archive is None:
            dest = root / f"{n}.download" / URLS[n].rsplit("/", 1)[-1]
            log.info("downloading %s to %s", URLS[n], dest)
            digest = download(URLS[n], dest, ARCHIVE_SHA256[n], name=n)
            log.info("%s sha256 %s", dest.name, digest)
            archive = dest
        if not archive.exists():
            raise FileNotFoundError(f"source {archive} does not exist")
        (_install_pawsx if n == "pawsx" else _install_udpos)(root, archive, LANGUAGES[n])
        problems = verify(root, name=n)
        if problems:
            raise DatasetCorrupt(n, root / n, "; ".join(problems[:5]))
        log.info("installed %s at %s", n, root / n)

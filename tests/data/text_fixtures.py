"""Tiny PAWS-X / UD fixtures in exactly the release formats, and a tiny WordPiece vocabulary.

``write_pawsx(root)`` creates ``<root>/pawsx/<lang>/{train.tsv | translated_train.tsv,
dev_2k.tsv, test_2k.tsv}`` (header ``id sentence1 sentence2 label``, tab separated), as in
``x-final.tar.gz``. ``write_udpos(root)`` creates ``<root>/udpos/UD_<Treebank>/<lang>_<tb>-ud-
{train,dev,test}.conllu`` with comments, a multiword token, an empty node, a multi-syllable
Vietnamese form with a space, a withheld-text sentence (forms ``_``) and one long sentence.
``write_vocab(path)`` writes a cased WordPiece ``vocab.txt`` that covers every fixture word,
so tests never need the mBERT tokenizer.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

WORDS = {
    "en": ["the", "cat", "dog", "sat", "on", "a", "mat", "runs", "fast", "red", "big"],
    "de": ["der", "Hund", "die", "Katze", "läuft", "schnell", "rot", "groß"],
    "es": ["el", "perro", "gato", "corre", "rápido", "rojo", "grande", "la"],
    "zh": ["猫", "狗", "跑", "快", "红", "大", "的"],
    "te": ["ఇది", "ఒక", "పిల్లి", "కుక్క"],
    "vi": ["con", "mèo", "chó", "chạy", "nhanh", "Hà", "Nội"],
}
PIECES = ["##s", "##er", "##ing", "n't", "do", "don", "'", "t", "Hanoi", "HàNội", ".", ",", "?", "!"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TAGS = ["NOUN", "VERB", "DET", "ADJ", "ADP", "PRON", "ADV"]


def vocabulary() -> list[str]:
    seen: dict[str, None] = dict.fromkeys(SPECIALS)
    for words in WORDS.values():
        for w in words:
            # BERT splits CJK characters one by one
            for piece in w if all("\u4e00" <= c <= "\u9fff" for c in w) else [w]:
                seen.setdefault(piece, None)
    for p in PIECES:
        seen.setdefault(p, None)
    return list(seen)


def write_vocab(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(vocabulary()) + "\n", encoding="utf-8")
    return path


def _sentence(rng: random.Random, lang: str, n: int) -> str:
    words = [rng.choice(WORDS[lang]) for _ in range(n)]
    return ("" if lang == "zh" else " ").join(words) + "."


def write_pawsx(
    root: Path,
    languages: Sequence[str] = ("en", "zh", "de", "es"),
    counts: Mapping[str, int] | None = None,
    seed: int = 0,
) -> Path:
    """PAWS-X with ``counts`` pairs per language and split (default train 8, val 4, test 3)."""
    counts = dict(counts or {"train": 8, "val": 4, "test": 3})
    rng = random.Random(seed)
    files = {"val": "dev_2k.tsv", "test": "test_2k.tsv"}
    for lang in languages:
        ldir = root / "pawsx" / lang
        ldir.mkdir(parents=True, exist_ok=True)
        for split, n in counts.items():
            fname = files.get(split) or ("train.tsv" if lang == "en" else "translated_train.tsv")
            lines = ["id\tsentence1\tsentence2\tlabel"]
            for i in range(1, n + 1):
                a, b = _sentence(rng, lang, rng.randint(3, 9)), _sentence(rng, lang, rng.randint(3, 9))
                lines.append(f"{i}\t{a}\t{b}\t{rng.randint(0, 1)}")
            (ldir / fname).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "pawsx"


def _conllu_sentence(rng: random.Random, lang: str, sent_id: str, n: int, extras: bool) -> list[str]:
    words = [rng.choice(WORDS[lang]) for _ in range(n)]
    lines = [f"# sent_id = {sent_id}", "# text = " + " ".join(words)]
    tid = 1
    if extras and lang == "en":  # a multiword token "don't" = do + n't, head of "do" outside
        lines.append(f"{tid}-{tid + 1}\tdon't\t_\t_\t_\t_\t_\t_\t_\t_")
        lines.append(f"{tid}\tdo\tdo\tAUX\t_\t_\t{tid + 2}\taux\t_\t_")
        lines.append(f"{tid + 1}\tn't\tnot\tPART\t_\t_\t{tid}\tadvmod\t_\t_")
        tid += 2
    for w in words:
        lines.append(f"{tid}\t{w}\t{w}\t{rng.choice(TAGS)}\t_\t_\t0\troot\t_\t_")
        if extras and tid == 3:
            lines.append(f"{tid}.1\telided\t_\tVERB\t_\t_\t_\t_\t0:root\t_")  # empty node
        tid += 1
    if extras and lang == "vi":
        lines.append(f"{tid}\tHà Nội\tHà Nội\tPROPN\t_\t_\t0\troot\t_\t_")
        tid += 1
    lines.append(f"{tid}\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_")
    return [*lines, ""]


def write_udpos(
    root: Path,
    treebanks: Mapping[str, Sequence[str]] | None = None,
    counts: Mapping[str, int] | None = None,
    seed: int = 0,
    long_sentence: int = 0,
) -> Path:
    """UD treebanks (default en: ewt + gum, zh: gsd, te: mtg, vi: vtb), ``counts`` sentences per file.

    ``long_sentence`` > 0 adds one sentence of that many words to every English train file.
    """
    treebanks = dict(treebanks or {"en": ["ewt", "gum"], "zh": ["gsd"], "te": ["mtg"], "vi": ["vtb"]})
    counts = dict(counts or {"train": 6, "dev": 3, "test": 3})
    rng = random.Random(seed)
    for lang, tbs in treebanks.items():
        for tb in tbs:
            tdir = root / "udpos" / f"UD_{lang}-{tb.upper()}"
            tdir.mkdir(parents=True, exist_ok=True)
            for split, n in counts.items():
                lines = ["# newdoc id = fixture"]
                for i in range(n):
                    lines += _conllu_sentence(
                        rng, lang, f"{tb}-{split}-{i}", rng.randint(3, 7), extras=i == 0
                    )
                if split == "train":
                    # text withheld (as en_esl): dropped by XTREME's rule
                    lines += [
                        "# sent_id = withheld",
                        *(f"{k}\t_\t_\tNOUN\t_\t_\t0\troot\t_\t_" for k in (1, 2, 3)),
                        "",
                    ]
                    if long_sentence and lang == "en":
                        lines += _conllu_sentence(rng, lang, f"{tb}-long", long_sentence, extras=False)
                (tdir / f"{lang}_{tb}-ud-{split}.conllu").write_text(
                    "\n".join(lines) + "\n", encoding="utf-8"
                )
    return root / "udpos"

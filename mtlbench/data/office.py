"""Office-31 and Office-Home: one classification task per image domain, each with its own images.

Sources (not redistributable; see ``docs/envs/office.md``):

* Office-31 (Saenko et al., ECCV 2010): 4,110 images of 31 office objects in three domains,
  ``amazon`` (2,817), ``dslr`` (498) and ``webcam`` (795), released as
  ``domain_adaptation_images.tar.gz``. Layout under the data root::

      office31/<domain>/images/<class>/frame_NNNN.jpg

* Office-Home (Venkateswara et al., CVPR 2017): 15,588 images of 65 classes in four domains,
  ``Art`` (2,427), ``Clipart`` (4,365), ``Product`` (4,439) and ``Real World`` (4,357),
  released as ``OfficeHomeDataset_10072016.zip``. Layout (``prepare`` renames the
  ``Real World`` folder to ``Real_World``, as LibMTL does; both names are read)::

      officehome/<Domain>/<class>/NNNNN.jpg

Tasks: one per domain (Lin et al., TMLR 2022, Appendix D.3), each a 31- or 65-way
classification of that domain's own images, so the model is a multi-input HPS and a batch is
``({domain: images}, {domain: labels})`` (:class:`MultiInputDataset`).

Splits: the paper splits every domain at random 60/20/20 into train/val/test without
publishing the lists. LibMTL, the library of two of its authors, ships the lists its Office
example uses (``examples/office/data_txt/<dataset>/<domain>_
{train,val,test}.txt``, one ``relative/path.jpg label`` per line; MIT licence), and mtlbench
ships a verbatim copy under ``mtlbench/data/splits/<name>/`` (``split_lists="paper"``, the
registered envs' split). The SHA-256 of each split's sorted id list
(:func:`mtlbench.data.base.ids_sha256`) is pinned in :data:`SPLIT_SHA256` and checked on load.
Two alternatives, for copies that are not the official release: ``split_lists="rule-v1"``,
a deterministic rule (``RULE``: within each domain and class, the sorted relative paths
are permuted with ``torch.randperm`` under a ``torch.Generator`` seeded with the first 8
bytes, little endian, top bit cleared, of ``sha256("office-split-v1/<dataset>/<domain>/
<class>")``; the first ``(n + 2) // 5`` go to val, the next ``(n + 2) // 5`` to test, the rest
to train), or ``split_lists=<folder>`` holding lists in LibMTL's format.

Images are decoded lazily (DataLoader workers when ``num_workers > 0``), resized to
``image_size`` x ``image_size`` (224 in the paper) with bilinear filtering, scaled to [0, 1]
and normalised with the ImageNet mean and standard deviation, as in LibMTL.

This module also holds :class:`MultiInputDataset`, the container every multi-input dataset
(Office, XTREME) uses, and :func:`read_image`, shared with CelebA.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from mtlbench.data.base import (
    DatasetCorrupt,
    DatasetNotFound,
    Source,
    SourceRequired,
    Splits,
    ids_sha256,
    register_source,
)
from mtlbench.data.multi_input import (
    ImagePart,
    MultiInputDataset,
    read_image,
    safe_extractall,
)

__all__ = [
    "DATASETS",
    "DESCRIPTION",
    "NAME",
    "PAPER",
    "SPLIT_LISTS_DIR",
    "SPLIT_SHA256",
    "load",
    "prepare",
    "read_split_lists",
    "split_rule",
    "verify",
]

NAME = "office"
DESCRIPTION = (
    "Office-31 (amazon/dslr/webcam, 31 classes, 4,110 images) and Office-Home (Art/Clipart/"
    "Product/Real_World, 65 classes, 15,588 images): one classifier per domain on that domain's "
    "own images; LibMTL's 60/20/20 split lists per domain (shipped). Not redistributable: "
    "`mtlbench data prepare office31|officehome --source <download>` installs a download."
)
RULE = "office-split-v1"
#: ``split_lists`` value of the paper's split (the shipped LibMTL lists)
PAPER = "paper"
#: where the shipped lists live: ``<SPLIT_LISTS_DIR>/<name>/<domain>_<split>.txt``
SPLIT_LISTS_DIR = Path(__file__).resolve().parent / "splits"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class OfficeInfo:
    domains: tuple[str, ...]
    num_classes: int
    #: images per domain in the official release
    counts: Mapping[str, int]
    #: sub-folder between the domain folder and the class folders
    inner: str
    #: other folder names the official archive uses for a domain
    aliases: Mapping[str, str]
    revision: str


DATASETS: dict[str, OfficeInfo] = {
    "office31": OfficeInfo(
        domains=("amazon", "dslr", "webcam"),
        num_classes=31,
        counts={"amazon": 2817, "dslr": 498, "webcam": 795},
        inner="images",
        aliases={},
        revision="office31-domain_adaptation_images/libmtl-split",
    ),
    "officehome": OfficeInfo(
        domains=("Art", "Clipart", "Product", "Real_World"),
        num_classes=65,
        counts={"Art": 2427, "Clipart": 4365, "Product": 4439, "Real_World": 4357},
        inner="",
        aliases={"Real_World": "Real World"},
        revision="OfficeHomeDataset_10072016/libmtl-split",
    ),
}
#: SHA-256 of each split's sorted id list in the paper's split (the shipped lists), per
#: dataset; checked on load when ``split_lists="paper"`` and ``check_manifest``. Split sizes
#: (train/val/test): Office-31 2,433/790/887, Office-Home 9,252/3,017/3,319.
SPLIT_SHA256: dict[str, dict[str, str]] = {
    "office31": {
        "train": "f66794ff295e83080365fc9f32e6ecf93a057dd2e6b400f008656cfd73f9d2cb",
        "val": "046acc27b9213893323f5c0b7f4a28010901d8b7bd1c0026bc5009880a1c5c48",
        "test": "7700fbad8d7599aff3a7310e25ba6dddb69db7e21920ba03fffb3cf051132f13",
    },
    "officehome": {
        "train": "318519e8a21b7263ea97f3f9115ebef3f11b090f91ca2e7ca0c3db7c3cfe74a2",
        "val": "4b2583c6e298521bc48c7d6c80a46572310b342707255bc488d7d0eec75cf2d0",
        "test": "58c648328e566ee7a02800f54ead4d3ef6596a2e91fc2e21dd5f6e0677f2c5d5",
    },
}

log = logging.getLogger(__name__)

register_source(
    Source(
        name="office31",
        url="https://faculty.cc.gatech.edu/~judy/domainadapt/",
        files="domain_adaptation_images.tar.gz (Office-31; a Google Drive link on the page)",
    ),
    Source(
        name="officehome",
        url="https://www.hemanthdv.org/officeHomeDataset.html",
        files="OfficeHomeDataset_10072016.zip (Office-Home; a Google Drive link on the page)",
    ),
)


# ----------------------------------------------------------------------------- layout
def _info(name: str) -> OfficeInfo:
    if name not in DATASETS:
        raise KeyError(f"office module serves {sorted(DATASETS)}, not {name!r}")
    return DATASETS[name]


def _domain_dir(base: Path, info: OfficeInfo, domain: str) -> Path | None:
    for folder in (domain, info.aliases.get(domain)):
        if folder and (base / folder).is_dir():
            return base / folder
    return None


def _scan(root: Path, name: str) -> dict[str, dict[str, list[str]]]:
    """``{domain: {class: sorted relative paths}}``; a missing folder raises DatasetNotFound."""
    info = _info(name)
    base = root / name
    if not base.is_dir():
        raise DatasetNotFound(name, root, f"the folder {name}/")
    found: dict[str, dict[str, list[str]]] = {}
    for domain in info.domains:
        ddir = _domain_dir(base, info, domain)
        if ddir is None:
            raise DatasetNotFound(name, root, f"{name}/{domain}/")
        cdir = ddir / info.inner if info.inner else ddir
        if not cdir.is_dir():
            raise DatasetNotFound(name, root, f"{name}/{domain}/{info.inner}/")
        classes: dict[str, list[str]] = {}
        for entry in sorted(os.scandir(cdir), key=lambda e: e.name):
            if not entry.is_dir():
                continue
            prefix = f"{domain}/{info.inner}/{entry.name}" if info.inner else f"{domain}/{entry.name}"
            classes[entry.name] = sorted(
                f"{prefix}/{f.name}"
                for f in os.scandir(entry.path)
                if f.is_file() and Path(f.name).suffix.lower() in IMAGE_SUFFIXES
            )
        if not classes:
            raise DatasetCorrupt(name, cdir, "no class folders found")
        found[domain] = classes
    return found


def _check_official(name: str, files: Mapping[str, Mapping[str, list[str]]]) -> None:
    info = _info(name)
    for domain, classes in files.items():
        if len(classes) != info.num_classes:
            raise DatasetCorrupt(
                name, f"{name}/{domain}", f"{len(classes)} class folders, the release has {info.num_classes}"
            )
        n = sum(len(v) for v in classes.values())
        if n != info.counts[domain]:
            raise DatasetCorrupt(
                name, f"{name}/{domain}", f"{n} images, the release has {info.counts[domain]}"
            )


def _class_seed(name: str, domain: str, cls: str) -> int:
    digest = hashlib.sha256(f"{RULE}/{name}/{domain}/{cls}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def split_rule(name: str, files: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, list[str]]:
    """Rule v1 (module docstring): ``{split: sorted relative paths}`` from the images on disk."""
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for domain, classes in files.items():
        for cls, paths in classes.items():
            paths = sorted(paths)
            n = len(paths)
            g = torch.Generator().manual_seed(_class_seed(name, domain, cls))
            order = [paths[i] for i in torch.randperm(n, generator=g).tolist()]
            k = (n + 2) // 5
            out["val"] += order[:k]
            out["test"] += order[k : 2 * k]
            out["train"] += order[2 * k :]
    return {s: sorted(v) for s, v in out.items()}


def read_split_lists(name: str, folder: str | os.PathLike[str] | None = None) -> dict[str, list[str]]:
    """``{split: sorted relative paths}`` from LibMTL-style ``<domain>_<split>.txt`` lists.

    ``folder`` defaults to the shipped lists of the paper's split. Lines are
    ``relative/path.jpg label`` (the label is ignored: labels follow the sorted class
    folders); the release's ``Real World`` folder name is mapped to ``Real_World``. A missing
    list raises :class:`DatasetNotFound`; an image listed twice :class:`DatasetCorrupt`.
    """
    return {s: sorted(v) for s, v in _parse_split_lists(name, folder).items()}


def _parse_split_lists(name: str, folder: str | os.PathLike[str] | None) -> dict[str, dict[str, str]]:
    """``{split: {relative path: "file:line"}}`` in file order."""
    info = _info(name)
    folder = SPLIT_LISTS_DIR / name if folder is None else Path(folder)
    aliases = {v: k for k, v in info.aliases.items()}
    out: dict[str, dict[str, str]] = {s: {} for s in SPLITS}
    seen: dict[str, str] = {}
    for domain in info.domains:
        for split in SPLITS:
            path = folder / f"{domain}_{split}.txt"
            if not path.is_file():
                raise DatasetNotFound(name, folder, path.name)
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                fields = line.strip().rsplit(" ", 1)
                rel = fields[0] if len(fields) == 2 and fields[1].lstrip("-").isdigit() else line.strip()
                head, _, rest = rel.partition("/")
                rel = f"{aliases.get(head, head)}/{rest}"
                where = f"{path}:{lineno}"
                if rel in seen:
                    raise DatasetCorrupt(name, where, f"{rel} is listed already, at {seen[rel]}")
                seen[rel] = where
                out[split][rel] = where
    return out


def _listed_split(
    name: str, folder: str | os.PathLike[str] | None, files: Mapping[str, Mapping[str, Sequence[str]]]
) -> dict[str, list[str]]:
    """:func:`read_split_lists`, every listed image checked against the images on disk."""
    known = {p for classes in files.values() for paths in classes.values() for p in paths}
    listed = _parse_split_lists(name, folder)
    for ids in listed.values():
        for rel, where in ids.items():
            if rel not in known:
                raise DatasetCorrupt(name, where, f"{rel} is not an image under {name}/")
    return {s: sorted(v) for s, v in listed.items()}


# ----------------------------------------------------------------------------- contract
def load(
    root: Path,
    *,
    name: str = "office31",
    image_size: int = 224,
    split_lists: str | os.PathLike[str] = PAPER,
    check_manifest: bool = True,
    limit: int | None = None,
) -> Splits:
    """The three splits of ``name`` (``office31`` or ``officehome``) as multi-input datasets.

    ``split_lists``: ``"paper"`` (the shipped LibMTL lists, the registered envs' split),
    ``"rule-v1"`` (the rule of the module docstring, for copies that are not the official
    release) or a folder of lists in LibMTL's format. ``check_manifest`` checks the official
    image and class counts per domain and, for the paper's split, the pinned split hashes
    (turn it off for fixtures and subsets). ``limit`` keeps the first N images per domain
    and split (for quick experiments).
    """
    info = _info(name)
    root = Path(root)
    files = _scan(root, name)
    classes = sorted(next(iter(files.values())))
    for domain, found in files.items():
        if sorted(found) != classes:
            raise DatasetCorrupt(
                name,
                f"{name}/{domain}",
                f"class folders differ from {info.domains[0]}'s: {sorted(set(found) ^ set(classes))[:5]}",
            )
    if check_manifest:
        _check_official(name, files)
    if split_lists in ("rule-v1", RULE):
        ids, split_name = split_rule(name, files), RULE
    elif split_lists == PAPER:
        ids, split_name = _listed_split(name, None, files), PAPER
    elif Path(split_lists).is_dir():
        ids, split_name = _listed_split(name, split_lists, files), f"lists:{split_lists}"
    else:
        raise ValueError(
            f"split_lists must be {PAPER!r} (the paper's split), 'rule-v1' or a folder of "
            f"LibMTL-style <domain>_<split>.txt lists; {str(split_lists)!r} is none of these"
        )
    manifest = {s: ids_sha256(v) for s, v in ids.items()}
    pinned = SPLIT_SHA256.get(name, {})
    if check_manifest and split_name == PAPER and pinned:
        for split, digest in manifest.items():
            if pinned.get(split) not in (None, digest):
                raise DatasetCorrupt(
                    name, f"split {split!r}", f"id list hash {digest[:12]} != published {pinned[split][:12]}"
                )
    class_index = {c: i for i, c in enumerate(classes)}
    base = root / name
    real_dirs = {d: _domain_dir(base, info, d) for d in info.domains}
    splits: dict[str, MultiInputDataset] = {}
    sizes: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        parts = {}
        for domain in info.domains:
            rels = [r for r in ids[split] if r.split("/", 1)[0] == domain]
            if limit is not None:
                rels = rels[:limit]
            if not rels:
                raise DatasetCorrupt(name, f"{name}/{domain}", f"no images in the {split} split")
            ddir = real_dirs[domain]
            assert ddir is not None
            paths = [str(ddir / r.split("/", 1)[1]) for r in rels]
            labels = torch.tensor([class_index[r.split("/")[-2]] for r in rels], dtype=torch.long)
            parts[domain] = ImagePart(paths, labels, image_size, name)
        splits[split] = MultiInputDataset(parts)
        sizes[split] = splits[split].task_sizes()
    return Splits(
        splits["train"],
        splits["val"],
        splits["test"],
        manifest=manifest,
        info={"classes": classes, "split_sizes": sizes, "split": split_name},
    )


def _capped(problems: list[str], limit: int = 20) -> list[str]:
    if len(problems) <= limit:
        return problems
    return [*problems[:limit], f"... and {len(problems) - limit} more"]


def verify(root: Path, *, name: str | None = None, decode_images: bool = False) -> list[str]:
    """Layout, official counts and the paper's split; ``decode_images`` also decodes every image."""
    root = Path(root)
    names = [name] if name else [n for n in DATASETS if (root / n).exists()] or list(DATASETS)
    problems: list[str] = []
    for n in names:
        try:
            splits = load(root, name=n)
        except (DatasetNotFound, DatasetCorrupt) as err:
            problems.append(str(err))
            continue
        for split in SPLITS if decode_images else ():
            ds = splits[split]
            assert isinstance(ds, MultiInputDataset)
            for part in ds.parts.values():
                assert isinstance(part, ImagePart)
                for path in part.paths:
                    try:
                        read_image(path, 8, n)
                    except DatasetCorrupt as err:
                        problems.append(str(err))
    return _capped(problems)


def _find_dir(source: Path, marker: str, depth: int = 4) -> Path | None:
    """The first folder at most ``depth`` levels under ``source`` that contains ``marker``."""
    frontier = [source]
    for _ in range(depth + 1):
        nxt = []
        for d in frontier:
            if (d / marker).exists():
                return d
            nxt += [p for p in sorted(d.iterdir()) if p.is_dir()] if d.is_dir() else []
        frontier = nxt
    return None


def _extract(archive: Path, into: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            safe_extractall(tf, into, NAME)
    else:
        raise DatasetCorrupt(NAME, archive, "not a zip or tar archive")


def prepare(root: Path, source: Path | None = None, *, name: str | None = None) -> None:
    """Install a downloaded Office-31 / Office-Home release under ``<root>/<name>/``.

    Both datasets are distributed through links on their project pages (Google Drive), not
    a stable URL, so mtlbench does not download them: get
    ``domain_adaptation_images.tar.gz`` (Office-31, https://faculty.cc.gatech.edu/~judy/domainadapt/)
    or ``OfficeHomeDataset_10072016.zip`` (Office-Home, https://www.hemanthdv.org/officeHomeDataset.html)
    and pass the archive, or the folder it was extracted to, as ``source``. ``name`` is
    inferred from the content when omitted. The copy is made in a temporary folder and
    moved into place only when complete; ``verify`` runs at the end.
    """
    if source is None:
        raise SourceRequired(*([name] if name else ["office31", "officehome"]))
    root, source = Path(root), Path(source)
    if not source.exists():
        raise FileNotFoundError(f"source {source} does not exist")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".office-") as tmp:
        src = source
        if source.is_file():
            src = Path(tmp) / "extracted"
            _extract(source, src)
        names = [name] if name else [n for n in DATASETS if _find_release(src, n) is not None]
        if not names:
            raise DatasetCorrupt(
                NAME, source, "found neither Office-31 (amazon/images) nor Office-Home (Art/)"
            )
        for n in names:
            found = _find_release(src, n)
            if found is None:
                raise DatasetCorrupt(n, source, "the release's domain folders were not found")
            info = _info(n)
            staging = Path(tmp) / n
            for domain in info.domains:
                ddir = _domain_dir(found, info, domain)
                if ddir is None:
                    raise DatasetCorrupt(n, found, f"domain folder {domain!r} is missing")
                shutil.copytree(ddir, staging / domain)
            target = root / n
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
            log.info("installed %s at %s", n, target)
            problems = verify(root, name=n, decode_images=True)
            if problems:
                raise DatasetCorrupt(n, target, "; ".join(problems[:5]))


def _find_release(src: Path, name: str) -> Path | None:
    marker = "amazon/images" if name == "office31" else "Clipart"
    return _find_dir(src, marker)

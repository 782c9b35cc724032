"""What a dataset module provides, and the two dataset containers the env iterates.

Every dataset module under :mod:`mtlbench.data` exposes module-level functions::

    NAME: str
    def load(root: Path, **kwargs) -> Splits          # raises DatasetNotFound if absent
    def verify(root: Path) -> list[str]                 # problems found; [] when intact
    def prepare(root: Path, source: Path | None) -> None   # documented preparation
    DESCRIPTION: str                                      # source, sizes, licence, splits

and registers a :class:`Source` per dataset name (where the files come from and the exact
``mtlbench data prepare`` command that installs them), which every "not found", offline
and status message quotes. :func:`download` is the one downloader (resumable, with a
progress bar).

A split is an :class:`MTLDataset`: items are ``(x, {task: y})``. The env asks it for
batches with a ``torch.Generator`` seeded from the run seed only, so data order never
depends on the policy. :class:`TensorMTLDataset` keeps everything in memory (and on the
GPU when there is one) and slices batches without a DataLoader; other datasets go
through ``torch.utils.data.DataLoader`` with workers.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

Batch = tuple[Any, dict[str, torch.Tensor]]

__all__ = [
    "SOURCES",
    "Batch",
    "DatasetCorrupt",
    "DatasetNotFound",
    "DownloadFailed",
    "MTLDataset",
    "Source",
    "SourceRequired",
    "Splits",
    "TensorMTLDataset",
    "data_root",
    "download",
    "file_sha256",
    "ids_sha256",
    "move_to",
    "prepare_command",
    "rebuild_problems",
    "register_source",
]


@dataclass(frozen=True)
class Source:
    """Where dataset ``name``'s files come from and how ``mtlbench data prepare`` takes them.

    ``url`` is the page or file to get them from, ``files`` what to get, ``path`` what
    ``--source PATH`` must name. ``downloads``: ``prepare NAME`` fetches ``url`` itself
    (``--source`` is the offline alternative). ``bundled``: the data ships inside an
    installed package and nothing is fetched.
    """

    name: str
    url: str
    files: str
    path: str = "the downloaded archive, or the folder it was extracted to"
    downloads: bool = False
    bundled: bool = False

    @property
    def command(self) -> str:
        """The command that installs the dataset from what is on this machine."""
        if self.downloads or self.bundled:
            return f"mtlbench data prepare {self.name}"
        return f"mtlbench data prepare {self.name} --source PATH"

    def instructions(self) -> str:
        """Where to get the files and exactly how to pass them (one paragraph)."""
        if self.bundled:
            return f"{self.name} ships with {self.files} ({self.url}); run `{self.command}`."
        manual = (
            f"get {self.files} from {self.url} and run "
            f"`mtlbench data prepare {self.name} --source PATH` with PATH {self.path}."
        )
        if self.downloads:
            return f"`{self.command}` downloads {self.url}; without network access, {manual}"
        return f"{self.name} cannot be downloaded automatically: {manual}"


#: dataset name -> its :class:`Source`, registered by the dataset modules
SOURCES: dict[str, Source] = {}


def register_source(*sources: Source) -> None:
    for source in sources:
        SOURCES[source.name] = source


def prepare_command(name: str) -> str:
    """The ``mtlbench data prepare`` command that works for ``name`` (``--source`` when needed)."""
    source = SOURCES.get(name)
    return source.command if source is not None else f"mtlbench data prepare {name}"


class DatasetNotFound(FileNotFoundError):
    """The dataset is not under the data root; the message names the prepare command."""

    def __init__(self, name: str, root: Path, missing: str) -> None:
        source = SOURCES.get(name)
        how = f"Run `{prepare_command(name)}`" + (
            f" ({source.instructions()})" if source is not None and not source.bundled else ""
        )
        super().__init__(
            f"dataset {name!r} not found under the data root {root} ({missing} is missing). "
            f"{how}, or point MTLBENCH_DATA / data_root= at a prepared copy."
        )
        self.name, self.root = name, root


class SourceRequired(FileNotFoundError, ValueError):
    """``prepare`` needs ``--source`` for a dataset that cannot be downloaded automatically.

    Both a ``FileNotFoundError`` and a ``ValueError`` (the two forms modules raised before).
    """

    def __init__(self, *names: str) -> None:
        texts = [SOURCES[n].instructions() if n in SOURCES else f"{n} needs --source PATH" for n in names]
        super().__init__(" ".join(texts))
        self.names = names


class DownloadFailed(OSError):
    """A download failed (offline, refused, HTTP error); says how to install without it."""

    def __init__(self, url: str, reason: object, name: str | None = None) -> None:
        source = SOURCES.get(name) if name else None
        what = f"could not download {url} ({reason})."
        if source is not None:
            what += (
                f" Without network access, get {source.files} from {source.url} on another machine and "
                f"run `mtlbench data prepare {source.name} --source PATH` with PATH {source.path}."
            )
        super().__init__(what)
        self.url = url


class DatasetCorrupt(ValueError):
    """A file under the data root is unreadable or has the wrong shape/checksum."""

    def __init__(self, name: str, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(
            f"dataset {name!r}: {path} is corrupt ({problem}). Re-run `{prepare_command(name)}` "
            f"or `mtlbench data verify {name}` for a full check."
        )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _drop_empty(folder: Path, created: bool) -> None:
    """Remove ``folder`` if this call created it and nothing was written to it."""
    if created and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def download(
    url: str,
    dest: Path,
    sha256: str | None = None,
    *,
    name: str | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> str:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part``; check ``sha256`` when given.

    Shows a tqdm progress bar (bytes, on stderr) unless ``progress`` is False. Returns the
    file's SHA-256; the file appears at ``dest`` only when complete and checked, with the
    digest in ``dest.sha256``. A network failure raises :class:`DownloadFailed`, whose
    message says how to install dataset ``name`` from files fetched elsewhere.
    """
    dest = Path(dest)
    if dest.is_file():
        digest = file_sha256(dest)
        if sha256 is None or digest == sha256:
            return digest
        dest.unlink()
    created = not dest.parent.exists()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = start > 0 and getattr(response, "status", 200) == 206
            length = response.headers.get("Content-Length")
            total = int(length) + (start if resumed else 0) if length and length.isdigit() else None
            with (
                part.open("ab" if resumed else "wb") as f,
                tqdm(
                    total=total,
                    initial=start if resumed else 0,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest.name,
                    disable=not progress,
                ) as bar,
            ):
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    f.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        if err.code != 416:  # 416: nothing left to fetch, the partial file is complete
            _drop_empty(dest.parent, created)
            raise DownloadFailed(url, f"HTTP {err.code} {err.reason}", name) from err
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
        _drop_empty(dest.parent, created)  # a partial download stays, to be resumed
        raise DownloadFailed(url, getattr(err, "reason", err), name) from err
    digest = file_sha256(part)
    if sha256 is not None and digest != sha256:
        part.unlink()
        raise DatasetCorrupt(
            name or dest.name,
            dest,
            f"SHA-256 {digest} != expected {sha256}; the partial download was removed",
        )
    shutil.move(part, dest)
    dest.with_name(dest.name + ".sha256").write_text(f"{digest}  {dest.name}\n")
    return digest


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data root: explicit argument, then ``$MTLBENCH_DATA``, then ~/.cache/mtlbench."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get("MTLBENCH_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mtlbench"


def ids_sha256(ids: Sequence[Any]) -> str:
    """Hash of a split's id list (one id per line), published in the env spec."""
    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()


def rebuild_problems(load: Callable[[Path | None], Any], root: Path | None) -> list[str]:
    """``verify`` of a dataset built from data inside a package: rebuild it with ``load``.

    ``load`` checks every split hash against the published manifest, so the problems are
    the error it raises (:class:`DatasetCorrupt`, or ``ImportError`` for a missing package).
    """
    try:
        load(root)
    except (DatasetCorrupt, ImportError) as err:
        return [str(err)]
    return []


def move_to(value: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Move tensors (possibly nested in dicts/lists) to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, Mapping):
        return {k: move_to(v, device, non_blocking) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(move_to(v, device, non_blocking) for v in value)
    return value


class MTLDataset(Dataset):
    """A split whose items are ``(x, {task: y})``; iterate it with :meth:`batches`."""

    collate_fn: Callable[[list[Any]], Batch] | None = None

    def num_batches(self, batch_size: int, drop_last: bool) -> int:
        n = len(self)  # type: ignore[arg-type]
        return n // batch_size if drop_last else -(-n // batch_size)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None,
        drop_last: bool,
        device: torch.device,
        num_workers: int = 0,
    ) -> Iterator[Batch]:
        loader = DataLoader(
            self,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            drop_last=drop_last,
            num_workers=num_workers,
            collate_fn=self.collate_fn,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
        )
        for batch in loader:
            yield move_to(batch, device)


class TensorMTLDataset(MTLDataset):
    """In-memory split: one input tensor and one target tensor per task, sliced per batch."""

    def __init__(self, inputs: torch.Tensor, targets: Mapping[str, torch.Tensor]) -> None:
        n = inputs.shape[0]
        for task, y in targets.items():
            if y.shape[0] != n:
                raise ValueError(f"task {task!r} has {y.shape[0]} targets for {n} inputs")
        self.inputs = inputs
        self.targets = dict(targets)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, i: int) -> Batch:
        return self.inputs[i], {t: y[i] for t, y in self.targets.items()}

    def to(self, device: torch.device) -> TensorMTLDataset:
        return TensorMTLDataset(self.inputs.to(device), {t: y.to(device) for t, y in self.targets.items()})

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None,
        drop_last: bool,
        device: torch.device,
        num_workers: int = 0,
    ) -> Iterator[Batch]:
        del num_workers  # slicing in memory needs no workers
        n = len(self)
        # The permutation is drawn on the CPU generator so that the order is the same on
        # every device for a given seed.
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order.to(self.inputs.device)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            x = self.inputs.index_select(0, idx)
            ys = {t: y.index_select(0, idx) for t, y in self.targets.items()}
            yield move_to((x, ys), device)


@dataclass
class Splits:
    """The three splits of a dataset plus the manifest that pins them."""

    train: MTLDataset
    val: MTLDataset
    test: MTLDataset
    manifest: dict[str, str] = field(default_factory=dict)  # split -> sha256 of its id list
    info: dict[str, Any] = field(default_factory=dict)  # e.g. target standardisation

    def __getitem__(self, split: str) -> MTLDataset:
        if split not in ("train", "val", "test"):
            raise KeyError(f"unknown split {split!r}; expected 'train', 'val' or 'test'")
        return getattr(self, split)

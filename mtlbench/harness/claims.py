"""Claims: a run being trained is claimed, so two grids on one results folder never train it twice.

Before a run starts, its grid creates ``<result file>.claim`` beside the result (for
``.../seed-0.json``, ``.../seed-0.json.claim``), takes an exclusive ``flock`` on it and
writes its pid, host name and start time into it. A second grid that reaches the same run
finds the lock held and skips the run, reporting ``claimed by pid N on HOST since T``. The
claim is released (the file removed, then the lock dropped) when the run's result is stored,
when the run is stopped (Ctrl-C) and when the grid fails.

Stale claims recover by themselves: the kernel drops a lock when its process ends, however it
ends (``kill -9`` included), so a claim file whose lock is free belongs to a dead grid and
the next grid takes it over (a warning names the dead holder). No pid probing, clocks or
heartbeats are involved. On NFS (v4, or v3 with NLM) ``flock`` is a byte-range lock of the
server, released when the holder's lease expires (about 90 s after its host dies). On a file
system without locks (``flock`` fails with ``ENOLCK``/``EOPNOTSUPP``), claims are off: a
warning says so, and two grids must not share that results folder.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Claim", "Holder", "acquire", "claim_path"]

logger = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
_warned_no_locks: set[str] = set()


def claim_path(target: str | os.PathLike[str]) -> Path:
    """The claim file of the result file ``target``."""
    target = Path(target)
    return target.with_name(target.name + ".claim")


@dataclass(frozen=True)
class Holder:
    """Who holds a claim another grid found (from the claim file; fields may be unknown)."""

    path: Path
    pid: int | None
    hostname: str | None
    started: float | None

    def __str__(self) -> str:
        since = (
            f" since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.started))}"
            if self.started
            else ""
        )
        return f"claimed by pid {self.pid or '?'} on {self.hostname or '?'}{since} ({self.path.name})"


class Claim:
    """A claim this process holds; :meth:`release` removes it (idempotent)."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        # unlink before unlocking: a grid that opened the old file and then gets the lock
        # sees that the path no longer names it, and starts over
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __repr__(self) -> str:
        return f"Claim({str(self.path)!r}, held={self.held})"


def acquire(target: str | os.PathLike[str]) -> Claim | Holder:
    """Claim the run whose result file is ``target``: a :class:`Claim`, or the :class:`Holder`."""
    path = claim_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is None:
                raise OSError(errno.ENOSYS, "no fcntl")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return _holder(path)
        except OSError as err:
            if err.errno not in _NO_LOCKS:
                os.close(fd)
                raise
            os.close(fd)
            if path.stat().st_size == 0:  # the empty file just created: not a claim
                path.unlink(missing_ok=True)
            _warn_no_locks(path, err)
            return Claim(path, None)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder released it between our open and our lock: try again
            os.close(fd)
            continue
        stale = os.pread(fd, 4096, 0)
        if stale.strip():
            logger.warning("recovered a stale claim (%s): its grid ended without releasing it", _holder(path))
        mine = json.dumps({"pid": os.getpid(), "hostname": socket.gethostname(), "started": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, mine.encode(), 0)
        return Claim(path, fd)


def _holder(path: Path) -> Holder:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    return Holder(path=path, pid=data.get("pid"), hostname=data.get("hostname"), started=data.get("started"))


def _warn_no_locks(path: Path, err: OSError) -> None:
    folder = str(path.parent.parent.parent)
    if folder not in _warned_no_locks:
        _warned_no_locks.add(folder)
        logger.warning(
            "this file system does not support locks (%s); runs under %s are not claimed: "
            "do not run two grids on this results folder at once",
            err.strerror,
            folder,
        )

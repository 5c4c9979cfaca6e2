"""One writer per batch store: a lock file held by the run that writes it.

Two runs writing one store at once mixed half-written results and crashed each other (a
stress run read 27 of 198 complete-marked results half-written or mixed). So a run takes
``STORE.lock`` (beside the store: inside it, every Zarr reader would warn about a stranger in
the hierarchy) before it writes anything and holds it until it ends: the file records the
owner (pid, host, command, start time) and carries an exclusive ``flock``; it is removed when
the run ends. A second run into the same store refuses at once, in one line naming the owner
— it never waits silently and never shares the store.

Stale locks cannot happen: the operating system drops a ``flock`` when its process ends,
however it ends (``SIGKILL`` included), so a lock file left by a dead run is simply taken
over; the owner recorded in it is only for the message. (Taking a lock checks that the file
locked is still the one at the path, so removing it on release cannot let two runs in.) On a
file system without locks (a few network mounts) the run warns and goes on unlocked. The Dask workers a run starts write
under its lock; readers (:func:`~dynprobe.batching.open_batch`) need none: they read only
complete, verified results.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sys
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import DynprobeError

__all__ = ["StoreLock", "StoreBusyError", "lock_path"]

LOCK_SUFFIX = ".lock"


def lock_path(store: str | Path) -> Path:
    """The lock file of ``store``: ``runs.zarr`` → ``runs.zarr.lock`` beside it."""
    store = Path(store)
    return store.with_name(store.name + LOCK_SUFFIX)


class StoreBusyError(DynprobeError):
    """Another run is writing this batch store."""


def _owner() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:200],
            "since_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}


class StoreLock:
    """``with StoreLock(store):`` — exclusive writing of ``store``."""

    def __init__(self, store: str | Path) -> None:
        self.store = Path(store)
        self.path = lock_path(self.store)
        self._fd: int | None = None

    def owner(self) -> dict[str, Any]:
        """What the lock file says about its owner (``{}`` if unreadable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            warnings.warn(f"batch store {str(self.store)!r}: no file locks on this platform; make sure no other run "
                          "writes this store", RuntimeWarning, stacklevel=3)
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                who = self.owner()
                since = f" since {who['since_utc']}" if "since_utc" in who else ""
                raise StoreBusyError(
                    f"batch store {str(self.store)!r} is being written by another run (pid {who.get('pid', '?')} on "
                    f"{who.get('host', '?')}{since}: {who.get('command', '?')}); wait for it to end or choose another "
                    "--out") from None
            except OSError as err:  # no locks on this file system
                os.close(fd)
                warnings.warn(f"batch store {str(self.store)!r}: cannot lock it ({err.strerror}); make sure no other "
                              "run writes this store", RuntimeWarning, stacklevel=3)
                return
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the previous owner removed it between our open and our lock: take the new one
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_owner()).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            try:
                self.path.unlink()  # while still locked: a waiting open then locks a removed file and retries
            except OSError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

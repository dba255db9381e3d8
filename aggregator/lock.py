"""One refresh at a time per SQLite store: an exclusive, non-blocking lock file.
(Workers sharing a PostgreSQL store coordinate in the database instead: see
:mod:`.store`.)

``flock`` locks belong to the open file, so the kernel releases the lock of a
process that dies, however it dies: a lock left by a killed run is recovered
by the next one without any clean-up. The file also holds the holder's pid
and command ("1234 preview"), for the message a second run prints, and so
that a refresh can wait for a command an editor runs by hand (``preview``,
``reclassify``) instead of giving up at once: see :func:`exclusive`.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from .errors import AggregatorError, StoreError
from .types import PostgresURL


class Locked(AggregatorError):
    """Another process holds the lock."""


#: Seconds between two attempts to take a lock that a caller waits for.
POLL = 0.2


#: How long to wait for the lock, by the holder's command ("" when unknown).
Wait = float | Callable[[str], float]


def refresh_lock(
    storage: Path | PostgresURL,
    wait: Wait = 0,
    waiting: Callable[[str], None] | None = None,
    command: str = "refresh",
    stop: threading.Event | None = None,
) -> AbstractContextManager[None]:
    """The lock a refresh holds: the SQLite store's lock file; none for
    PostgreSQL, where several workers may refresh at once. See :func:`exclusive`."""
    if isinstance(storage, PostgresURL):
        return nullcontext()
    return exclusive(lock_path(storage), wait, waiting, command, stop)


def lock_path(storage: Path) -> Path:
    """The lock file of a store: beside it."""
    return storage.with_name(storage.name + ".lock")


@contextmanager
def exclusive(
    path: Path,
    wait: Wait = 0,
    waiting: Callable[[str], None] | None = None,
    command: str = "",
    stop: threading.Event | None = None,
) -> Iterator[None]:
    """Hold the lock at ``path`` for the duration of the block, as ``command``;
    if another process holds it, wait up to ``wait`` seconds for it (or
    ``wait(its command)``, from when that command is seen to hold it: a
    refresh that takes over from a preview is not waited for), calling
    ``waiting`` once with the reason (naming the holder); and not once
    ``stop`` is set.

    Raises:
        Locked: another process holds it, still after ``wait`` or once
            ``stop`` is set (the message names its pid).
        StoreError: the lock file cannot be created (the store's folder cannot be).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise StoreError(f"{path}: cannot create the store's lock file ({e.strerror})") from e
    try:
        deadline, seen = 0.0, None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as e:
                pid, held_by = holder(fd)
                who = f"pid {pid}, {held_by}" if held_by else f"pid {pid}"
                reason = f"{path}: another aggregator ({who}) is running"
                if seen is None or (callable(wait) and held_by != seen):
                    deadline = time.monotonic() + (wait(held_by) if callable(wait) else wait)
                    seen = held_by
                if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                    raise Locked(reason) from e
                if waiting is not None:
                    waiting(reason)
                    waiting = None
                if stop is not None:
                    stop.wait(POLL)
                else:
                    time.sleep(POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}".strip().encode() + b"\n", 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(fd: int) -> tuple[str, str]:
    """The pid ("?" if unknown) and command ("" if unknown: written by an
    older version, or not yet) of the lock file's holder."""
    line = os.pread(fd, 64, 0).decode("ascii", "replace").partition("\n")[0]
    pid, _, command = line.strip().partition(" ")
    return pid or "?", command.strip()

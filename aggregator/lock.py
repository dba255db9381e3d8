"""One refresh at a time per SQLite store: an exclusive, non-blocking lock file.
(Workers sharing a PostgreSQL store coordinate in the database instead: see
:mod:`.store`.)

``flock`` locks belong to the open file, so the kernel releases the lock of a
process that dies, however it dies: a lock left by a killed run is recovered
by the next one without any clean-up. The file also holds the holder's pid,
for the message a second run prints.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from .errors import AggregatorError, StoreError
from .types import PostgresURL


class Locked(AggregatorError):
    """Another process holds the lock."""


def refresh_lock(storage: Path | PostgresURL) -> AbstractContextManager[None]:
    """The lock a refresh holds: the SQLite store's lock file; none for
    PostgreSQL, where several workers may refresh at once."""
    if isinstance(storage, PostgresURL):
        return nullcontext()
    return exclusive(lock_path(storage))


def lock_path(storage: Path) -> Path:
    """The lock file of a store: beside it."""
    return storage.with_name(storage.name + ".lock")


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the lock at ``path`` for the duration of the block.

    Raises:
        Locked: another process holds it (the message names its pid).
        StoreError: the lock file cannot be created (the store's folder cannot be).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise StoreError(f"{path}: cannot create the store's lock file ({e.strerror})") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise Locked(f"{path}: another aggregator (pid {holder}) is running") from e
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

"""The aggregator's exceptions: one small tree.

::

    AggregatorError
     +-- ConfigError        feeds.yaml is unreadable or invalid (file, key, problem)
     +-- StoreError         the database cannot be opened or used
          +-- RolledBack    a transaction that shared a commit with one that failed
     +-- SourceError        one source failed; the run records it and goes on
          +-- FetchError    network, HTTP status, timeout, size limit
          +-- ParseError    the body is not a usable feed

Library errors are wrapped with ``raise X(...) from e``. Anything that is not an
``AggregatorError`` is a bug and crashes the run loudly.
"""

from __future__ import annotations

from pathlib import Path

from .types import redacted


class AggregatorError(Exception):
    """Base of every error the aggregator raises on purpose."""


class ConfigError(AggregatorError):
    """``feeds.yaml`` is unreadable or invalid.

    The message always names the file, the key path (``sources[2].url``) and
    the problem.
    """

    def __init__(self, path: Path | str, key: str | None, problem: str) -> None:
        self.path = Path(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else str(self.path)
        super().__init__(f"{where}: {problem}")


class StoreError(AggregatorError):
    """The store cannot be opened, migrated or written."""


class OutputError(AggregatorError):
    """The output folder cannot be written (a file in its place, no permission...)."""


class WorkersDied(AggregatorError):
    """A worker process preparing items died (killed, out of memory): the
    refresh stopped. What it stored is kept; the next run fetches the rest."""


class RolledBack(StoreError):
    """Another transaction of the group this one belongs to failed, taking
    this one with it (:meth:`~aggregator.store.Store.grouped`); that failure
    is the one to report."""


class SourceError(AggregatorError):
    """One source could not be refreshed; carries its URL."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        # Shown, logged and stored: without the credentials of any URL it quotes.
        self.reason = redacted(reason)
        super().__init__(f"{redacted(url)}: {self.reason}")

    def __reduce__(self) -> tuple[type[SourceError], tuple[str, str]]:
        # Raised in worker processes: pickled with its own arguments.
        return (type(self), (self.url, self.reason))


class FetchError(SourceError):
    """The source could not be downloaded.

    ``status`` is the HTTP status when there was one; ``retry_after`` the
    seconds a 429 or 503 asked to wait.
    """

    def __init__(
        self,
        url: str,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(url, reason)
        self.status = status
        self.retry_after = retry_after


class ParseError(SourceError):
    """The downloaded body is not a usable feed."""

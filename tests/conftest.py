"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import postgres
from .support import FeedServer


@pytest.fixture
def server() -> Iterator[FeedServer]:
    """A real HTTP server on 127.0.0.1, stopped after the test."""
    srv = FeedServer()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the whole session (see tests/postgres.py)."""
    with postgres.server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest) -> str | None:
    """Where a test's store lives: None for the default SQLite file beside
    feeds.yaml, or a PostgreSQL URI (a fresh schema on the session's server)."""
    if request.param == "sqlite":
        return None
    return postgres.fresh_schema(request.getfixturevalue("postgres_server"))

"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import FeedServer


@pytest.fixture
def server() -> Iterator[FeedServer]:
    """A real HTTP server on 127.0.0.1, stopped after the test."""
    srv = FeedServer()
    srv.start()
    yield srv
    srv.stop()

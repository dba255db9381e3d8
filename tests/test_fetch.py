"""Fetching against a real loopback server: validators, limits, failures."""

from __future__ import annotations

import asyncio
import gzip
import time

import pytest

from aggregator.errors import FetchError
from aggregator.fetch import Fetcher, user_agent
from aggregator.types import FetchConfig, FetchResult, Validators

from .support import FeedServer

FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title></channel></rss>"


def fetch(url: str, validators: Validators | None = None, **limits: object) -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher(FetchConfig(**limits)) as fetcher:  # type: ignore[arg-type]
            return await fetcher.fetch(url, validators or Validators())

    return asyncio.run(go())


def test_ok_returns_body_headers_and_validators(server: FeedServer) -> None:
    url = server.serve("/feed", FEED, content_type="application/rss+xml; charset=utf-8")

    result = fetch(url, contact="https://news.example.org/about")

    assert result.body == FEED
    assert result.url == url
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert result.validators.etag and result.validators.last_modified
    assert result.validators.body_hash
    request = server.hits("/feed")[0]
    assert request["User-Agent"] == user_agent("https://news.example.org/about")
    assert "+https://news.example.org/about" in request["User-Agent"]
    assert "gzip" in request["Accept-Encoding"]


def test_conditional_get_answered_304_has_no_body(server: FeedServer) -> None:
    url = server.serve("/feed", FEED)
    first = fetch(url)

    second = fetch(url, first.validators)

    assert second.not_modified
    assert second.validators == first.validators
    headers = server.hits("/feed")[1]
    assert headers["If-None-Match"] == first.validators.etag
    assert headers["If-Modified-Since"] == first.validators.last_modified


def test_identical_body_without_validators_counts_as_unchanged(server: FeedServer) -> None:
    url = server.serve("/feed", FEED, validators=False)
    first = fetch(url)

    second = fetch(url, first.validators)

    assert first.body == FEED
    assert second.not_modified


def test_gzip_is_decoded(server: FeedServer) -> None:
    url = server.serve("/gz", gzip.compress(FEED), headers={"Content-Encoding": "gzip"})

    assert fetch(url).body == FEED


def test_redirect_is_followed_and_the_final_url_reported(server: FeedServer) -> None:
    target = server.serve("/new", FEED)
    url = server.serve("/old", b"", status=302, headers={"Location": "/new"})

    result = fetch(url)

    assert result.body == FEED
    assert result.url == target


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "HTTP 500"), (404, "HTTP 404"), (410, "HTTP 410")]
)
def test_http_errors(server: FeedServer, status: int, reason: str) -> None:
    url = server.serve("/x", b"nope", status=status)

    with pytest.raises(FetchError, match=reason) as info:
        fetch(url)

    assert info.value.url == url


def test_connection_refused() -> None:
    with pytest.raises(FetchError, match="cannot connect"):
        fetch("http://127.0.0.1:9/feed")


def test_redirect_loop(server: FeedServer) -> None:
    server.serve("/a", b"", status=302, headers={"Location": "/b"})
    url = server.serve("/b", b"", status=302, headers={"Location": "/a"})

    with pytest.raises(FetchError, match="redirects"):
        fetch(url)


def test_slow_server_hits_the_total_deadline(server: FeedServer) -> None:
    url = server.serve("/slow", FEED, delay=5)
    started = time.monotonic()

    with pytest.raises(FetchError, match="within 0.5 s|timed out"):
        fetch(url, timeout=0.5)

    assert time.monotonic() - started < 3


def test_dripping_server_hits_the_total_deadline(server: FeedServer) -> None:
    # One byte every 0.1 s: every read succeeds, the whole takes 8 s.
    url = server.serve("/drip", FEED, drip=0.1)
    started = time.monotonic()

    with pytest.raises(FetchError, match="no complete answer within 1 s"):
        fetch(url, timeout=1)

    assert time.monotonic() - started < 4


@pytest.mark.parametrize("declared", [True, False])
def test_body_over_the_cap(server: FeedServer, declared: bool) -> None:
    url = server.serve("/big", b"x" * 5000, content_length=declared)

    with pytest.raises(FetchError, match="limit"):
        fetch(url, max_bytes=1000)


def test_gzip_bomb_stops_at_the_cap(server: FeedServer) -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)  # 20 MB of zeros in ~20 kB
    url = server.serve("/bomb", bomb, headers={"Content-Encoding": "gzip"})

    with pytest.raises(FetchError, match="after decompression"):
        fetch(url, max_bytes=1_000_000)


def test_per_host_limit_serialises_requests_to_one_host(server: FeedServer) -> None:
    for i in range(3):
        server.serve(f"/s{i}", FEED, delay=0.3)

    async def go() -> float:
        async with Fetcher(FetchConfig(per_host=1)) as fetcher:
            started = time.monotonic()
            await asyncio.gather(
                *(fetcher.fetch(server.url(f"/s{i}"), Validators()) for i in range(3))
            )
            return time.monotonic() - started

    assert asyncio.run(go()) >= 0.9

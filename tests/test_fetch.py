"""Fetching against a real loopback server: validators, limits, failures."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import socket
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import brotli
import httpx
import pytest

from aggregator import fetch as fetch_module
from aggregator.errors import FetchError
from aggregator.fetch import Fetcher, retry_after, user_agent
from aggregator.types import FetchConfig, FetchResult, Validators

from .support import FeedServer

FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title></channel></rss>"


def fetch(url: str, validators: Validators | None = None, **limits: object) -> FetchResult:
    async def go() -> FetchResult:
        settings: dict[str, object] = {"allow_private": True, **limits}
        async with Fetcher(FetchConfig(**settings)) as fetcher:  # type: ignore[arg-type]
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
        async with Fetcher(FetchConfig(per_host=1, host_delay=0, allow_private=True)) as fetcher:
            started = time.monotonic()
            await asyncio.gather(
                *(fetcher.fetch(server.url(f"/s{i}"), Validators()) for i in range(3))
            )
            return time.monotonic() - started

    assert asyncio.run(go()) >= 0.9


@pytest.mark.parametrize(
    ("encoding", "compress"), [("br", brotli.compress), ("deflate", zlib.compress)]
)
def test_brotli_and_deflate_are_decoded(
    server: FeedServer, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    url = server.serve("/c", compress(FEED), headers={"Content-Encoding": encoding})

    assert fetch(url).body == FEED
    assert encoding in server.hits("/c")[0]["Accept-Encoding"]


def test_cache_control_max_age_is_reported(server: FeedServer) -> None:
    url = server.serve("/cc", FEED, headers={"Cache-Control": "public, max-age=7200"})

    assert fetch(url).max_age == 7200


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_reported_on_429_and_503(server: FeedServer, status: int) -> None:
    url = server.serve("/busy", b"later", status=status, headers={"Retry-After": "3600"})

    with pytest.raises(FetchError) as info:
        fetch(url)

    assert (info.value.status, info.value.retry_after) == (status, 3600)


def test_retry_after_as_a_date() -> None:
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(minutes=10), usegmt=True)
    assert 500 < (retry_after(soon) or 0) <= 600
    assert retry_after("soon") is None


@pytest.mark.parametrize(
    ("status", "moved"), [(301, True), (308, True), (302, False), (307, False)]
)
def test_permanent_redirects_are_reported_temporary_ones_not(
    server: FeedServer, status: int, moved: bool
) -> None:
    target = server.serve("/new", FEED)
    url = server.serve("/old", b"", status=status, headers={"Location": "/new"})

    result = fetch(url)

    assert result.body == FEED
    assert result.moved_to == (target if moved else None)


def test_a_temporary_hop_ends_the_move(server: FeedServer) -> None:
    server.serve("/final", FEED)
    server.serve("/temp", b"", status=302, headers={"Location": "/final"})
    url = server.serve("/perm", b"", status=301, headers={"Location": "/temp"})

    assert fetch(url).moved_to == server.url("/temp")


def test_requests_to_one_host_are_spaced(server: FeedServer) -> None:
    for i in range(3):
        server.serve(f"/h{i}", FEED)

    async def go() -> float:
        config = FetchConfig(per_host=3, host_delay=0.3, allow_private=True)
        async with Fetcher(config) as fetcher:
            started = time.monotonic()
            await asyncio.gather(
                *(fetcher.fetch(server.url(f"/h{i}"), Validators()) for i in range(3))
            )
            return time.monotonic() - started

    assert asyncio.run(go()) >= 0.6


def test_private_addresses_are_refused_by_default(server: FeedServer) -> None:
    url = server.serve("/feed", FEED)

    with pytest.raises(FetchError, match=r"refused: 127.0.0.1 is at 127.0.0.1, not a public"):
        fetch(url, allow_private=False)

    assert server.hits("/feed") == []  # not even one request reached it


def test_a_redirect_to_a_private_address_is_refused(server: FeedServer) -> None:
    async def go() -> FetchResult:
        config = FetchConfig(allow_private=False)
        transport = httpx.MockTransport(
            lambda request: httpx.Response(302, headers={"Location": "http://169.254.169.254/"})
        )
        client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=True,
            event_hooks={"request": [fetch_module._refuse_private_addresses]},
        )
        async with Fetcher(config, client) as fetcher:
            return await fetcher.fetch("http://93.184.216.34/feed", Validators())

    with pytest.raises(FetchError, match="169.254.169.254 is at 169.254.169.254"):
        asyncio.run(go())


def test_a_name_that_rebinds_to_a_private_address_after_the_check_is_refused(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is public when the request is checked, then
    loopback when the connection is opened. The connection is refused."""
    url = server.serve("/feed", FEED).replace("127.0.0.1", "rebinding.test")
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1", "127.0.0.1"])

    def rebinding(host: object, *args: object, **kwargs: object) -> object:
        if host == "rebinding.test":
            return real(next(answers), *args, **kwargs)  # type: ignore[arg-type]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)

    with pytest.raises(FetchError, match=r"refused: rebinding.test is at 127.0.0.1"):
        fetch(url, allow_private=False)

    assert server.hits("/feed") == []


def test_proxies_named_in_the_environment_are_not_used(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would connect on our behalf, past the private-address check:
    # none is used, in either mode (nothing listens on the port named here).
    url = server.serve("/feed", FEED)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    assert fetch(url).body == FEED


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("http://127.0.0.1:99999/x", "port 99999 does not exist"),
        ("http://a.example:abc/", "not a usable URL: Invalid port: 'abc'"),
    ],
)
def test_a_url_that_cannot_be_fetched_is_that_sources_error(path: str, reason: str) -> None:
    """A port above 65535 raised OverflowError from the socket (inside an
    exception group), past every handler; a redirect there ended the refresh."""
    with pytest.raises(FetchError, match=reason):
        fetch(path)


def test_an_unexpected_failure_while_fetching_is_that_sources_error(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.serve("/feed", FEED)

    async def broken(*args: object) -> FetchResult:
        raise ExceptionGroup("unhandled errors in a TaskGroup", [OverflowError("port")])

    monkeypatch.setattr(Fetcher, "_get", broken)
    with pytest.raises(FetchError, match="could not be fetched: ExceptionGroup"):
        fetch(url)


def test_a_proxy_fetches_on_our_behalf(server: FeedServer) -> None:
    """fetch.proxy: every request goes through it, even for names this machine
    cannot resolve (the proxy resolves them); the address check still refuses
    a private address it can see."""
    server.serve("/feed.xml", b"<rss/>")
    config = FetchConfig(host_delay=0, proxy=server.url(""))

    async def go() -> tuple[FetchResult, str]:
        async with Fetcher(config) as fetcher:
            result = await fetcher.fetch("http://feeds.invalid/feed.xml", Validators())
            with pytest.raises(FetchError) as refused:
                await fetcher.fetch("http://10.0.0.1/feed.xml", Validators())
            return result, refused.value.reason

    result, refused = asyncio.run(go())

    assert result.body == b"<rss/>"
    assert server.proxied == ["http://feeds.invalid/feed.xml"]
    assert "not a public address" in refused

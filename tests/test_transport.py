"""The fetcher's connection pool (aggregator.transport): the same decisions as
httpcore's, connections kept and reused, closed ones noticed."""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import pytest
import trustme
from httpcore._utils import is_socket_readable

from aggregator.fetch import Fetcher, http_transport
from aggregator.transport import CheapReadiness, LinearPool, is_readable
from aggregator.types import FetchConfig, Validators

# --- the pool's decisions, against httpcore's own ------------------------------


@dataclass
class FakeConnection:
    """What the pool asks a connection, answered from fixed values."""

    name: str
    origin: str
    closed: bool = False
    expired: bool = False
    idle: bool = False
    available: bool = False
    asked: list[str] = field(default_factory=list)

    def is_closed(self) -> bool:
        return self.closed

    def has_expired(self) -> bool:
        self.asked.append("has_expired")  # polls a socket: counted
        return self.expired

    def is_idle(self) -> bool:
        return self.idle

    def is_available(self) -> bool:
        return self.available

    def can_handle_request(self, origin: str) -> bool:
        return origin == self.origin


@dataclass
class FakeRequest:
    name: str
    origin: str
    queued: bool = True
    assigned: str | None = None

    @property
    def request(self) -> FakeRequest:
        return self

    @property
    def url(self) -> FakeRequest:
        return self

    def is_queued(self) -> bool:
        return self.queued

    def assign_to_connection(self, connection: FakeConnection) -> None:
        self.assigned = connection.name
        self.queued = False


def random_pool(rng: random.Random, kind: type[httpcore.AsyncConnectionPool]) -> Any:
    """A pool of random connections and requests; the same ``rng`` state gives the same pool."""
    origins = ["a", "b", "c"]
    pool = kind(max_connections=rng.randint(1, 8), max_keepalive_connections=rng.randint(0, 6))
    pool._connections = [
        FakeConnection(
            f"c{i}",
            rng.choice(origins),
            closed=rng.random() < 0.15,
            expired=rng.random() < 0.15,
            idle=rng.random() < 0.5,
            available=rng.random() < 0.5,
        )
        for i in range(rng.randint(0, 10))
    ]
    pool._requests = [
        FakeRequest(f"r{i}", rng.choice(origins), queued=rng.random() < 0.7)
        for i in range(rng.randint(0, 8))
    ]
    created = iter(range(100))
    pool.create_connection = lambda origin: FakeConnection(f"new{next(created)}", origin)
    return pool


def outcome(pool: Any) -> tuple[object, ...]:
    """What the pool decided: connections closed, kept, assigned; sockets polled."""
    connections = list(pool._connections)
    closing = pool._assign_requests_to_connections()
    return (
        [c.name for c in closing],
        [c.name for c in pool._connections],
        [(r.name, r.assigned, r.queued) for r in pool._requests],
        [c.asked for c in connections],
    )


def test_linear_pool_decides_as_httpcore_does() -> None:
    for seed in range(3000):
        upstream = random_pool(random.Random(seed), httpcore.AsyncConnectionPool)
        linear = random_pool(random.Random(seed), LinearPool)
        assert outcome(linear) == outcome(upstream), f"seed {seed}"


def test_the_fetchers_pool_is_linear_only_with_the_httpcore_versions_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(httpcore, "__version__", "1.0.9")
    pool = http_transport(public_only=False)._pool
    assert type(pool) is LinearPool
    assert isinstance(pool._network_backend, CheapReadiness)

    monkeypatch.setattr(httpcore, "__version__", "1.1.0")
    pool = http_transport()._pool
    assert type(pool) is httpcore.AsyncConnectionPool  # as httpx made it
    assert isinstance(pool._network_backend, CheapReadiness)  # public interfaces only


# --- readiness of a real socket ---------------------------------------------------


def test_is_readable_agrees_with_httpcore() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        states = []
        states.append((is_readable(ours), is_socket_readable(ours)))  # nothing to read
        theirs.sendall(b"x")
        time.sleep(0.05)
        states.append((is_readable(ours), is_socket_readable(ours)))  # data waiting
        ours.recv(1)
        theirs.close()
        time.sleep(0.05)
        states.append((is_readable(ours), is_socket_readable(ours)))  # closed by the peer
    assert states == [(False, False), (True, True), (True, True)]


# --- a real server: connections reused, closed ones replaced -----------------------


class Server:
    """HTTP/1.1 on 127.0.0.1 (over TLS with ``tls``) that answers 200 or, to a
    matching If-None-Match, 304; records each request's client port; closes a
    connection idle for ``idle_timeout`` seconds."""

    def __init__(
        self, idle_timeout: float | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.ports: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = idle_timeout

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.ports.append(self.client_address[1])
                if self.headers.get("If-None-Match") == '"v1"':
                    self.send_response(304)
                    self.send_header("ETag", '"v1"')
                    self.end_headers()
                    return
                body = b"<rss version='2.0'><channel><title>T</title></channel></rss>"
                self.send_response(200)
                self.send_header("ETag", '"v1"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # an idle connection timing out

        self._httpd = Quiet(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}/feed"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


async def fetch_three_times(url: str, pause: float = 0.0) -> list[bool]:
    """Whether each answer was a 304: once, and twice again after ``pause`` seconds."""
    config = FetchConfig(allow_private=True, host_delay=0)
    async with Fetcher(config) as fetcher:
        first = await fetcher.fetch(url, Validators())
        await asyncio.sleep(pause)
        second = await fetcher.fetch(url, first.validators)
        third = await fetcher.fetch(url, first.validators)
    return [first.not_modified, second.not_modified, third.not_modified]


def test_a_connection_is_reused_after_a_304() -> None:
    server = Server()
    try:
        assert asyncio.run(fetch_three_times(server.url)) == [False, True, True]
    finally:
        server.stop()
    assert len(server.ports) == 3
    assert len(set(server.ports)) == 1, server.ports  # one connection for all three


def trust_a_test_authority(folder: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 from a test authority
    that the fetcher trusts (through SSL_CERT_FILE, as httpx reads it)."""
    authority = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    authority.cert_pem.write_to_path(str(folder / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(folder / "ca.pem"))
    return context


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_connection_the_server_closed_while_idle_is_replaced(
    tls: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real sources are HTTPS: over TLS the kept socket is checked too (the
    # connection is wrapped again by start_tls).
    context = trust_a_test_authority(tmp_path, monkeypatch) if tls else None
    server = Server(idle_timeout=0.2, tls=context)
    try:
        # The server closes the pooled connection during the pause: it must be
        # noticed (the socket turns readable) and a new one opened, not written to.
        assert asyncio.run(fetch_three_times(server.url, pause=0.6)) == [False, True, True]
    finally:
        server.stop()
    first, second, third = server.ports
    assert first != second == third

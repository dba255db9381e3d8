"""Two per-request costs of httpcore 1.0's connection pool, removed with the
same behaviour (used by :mod:`.fetch` only).

Each time the pool assigns a request, it checks every pooled connection:

* **whether the server closed an idle connection**, by polling its socket. With
  the anyio backend, finding the socket builds anyio's whole table of socket
  attributes (a dozen closures, a ``getpeername`` call) for every check: with
  sixteen connections, seventy checks per request. :class:`CheapReadiness`
  wraps each connection so that it keeps its socket and polls it directly.
* **which connections are idle**, in a way that is quadratic in their number
  (it counts the pool with a list for each idle connection, and lists the
  idle ones for every queued request, needed or not). :class:`LinearPool` does
  the same in one pass. It replaces a private method, so it is used only with
  the httpcore versions it was checked against (:data:`LINEAR_POOL_VERSIONS`);
  with any other, the pool is left as it is.

Fetching 1,000 bodies of 160 kB from the benchmark farm, 16 at a time: 2.8 ms of
CPU per request before, 1.9 after. Known upstream (encode/httpcore pull
request 1035). What :mod:`.fetch` checks (private addresses, size caps,
deadlines) is untouched: this is below it.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

#: httpcore versions whose ``_assign_requests_to_connections`` :class:`LinearPool`
#: reproduces (the method has not changed from 1.0.0 to 1.0.9).
LINEAR_POOL_VERSIONS = ("1.0.",)


def cheapen(pool: httpcore.AsyncConnectionPool) -> None:
    """Remove both costs from ``pool`` (httpx's, before any request)."""
    pool._network_backend = CheapReadiness(pool._network_backend)
    if type(pool) is httpcore.AsyncConnectionPool and httpcore.__version__.startswith(
        LINEAR_POOL_VERSIONS
    ):
        pool.__class__ = LinearPool


class DelegatingBackend(httpcore.AsyncNetworkBackend):
    """A network backend that does what ``inner`` does; subclasses change a
    part, or wrap the connections it opens (:meth:`wrap`)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return self.wrap(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return self.wrap(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    def wrap(self, stream: httpcore.AsyncNetworkStream) -> httpcore.AsyncNetworkStream:
        """A connection opened by ``inner``, as this backend returns it."""
        return stream


class CheapReadiness(DelegatingBackend):
    """A network backend whose connections answer "is the socket readable?"
    with one poll of the socket they kept (:class:`_Stream`)."""

    def wrap(self, stream: httpcore.AsyncNetworkStream) -> httpcore.AsyncNetworkStream:
        return _Stream(stream)


class _Stream(httpcore.AsyncNetworkStream):
    """A connection that keeps its socket, to check it for readability."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return is_readable(self._socket)
        return self._inner.get_extra_info(info)


def is_readable(sock: socket.socket) -> bool:
    """True when reading ``sock`` would not wait: it holds data, or the peer
    closed it (as httpcore's own check; a closed socket counts as readable)."""
    fd = sock.fileno()
    if fd < 0:
        return True
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


class LinearPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, assigning requests to connections in linear time."""

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        """What httpcore 1.0's method does, decision for decision, without its
        quadratic counting. Kept as it is there: an idle connection is closed
        when the pool holds more connections than ``max_keepalive_connections``
        (httpcore counts every connection there, idle or not)."""
        connections: list[Any] = self._connections
        closing: list[httpcore.AsyncConnectionInterface] = []
        for connection in list(connections):
            if connection.is_closed():
                connections.remove(connection)
            elif connection.has_expired() or (
                connection.is_idle() and len(connections) > self._max_keepalive_connections
            ):
                connections.remove(connection)
                closing.append(connection)
        for request in [request for request in self._requests if request.is_queued()]:
            origin = request.request.url.origin
            connection = next(
                (c for c in connections if c.can_handle_request(origin) and c.is_available()),
                None,
            )
            if connection is None:
                if len(connections) >= self._max_connections:
                    idle = next((c for c in connections if c.is_idle()), None)
                    if idle is None:
                        continue  # the request waits for a connection
                    connections.remove(idle)
                    closing.append(idle)
                connection = self.create_connection(origin)
                connections.append(connection)
            request.assign_to_connection(connection)
        return closing

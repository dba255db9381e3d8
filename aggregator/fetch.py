"""Download feeds politely: the only module that uses httpx.

A :class:`Fetcher` sends conditional GETs (ETag, Last-Modified), caps the
concurrency overall and per host, bounds every request by a total deadline
(httpx's own timeouts are per read, so a server dripping one byte a second
would otherwise hold a request forever), and streams the decoded body under a
size cap, so a gzip bomb stops at the cap. A body identical to the last one is
reported as unchanged. Requests to one host are spaced by ``host_delay``. It
reports what the server said about the future (a permanent redirect,
``Cache-Control: max-age``, ``Retry-After``) but does not parse, store, or
decide when to fetch (see :mod:`.schedule`).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import ipaddress
import logging
import socket
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import urlsplit

import httpcore
import httpx

from . import __version__
from .errors import FetchError
from .transport import DelegatingBackend, cheapen
from .types import FetchConfig, FetchResult, Validators, redacted

#: What we ask for: feeds first, then anything (some servers send text/html).
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
#: Response headers kept for the parser.
KEPT_HEADERS = ("content-type", "content-language", "content-location")
MAX_REDIRECTS = 5

log = logging.getLogger(__name__)


def user_agent(contact: str | None) -> str:
    """The User-Agent sent with every request, with the operator's contact if known."""
    base = f"central-asia-aggregator/{__version__} (feed aggregator"
    return f"{base}; +{contact})" if contact else f"{base})"


class Fetcher:
    """Fetches sources with shared limits; use as an async context manager.

    Args:
        config: limits and timeouts.
        client: an httpx client to use (tests inject one); by default the
            fetcher makes and closes its own.
    """

    def __init__(self, config: FetchConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._own_client = client is None
        checks = [_refuse_bad_ports] + ([] if config.allow_private else [_refuse_private_addresses])
        hooks = {"request": checks}
        self._client = client or httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=httpx.Timeout(config.timeout),
            headers={"User-Agent": user_agent(config.contact)},
            event_hooks=hooks,
            transport=http_transport(public_only=not config.allow_private, proxy=config.proxy),
        )
        self._slots = asyncio.Semaphore(config.concurrency)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(config.per_host)
        )
        self._spacing: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._next_start: defaultdict[str, float] = defaultdict(float)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._own_client:
            await self._client.aclose()

    async def fetch(self, url: str, validators: Validators) -> FetchResult:
        """GET ``url``, conditionally on ``validators``.

        Returns:
            A result whose ``body`` is None when the server answered 304 or
            sent exactly the bytes it sent last time.
        Raises:
            FetchError: network failure, HTTP error status, total deadline
            passed, too many redirects, or a body over the size cap.
        """
        host = urlsplit(url).hostname or ""
        async with self._slots, self._hosts[host]:
            await self._space(host)
            try:
                async with asyncio.timeout(self.config.timeout):
                    return await self._get(url, validators)
            except TimeoutError as e:
                raise FetchError(url, f"no complete answer within {self.config.timeout:g} s") from e
            except PrivateAddress as e:
                raise FetchError(url, str(e)) from e
            except httpx.TooManyRedirects as e:
                raise FetchError(url, f"more than {MAX_REDIRECTS} redirects") from e
            except httpx.TimeoutException as e:
                raise FetchError(url, f"timed out ({type(e).__name__})") from e
            except httpx.ConnectError as e:
                raise FetchError(url, f"cannot connect: {e}") from e
            except httpx.HTTPError as e:
                raise FetchError(url, f"{type(e).__name__}: {e}".rstrip(": ")) from e
            except httpx.InvalidURL as e:
                raise FetchError(url, f"not a usable URL: {e}") from e
            except FetchError:
                raise
            except Exception as e:  # a hostile answer no layer expected: this source only
                log.error("source=%s could not be fetched (a bug)", redacted(url), exc_info=e)
                raise FetchError(url, f"could not be fetched: {type(e).__name__}: {e}") from e

    async def _space(self, host: str) -> None:
        """Wait until ``host_delay`` seconds have passed since the last request
        to ``host`` started."""
        if self.config.host_delay <= 0:
            return
        async with self._spacing[host]:
            loop = asyncio.get_running_loop()
            wait = self._next_start[host] - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_start[host] = loop.time() + self.config.host_delay

    async def _get(self, url: str, validators: Validators) -> FetchResult:
        headers = {"Accept": ACCEPT}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        async with self._client.stream("GET", url, headers=headers) as response:
            final_url = str(response.url)
            if response.status_code == 304:
                # Read to its (empty) end: the connection then goes back to
                # the pool; httpcore closes one whose response was not read.
                await response.aread()
                return FetchResult(
                    url=final_url,
                    body=None,
                    validators=validators,
                    moved_to=moved_to(response),
                    max_age=max_age(response.headers.get("cache-control")),
                )
            if response.status_code >= 400:
                reason = response.reason_phrase or "error"
                raise FetchError(
                    url,
                    f"HTTP {response.status_code} {reason}",
                    status=response.status_code,
                    retry_after=retry_after(response.headers.get("retry-after")),
                )
            if response.status_code != 200:
                raise FetchError(
                    url, f"unexpected HTTP {response.status_code}", status=response.status_code
                )
            body = await self._read_capped(url, response)
            kept = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
        digest = hashlib.sha256(body).hexdigest()
        new_validators = Validators(
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            body_hash=digest,
        )
        unchanged = digest == validators.body_hash
        return FetchResult(
            url=final_url,
            body=None if unchanged else body,
            headers=kept,
            validators=new_validators,
            moved_to=moved_to(response),
            max_age=max_age(response.headers.get("cache-control")),
        )

    async def _read_capped(self, url: str, response: httpx.Response) -> bytes:
        limit = self.config.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and "content-encoding" not in response.headers:
            if int(declared) > limit:
                raise FetchError(url, f"body of {declared} bytes is over the {limit}-byte limit")
        chunks: list[bytes] = []
        size = 0
        # aiter_bytes() yields decompressed bytes, so the cap also stops gzip bombs.
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise FetchError(url, f"body over the {limit}-byte limit (after decompression)")
            chunks.append(chunk)
        return b"".join(chunks)


class PrivateAddress(httpx.RequestError):
    """A request (or a redirect) to an address that is not on the internet."""


class BadPort(httpx.RequestError):
    """A request (or a redirect) to a port that does not exist."""


async def _refuse_bad_ports(request: httpx.Request) -> None:
    """httpx request hook, so every redirect hop is checked: a port above
    65535 (``Location: http://host:99999/``) raised OverflowError from the
    socket, past every handler, and ended the whole refresh."""
    port = request.url.port
    if port is not None and not 0 < port < 65536:
        raise BadPort(f"refused: port {port} does not exist", request=request)


async def _refuse_private_addresses(request: httpx.Request) -> None:
    """httpx request hook, so every redirect hop is checked too: refuse hosts
    that resolve to loopback, private, link-local or other non-global addresses
    (``is_global`` also covers 100.64.0.0/10, which ``is_private`` misses).
    The connection itself is checked again (:class:`_PublicOnly`)."""
    try:
        await _public_addresses(request.url.host, request.url.port or 443)
    except OSError:
        return  # unresolvable: the connection itself will fail and say so


async def _public_addresses(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, all of them public.

    Raises:
        PrivateAddress: one of them is not public.
        OSError: the name does not resolve.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global:
            raise PrivateAddress(
                f"refused: {host} is at {address}, not a public address"
                " (fetch.allow_private: true allows it)"
            )
        addresses.append(str(info[4][0]))
    return addresses


class _PublicOnly(DelegatingBackend):
    """Opens connections only to public addresses: it resolves the host itself
    and connects to the addresses it checked, so a DNS answer that changes
    between the request hook's check and the connection (DNS rebinding)
    cannot lead to a private address. TLS still checks the host's name."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await _public_addresses(host, port)
        except OSError as e:
            raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from e
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:  # in the resolver's order, as a plain connect would
            try:
                return await super().connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                error = e
        raise error


def http_transport(public_only: bool = True, proxy: str | None = None) -> httpx.AsyncHTTPTransport:
    """httpx's transport, connecting through :class:`_PublicOnly` if
    ``public_only``, without two costs of its connection pool
    (:func:`.transport.cheapen`).

    httpx does not take a network backend, so the one of its connection pool
    is wrapped (``_pool._network_backend``: httpx 0.28, httpcore 1.0). Being
    given a transport, httpx does not read proxies from the environment
    (``HTTP_PROXY``): only ``proxy`` (``fetch.proxy``) is used. Through a
    proxy, every connection goes to the proxy, which the operator chose:
    the address check is then the request hook's alone, on the names the
    machine can resolve (the proxy resolves the others, and connects).
    """
    transport = httpx.AsyncHTTPTransport(proxy=proxy)
    pool = transport._pool
    if public_only and proxy is None:
        pool._network_backend = _PublicOnly(pool._network_backend)
    cheapen(pool)
    return transport


def moved_to(response: httpx.Response) -> str | None:
    """Where the leading permanent redirects (301, 308) of a response led, if any.

    A temporary redirect (302, 303, 307) ends the run: what follows it is not
    the source's new address.
    """
    moved = None
    hops = [*response.history, response]
    for hop, following in zip(hops, hops[1:], strict=False):
        if hop.status_code not in (301, 308):
            break
        moved = str(following.url)
    return moved


def max_age(cache_control: str | None) -> float | None:
    """Seconds of ``Cache-Control: max-age``, or None."""
    for directive in (cache_control or "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name == "max-age" and value.strip().isdigit():
            return float(value.strip())
    return None


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


#: Seconds a WebSub hub has to answer a ping (at most ``fetch.timeout``),
#: and all the pings of a run together.
HUB_TIMEOUT = 10.0
HUB_BUDGET = 30.0


def ping_hub(hub: str, urls: list[str], config: FetchConfig) -> list[str]:
    """Tell a WebSub hub that these feeds changed (``hub.mode=publish``).

    Returns the problems, one per feed; a failed ping is not an error of the
    run: subscribers still poll. A hub that cannot be reached, answers 5xx,
    or does not answer within :data:`HUB_TIMEOUT`, is not asked again for
    the other feeds, and no ping starts after :data:`HUB_BUDGET`: a refresh
    holds the store's lock meanwhile.
    """
    problems: list[str] = []
    headers = {"User-Agent": user_agent(config.contact)}
    timeout = min(config.timeout, HUB_TIMEOUT)
    # trust_env=False: HTTP_PROXY is not read, as for fetching (fetch.proxy only).
    with httpx.Client(
        timeout=timeout, headers=headers, proxy=config.proxy, trust_env=False
    ) as client:
        deadline = time.monotonic() + HUB_BUDGET
        for n, url in enumerate(urls):
            if n and time.monotonic() > deadline:  # the first one always goes
                problems.extend(f"{other}: not pinged: out of time" for other in urls[n:])
                break
            hub_failed = False
            try:
                response = client.post(hub, data={"hub.mode": "publish", "hub.url": url})
                if response.status_code >= 300:
                    problems.append(f"{url}: HTTP {response.status_code}")
                    hub_failed = response.status_code >= 500
            except httpx.HTTPError as e:
                problems.append(f"{url}: {type(e).__name__}: {e}")
                hub_failed = isinstance(e, httpx.TransportError)  # unreachable, or silent
            if hub_failed:  # not asked again
                problems.extend(f"{other}: not pinged: the hub failed" for other in urls[n + 1 :])
                break
    return problems

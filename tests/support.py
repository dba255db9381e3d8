"""Test helpers: a real HTTP server on 127.0.0.1, configurations, the Atom schema."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from lxml import etree

DATA = Path(__file__).parent / "data"


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/xml"
    #: Seconds to wait before answering.
    delay: float = 0.0
    #: Seconds between bytes of the body: a server that drips.
    drip: float = 0.0
    #: Send Content-Length; without it the body ends when the connection closes.
    content_length: bool = True
    #: Send ETag and Last-Modified and honour conditional requests.
    validators: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    #: "user:password" that HTTP Basic authentication must give; else 401.
    credentials: str | None = None


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 serving :class:`Route` objects."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        #: (path, request headers) of every request, in order.
        self.requests: list[tuple[str, dict[str, str]]] = []
        #: The absolute URLs of the requests it answered as a proxy would
        #: (``GET http://host/path``); it serves their path.
        self.proxied: list[str] = []
        #: The most requests to one path that were ever being answered at once.
        self.most_at_once: dict[str, int] = {}
        self._at_once: dict[str, int] = {}
        self._counting = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.startswith(("http://", "https://")):  # asked as a proxy
                    server.proxied.append(self.path)
                    parts = urlsplit(self.path)
                    self.path = parts.path + (f"?{parts.query}" if parts.query else "")
                server.requests.append((self.path, dict(self.headers)))
                with server._counting:
                    now = server._at_once[self.path] = server._at_once.get(self.path, 0) + 1
                    server.most_at_once[self.path] = max(now, server.most_at_once.get(self.path, 0))
                try:
                    self._answer()
                finally:
                    with server._counting:
                        server._at_once[self.path] -= 1

            def _answer(self) -> None:
                route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", "text/plain", {})
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.credentials is not None:
                    token = base64.b64encode(route.credentials.encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {token}":
                        self._send(401, b"who are you?", "text/plain", {})
                        return
                headers = dict(route.headers)
                if route.validators and route.status == 200:
                    etag = '"' + hashlib.sha1(route.body).hexdigest() + '"'
                    headers["ETag"] = etag
                    headers["Last-Modified"] = email.utils.formatdate(0, usegmt=True)
                    if self.headers.get("If-None-Match") == etag:
                        self._send(304, b"", None, headers)
                        return
                if not route.content_length:
                    headers["Connection"] = "close"
                    self.close_connection = True
                self._send(
                    route.status,
                    route.body,
                    route.content_type,
                    headers,
                    route.drip,
                    route.content_length,
                )

            def _send(
                self,
                status: int,
                body: bytes,
                ctype: str | None,
                headers: dict[str, str],
                drip: float = 0.0,
                content_length: bool = True,
            ) -> None:
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                for name, value in headers.items():
                    self.send_header(name, value)
                if content_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status == 304:
                    return
                if not drip:
                    self.wfile.write(body)
                    return
                try:
                    for i in range(len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(drip)
                except OSError:
                    pass  # the client gave up, as it should

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up (size cap, deadline) is expected here

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: bytes | str, **kwargs: object) -> str:
        """Serve ``body`` at ``path``; return its URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route(body=data, **kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def in_flight(self) -> set[str]:
        """The paths of the requests being answered now."""
        with self._counting:
            return {path for path, n in self._at_once.items() if n}

    def hits(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.requests if p == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def write_config(folder: Path, sources: list[dict[str, object]], **extra: object) -> Path:
    """Write a feeds.yaml into ``folder`` and return its path.

    Requests to one host are not spaced (every test source is on 127.0.0.1)
    unless ``fetch`` says otherwise, and nothing is too old to keep (the
    sample feeds have fixed dates) unless ``retention_days`` says otherwise.
    """
    data: dict[str, object] = {
        "output": {"dir": "output"},
        "retention_days": 36500,
        "fetch": {"host_delay": 0, "allow_private": True},
        "sources": sources,
        **extra,
    }
    path = folder / "feeds.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def refreshed(server: FeedServer, folder: Path, feed: str = "fr_rss.xml") -> Path:
    """Serve ``tests/data/feeds/<feed>`` as the one source "Courrier", refresh
    it through the command line into ``folder``; return the configuration."""
    from click.testing import CliRunner

    from aggregator.cli import cli

    url = server.serve(f"/{feed}", (DATA / "feeds" / feed).read_bytes())
    config = write_config(folder, [{"name": "Courrier", "url": url}])
    result = CliRunner().invoke(cli, ["refresh", "--config", str(config)])
    assert result.exit_code == 0, result.output
    return config


_SCHEMA = etree.RelaxNG(etree.parse(str(DATA / "atom.rng")))


def assert_valid_atom(path: Path) -> etree._Element:
    """Parse ``path``, assert it validates against RFC 4287, return the root."""
    root = etree.parse(str(path)).getroot()
    assert _SCHEMA.validate(root), f"{path}: {_SCHEMA.error_log}"
    return root


ATOM = {"a": "http://www.w3.org/2005/Atom"}


def entries(path: Path) -> list[dict[str, object]]:
    """The entries of a published Atom file, as plain dicts."""
    root = assert_valid_atom(path)
    out = []
    for e in root.findall("a:entry", ATOM):
        # rel="alternate" is the default: feedgen leaves it out.
        links = [
            x.get("href")
            for x in e.findall("a:link", ATOM)
            if x.get("rel", "alternate") == "alternate"
        ]
        out.append(
            {
                "id": e.findtext("a:id", namespaces=ATOM),
                "title": e.findtext("a:title", namespaces=ATOM),
                "link": links[0] if links else None,
                "author": e.findtext("a:author/a:name", namespaces=ATOM),
                "categories": [c.get("term") for c in e.findall("a:category", ATOM)],
                "content": e.findtext("a:content", namespaces=ATOM),
                "updated": e.findtext("a:updated", namespaces=ATOM),
            }
        )
    return out

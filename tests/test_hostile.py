"""One refresh against a farm of broken and hostile sources beside a good one.

Each hostile source is contained: the refresh finishes within its deadline,
the worker stays under 300 MB, the error is recorded for that source, and the
good sources still publish.
"""

from __future__ import annotations

import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import DATA, FeedServer, Route, assert_valid_atom, entries, write_config

FEEDS = DATA / "feeds"
TIMEOUT = 3
#: Runs ``aggregator`` and reports its own peak memory on stderr.
PROBE = """
import resource, sys
from aggregator.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="aggregator", standalone_mode=False)
finally:
    print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def gzip_bomb(megabytes: int) -> bytes:
    """``megabytes`` MiB of zeros, gzip-compressed, built without holding them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(megabytes)]
    return b"".join(parts) + compressor.flush()


def quadratic_blowup(kilobytes: int, references: int) -> bytes:
    entity = "A" * (kilobytes * 1024)
    title = "&a;" * references
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "{entity}">]>'
        f'<rss version="2.0"><channel><title>{title}</title><item><title>{title}</title>'
        "<link>https://evil.example/1</link></item></channel></rss>"
    ).encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><link>https://evil.example/2</link></item></channel></rss>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>XXE</title>
<item><title>Kazakhstan &xxe;</title><link>https://evil.example/3</link>
<description>&xxe;</description></item></channel></rss>"""

CP1251_UNDECLARED = (
    "<rss version='2.0'><channel><title>Вести</title><item>"
    "<title>В Таджикистане запустили новую ГЭС на реке Вахш</title>"
    "<link>https://vesti.example/1</link>"
    "<description>Станция обеспечит электроэнергией три района страны.</description>"
    "</item></channel></rss>"
).encode("cp1251")


#: lxml rejects the ill-formed reference, and feedparser fails on it (it
#: raised UnicodeEncodeError, which used to end the whole refresh).
SURROGATE = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>S</title>'
    b"<item><title>Bishkek &#xD800; news</title><link>https://evil.example/4</link>"
    b"</item></channel></rss>"
)

#: A language that is not a tag: published under the source's language, or none.
BAD_LANGUAGE = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>L</title>'
    b"<language>ru_RU, en</language><item><title>Kyrgyzstan opens a new road to Naryn</title>"
    b"<link>https://lang.example/1</link></item></channel></rss>"
)


@pytest.fixture(scope="module")
def farm() -> Iterator[tuple[FeedServer, list[dict[str, object]]]]:
    server = FeedServer()
    server.start()
    big = b"<rss>" + b"x" * (11 * 1024 * 1024) + b"</rss>"
    routes: dict[str, Route] = {
        "/good.xml": Route((FEEDS / "fr_rss.xml").read_bytes()),
        "/cp1251.xml": Route(CP1251_UNDECLARED, content_type="text/xml"),
        "/big.xml": Route(big),
        "/big-chunked.xml": Route(big, content_length=False),
        "/bomb.xml": Route(gzip_bomb(200), headers={"Content-Encoding": "gzip"}),
        "/drip.xml": Route(b"<rss>" + b" " * 100 + b"</rss>", drip=1.0),
        "/hang.xml": Route(b"<rss/>", delay=60),
        "/500.xml": Route(b"oops", status=500),
        "/page.html": Route(b"<html><body><p>Hello</p></body></html>", content_type="text/html"),
        "/malformed.xml": Route(b"<rss><channel><title>Broken <<< & >>> \x00\x01 </rss"),
        "/laughs.xml": Route(BILLION_LAUGHS),
        "/quadratic.xml": Route(quadratic_blowup(kilobytes=50, references=4000)),
        "/xxe.xml": Route(XXE),
        "/surrogate.xml": Route(SURROGATE),
        "/empty.xml": Route(b""),
        "/bad-port": Route(b"", status=302, headers={"Location": "http://127.0.0.1:99999/x"}),
        "/language.xml": Route(BAD_LANGUAGE),
        "/loop-a": Route(b"", status=302, headers={"Location": "/loop-b"}),
        "/loop-b": Route(b"", status=302, headers={"Location": "/loop-a"}),
    }
    server.routes.update(routes)
    sources = [{"name": path.strip("/"), "url": server.url(path)} for path in routes]
    sources = [s for s in sources if s["name"] != "loop-b"]
    yield server, sources
    server.stop()


def test_hostile_sources_are_contained_and_the_others_publish(
    farm: tuple[FeedServer, list[dict[str, object]]], tmp_path: Path
) -> None:
    _, sources = farm
    fetch = {"host_delay": 0, "timeout": TIMEOUT, "allow_private": True,
             "concurrency": 16, "per_host": 16}  # fmt: skip
    config = write_config(tmp_path, sources, fetch=fetch)
    started = time.monotonic()

    result = subprocess.run(
        [sys.executable, "-c", PROBE, "refresh", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < TIMEOUT + 20  # every source within its deadline, in parallel
    peak_mb = int(result.stderr.split("MAXRSS_KB")[1].split()[0]) / 1024
    assert peak_mb < 300
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for name, reason in {
        "big.xml": "over the 10485760-byte limit",
        "big-chunked.xml": "over the 10485760-byte limit",
        "bomb.xml": "after decompression",
        "drip.xml": f"no complete answer within {TIMEOUT} s",
        "hang.xml": f"no complete answer within {TIMEOUT} s",
        "500.xml": "HTTP 500",
        "page.html": "an HTML page, not a feed",
        "malformed.xml": "not a feed",
        "surrogate.xml": "not a feed: the parser failed",
        "empty.xml": "an empty body, not a feed",
        "bad-port": "port 99999 does not exist",
        "loop-a": "redirects",
    }.items():
        assert "error" in lines[name] and reason in lines[name], lines[name]
    for name in ("good.xml", "cp1251.xml", "language.xml"):
        assert " ok " in lines[name]
    out = tmp_path / "output"
    for feed in out.glob("*.xml"):
        assert_valid_atom(feed)
    assert "Kazakhstan : inondations dans la région de Kostanaï" in {
        e["title"] for e in entries(out / "kazakhstan.xml")
    }
    assert "В Таджикистане запустили новую ГЭС на реке Вахш" in {
        e["title"] for e in entries(out / "tajikistan.xml")
    }
    assert "Kyrgyzstan opens a new road to Naryn" in {
        e["title"] for e in entries(out / "kyrgyzstan.xml")
    }
    published = "".join(p.read_text(encoding="utf-8") for p in out.iterdir())
    store = (tmp_path / "aggregator.sqlite").read_bytes()
    assert "root:" not in published and b"root:x:" not in store  # no XXE leak
    assert "lollollol" not in published and b"lollollol" not in store
    assert "AAAAAAAAAA" not in published and b"AAAAAAAAAA" not in store

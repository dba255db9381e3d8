"""Publishing beyond one feed: editor outputs, the site, OPML, XSL, JSON Feed, WebSub."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from lxml import etree

from aggregator import fetch
from aggregator.classify import Classifier
from aggregator.config import parse_config
from aggregator.pipeline import Ingester
from aggregator.publish import outputs, publish
from aggregator.store import Store, open_store
from aggregator.types import Config, Entry, Source

from .support import ATOM, assert_valid_atom, entries

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
FR = "https://fr.example/rss"
EN = "https://en.example/rss"


def item(source: str, n: int, title: str, language: str, **kw: object) -> Entry:
    values: dict[str, object] = {
        "source_url": source,
        "guid": f"{source}#{n}",
        "link": f"{source.rsplit('/', 1)[0]}/a/{n}",
        "title": title,
        "summary": f"<p>{title}.</p>",
        "published": NOW - timedelta(hours=n),
        "language": language,
    }
    values.update(kw)
    return Entry(**values)  # type: ignore[arg-type]


ITEMS = [
    item(FR, 1, "Kazakhstan : inondations dans la région de Kostanaï", "fr"),
    item(FR, 2, "Kazakhstan : le football national en deuil", "fr"),
    item(FR, 3, "Ouzbékistan : un nouveau terminal à Tachkent", "fr"),
    # The same story as the first (its English edition, at the same address).
    item(
        EN,
        4,
        "Kazakhstan floods: thousands evacuated in Kostanay region",
        "en",
        link="https://fr.example/a/1?utm_source=wire",
    ),
    item(EN, 5, "Kyrgyzstan adopts a media law", "en"),
]


def make_config(tmp_path: Path, **extra: object) -> Config:
    data: dict[str, object] = {
        "output": {"dir": "out"},
        "sources": [{"name": "Le Courrier", "url": FR}, {"name": "The Wire", "url": EN}],
        **extra,
    }
    return parse_config(data, tmp_path / "feeds.yaml")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "store.sqlite") as store:
        ingester = Ingester(store, Classifier(), timedelta(days=30))
        with store.transaction():
            for name, source in (("Le Courrier", FR), ("The Wire", EN)):
                store.ensure_source(Source(name, source))
                ingester.ingest(source, [i for i in ITEMS if i.source_url == source], NOW)
        yield store


def titles(path: Path) -> list[str]:
    return [str(e["title"]) for e in entries(path)]


def test_editor_outputs_filter_by_country_language_source_and_keywords(
    store: Store, tmp_path: Path
) -> None:
    config = make_config(
        tmp_path,
        outputs=[
            {"slug": "kazakhstan-fr", "title": "Kazakhstan en français", "countries": ["kz"],
             "languages": ["fr"], "exclude": ["football"]},
            {"slug": "the-wire", "sources": ["The Wire"]},
            {"slug": "floods", "include": ["inondations", "floods"], "max_entries": 1},
        ],
    )  # fmt: skip

    publish(store, config)

    out = config.output.dir
    assert titles(out / "kazakhstan-fr.xml") == [
        "Kazakhstan : inondations dans la région de Kostanaï"
    ]
    assert titles(out / "the-wire.xml") == [
        "Kazakhstan floods: thousands evacuated in Kostanay region",
        "Kyrgyzstan adopts a media law",
    ]
    # Both flood reports pass; the earliest (English) represents the story.
    assert titles(out / "floods.xml") == [
        "Kazakhstan floods: thousands evacuated in Kostanay region"
    ]
    root = assert_valid_atom(out / "kazakhstan-fr.xml")
    assert root.findtext("a:title", namespaces=ATOM) == "Kazakhstan en français"
    assert (out / "kazakhstan.xml").exists()  # the defaults are still there


def test_an_output_naming_a_host_takes_every_unnamed_source_of_it(tmp_path: Path) -> None:
    config = parse_config(
        {
            "output": {"dir": "out"},
            "sources": [
                {"url": "https://gazeta.example/rss/ru"},
                {"url": "https://gazeta.example/rss/en"},
                {"name": "Other", "url": "https://other.example/rss"},
            ],
            "outputs": [{"slug": "gazeta", "sources": ["gazeta.example"]}],
        },
        tmp_path / "feeds.yaml",
    )

    (gazeta,) = [o for o in outputs(config) if o.slug == "gazeta"]

    assert gazeta.sources == ("https://gazeta.example/rss/ru", "https://gazeta.example/rss/en")


def test_an_output_language_takes_its_regional_variants_but_not_the_reverse(
    tmp_path: Path,
) -> None:
    config = make_config(
        tmp_path,
        outputs=[
            {"slug": "en", "languages": ["English"]},
            {"slug": "en-us", "languages": ["en_US"]},
        ],
    )
    items = [
        item(EN, 1, "Kyrgyzstan adopts a media law", "en"),
        item(EN, 2, "Uzbekistan opens a new terminal at Tashkent airport", "en-GB"),
        item(EN, 3, "Tajikistan raises electricity tariffs", "en_US"),
        item(EN, 4, "Le Kazakhstan adopte son budget", "fr"),
    ]
    with open_store(tmp_path / "languages.sqlite") as store:
        with store.transaction():
            store.ensure_source(Source("The Wire", EN))
            Ingester(store, Classifier(), timedelta(days=30)).ingest(EN, items, NOW)
        publish(store, config)

    out = config.output.dir
    assert titles(out / "en.xml") == [i.title for i in items[:3]]
    assert titles(out / "en-us.xml") == ["Tajikistan raises electricity tariffs"]


def test_a_filtered_output_is_represented_by_a_report_that_passes(
    store: Store, tmp_path: Path
) -> None:
    """The French and English flood reports are one story, represented by the
    earliest (English) report, except in a French feed."""
    config = make_config(tmp_path, outputs=[{"slug": "fr", "languages": ["fr"]}])

    publish(store, config)

    french = entries(config.output.dir / "fr.xml")
    everything = entries(config.output.dir / "central-asia.xml")
    assert [e["author"] for e in french if "Kostana" in str(e["title"])] == ["Le Courrier"]
    assert [e["author"] for e in everything if "Kostana" in str(e["title"])] == ["The Wire"]
    flood = next(e for e in french if "Kostana" in str(e["title"]))
    assert "Également rapporté par" in str(flood["content"]) and "The Wire" in str(flood["content"])


def test_feeds_follow_what_the_w3c_validator_expects(store: Store, tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        site={"base_url": "https://news.example.org/feeds/", "hub": "https://hub.example/"},
    )

    publish(store, config)

    root = etree.parse(str(config.output.dir / "kazakhstan.xml")).getroot()
    links = {link.get("rel"): link.get("href") for link in root.findall("a:link", ATOM)}
    assert links["self"] == "https://news.example.org/feeds/kazakhstan.xml"
    assert links["hub"] == "https://hub.example/"
    assert root.findtext("a:author/a:name", namespaces=ATOM)
    ids = [e.findtext("a:id", namespaces=ATOM) for e in root.findall("a:entry", ATOM)]
    assert len(ids) == len(set(ids)) > 0
    for entry in root.findall("a:entry", ATOM):
        assert entry.findtext("a:author/a:name", namespaces=ATOM)
        assert entry.get("{http://www.w3.org/XML/1998/namespace}lang") in ("fr", "en")
        assert entry.findtext("a:updated", namespaces=ATOM).endswith("Z")
        source = entry.find("a:source", ATOM)
        assert source is not None and source.findtext("a:id", namespaces=ATOM) in (FR, EN)
        # RFC 4287 4.2.11: an aggregator SHOULD give the source feed's id, title and updated
        assert source.findtext("a:title", namespaces=ATOM)
        assert source.findtext("a:updated", namespaces=ATOM).endswith("Z")
    before = (config.output.dir / "kazakhstan.xml").read_bytes()
    publish(store, config)  # nothing changed: neither does any source's updated
    assert (config.output.dir / "kazakhstan.xml").read_bytes() == before


def test_index_opml_and_stylesheet(store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, site={"base_url": "https://news.example.org/feeds/"})

    publish(store, config)

    out = config.output.dir
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.count('rel="alternate" type="application/atom+xml"') == 6
    assert "https://news.example.org/feeds/kazakhstan.xml" in index
    assert "Kazakhstan floods: thousands evacuated in Kostanay region" in index
    assert 'href="feeds.opml"' in index
    opml = etree.parse(str(out / "feeds.opml")).getroot()
    urls = [o.get("xmlUrl") for o in opml.iter("outline")]
    assert urls[0] == "https://news.example.org/feeds/kazakhstan.xml"
    assert len(urls) == 6
    feed = (out / "kazakhstan.xml").read_text(encoding="utf-8")
    assert '<?xml-stylesheet type="text/xsl" href="feed.xsl"?>' in feed
    xsl = etree.XSLT(etree.parse(str(out / "feed.xsl")))
    page = str(xsl(etree.parse(str(out / "kazakhstan.xml"))))
    assert "Kazakhstan floods: thousands evacuated in Kostanay region" in page
    assert "https://news.example.org/feeds/kazakhstan.xml" in page


def test_json_feed(store: Store, tmp_path: Path) -> None:
    config = make_config(
        tmp_path, output={"dir": "out", "json_feed": True}, site={"base_url": "https://n.example/"}
    )

    publish(store, config)

    feed = json.loads((config.output.dir / "kazakhstan.json").read_text(encoding="utf-8"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == "https://n.example/kazakhstan.json"
    flood = next(i for i in feed["items"] if "Kostanay" in i["title"])
    assert flood["id"].startswith("urn:uuid:")
    assert flood["tags"] == ["kz"]
    assert flood["date_published"] == "2026-11-25T08:00:00Z"
    assert flood["authors"] == [{"name": "The Wire"}]
    assert "Also reported by" in flood["content_html"]


class Hub:
    """A WebSub hub on 127.0.0.1 that records pings."""

    def __init__(self, status: int = 204) -> None:
        self.pings: list[dict[str, list[str]]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["Content-Length"])
                hub.pings.append(parse_qs(self.rfile.read(length).decode()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def hub_warnings(
    store: Store, tmp_path: Path, hub: Hub, caplog: pytest.LogCaptureFixture
) -> list[str]:
    """Publish once with ``hub`` as the site's hub, then stop it; return the
    warnings logged about it."""
    config = make_config(
        tmp_path, site={"base_url": "https://news.example.org/feeds/", "hub": hub.url}
    )
    try:
        publish(store, config)
    finally:
        hub.server.shutdown()
        hub.server.server_close()
    return [r.getMessage() for r in caplog.records if "WebSub hub" in r.getMessage()]


def test_websub_hub_is_pinged_for_changed_feeds_only(store: Store, tmp_path: Path) -> None:
    hub = Hub()
    config = make_config(
        tmp_path, site={"base_url": "https://news.example.org/feeds/", "hub": hub.url}
    )
    try:
        publish(store, config)
        first = len(hub.pings)
        publish(store, config)  # nothing changed
        second = len(hub.pings)
    finally:
        hub.server.shutdown()
        hub.server.server_close()

    assert first == 6 and second == 6
    assert {
        "hub.mode": ["publish"],
        "hub.url": ["https://news.example.org/feeds/kazakhstan.xml"],
    } in (hub.pings)


def test_a_hub_that_does_not_answer_is_asked_once_not_once_per_feed(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A refresh holds the store's lock while it pings: a silent hub cost a
    read timeout per changed feed (three minutes with the defaults)."""
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(silent.accept()[0])  # and never answer

    threading.Thread(target=accept, daemon=True).start()
    config = make_config(
        tmp_path,
        site={"base_url": "https://news.example.org/feeds/",
              "hub": f"http://127.0.0.1:{silent.getsockname()[1]}/"},
        fetch={"timeout": 1},
    )  # fmt: skip
    try:
        publish(store, config)
    finally:
        silent.close()
        for connection in accepted:
            connection.close()

    assert len(accepted) == 1
    warnings = [r.getMessage() for r in caplog.records if "WebSub hub" in r.getMessage()]
    assert len(warnings) == 6
    assert "ReadTimeout" in warnings[0]
    assert all("not pinged: the hub failed" in w for w in warnings[1:])


def test_a_hub_that_fails_is_asked_once(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub = Hub(status=503)

    warnings = hub_warnings(store, tmp_path, hub, caplog)

    assert len(hub.pings) == 1
    assert len(warnings) == 6 and "HTTP 503" in warnings[0]


def test_no_ping_starts_once_the_run_is_out_of_time(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub that answers, but slowly, cannot hold a refresh for a timeout per
    feed either: the pings of a run share a budget."""
    hub = Hub()
    monkeypatch.setattr(fetch, "HUB_BUDGET", 0.0)  # spent at the first ping

    warnings = hub_warnings(store, tmp_path, hub, caplog)

    assert len(hub.pings) == 1
    assert len(warnings) == 5 and all("not pinged: out of time" in w for w in warnings)

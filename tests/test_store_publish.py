"""The store, on SQLite and on PostgreSQL, and publishing from it: migrations,
stories, deterministic atomic files. Tests taking the ``store`` or ``config``
fixture run once per backend (``storage`` in conftest.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.classify import Classifier
from aggregator.cluster import Signature
from aggregator.config import parse_config
from aggregator.dedupe import content_hash
from aggregator.errors import RolledBack, StoreError
from aggregator.parse import _hash
from aggregator.pipeline import Ingester, publish_if_changed, reclassify_all
from aggregator.prepare import prepare_entries
from aggregator.publish import ALSO_REPORTED, publish, validate_atom, write_atomic
from aggregator.store import MIGRATIONS, Store, open_store
from aggregator.types import Config, Entry, Source

from .support import ATOM, assert_valid_atom, entries

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SLUGS = ("kazakhstan", "kyrgyzstan", "tajikistan", "turkmenistan", "uzbekistan")
SOURCE_A = Source("Outlet A", "https://a.example/rss", "en")
SOURCE_B = Source("Outlet B", "https://b.example/rss", "en")


def entry(source: Source, n: int, title: str, **kw: object) -> Entry:
    values: dict[str, object] = {
        "source_url": source.url,
        "guid": f"{source.url}#{n}",
        "link": f"https://{source.url.split('/')[2]}/news/{n}",
        "title": title,
        "summary": f"<p>{title}: the details of the story, number {n}.</p>",
        "published": NOW - timedelta(hours=n),
    }
    values.update(kw)
    return Entry(**values)  # type: ignore[arg-type]


def make_config(
    folder: Path, storage: str | None = None, sources: tuple[Source, ...] = (SOURCE_A, SOURCE_B)
) -> Config:
    data: dict[str, object] = {
        "output": {"dir": "out", "max_entries": 3},
        "site": {"base_url": "https://news.example.org/feeds/"},
        "sources": [{"name": s.name, "url": s.url} for s in sources],
    }
    if storage is not None:
        data["storage"] = storage
    return parse_config(data, folder / "feeds.yaml")


@pytest.fixture
def config(tmp_path: Path, storage: str | None) -> Config:
    return make_config(tmp_path, storage)


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    with open_store(config.storage) as store:
        yield store


def ingester(store: Store, retention_days: float = 30) -> Ingester:
    return Ingester(store, Classifier(), timedelta(days=retention_days))


def add(store: Store, *items: Entry, now: datetime = NOW) -> None:
    with store.transaction():
        for source in (SOURCE_A, SOURCE_B):
            store.ensure_source(source)
        for source in (SOURCE_A, SOURCE_B):
            mine = [i for i in items if i.source_url == source.url]
            ingester(store).ingest(source.url, mine, now)


def test_open_creates_the_schema_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "store.sqlite"
    with open_store(path) as store:
        add(store, entry(SOURCE_A, 1, "Kazakhstan opens a new railway to China"))
    with open_store(path) as store:
        assert store.count_items() == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    sqlite3.connect(path).execute("PRAGMA user_version = 99")

    with pytest.raises(StoreError, match="newer than this program"):
        open_store(path)


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.ensure_source(SOURCE_A)
        raise RuntimeError("killed mid-source")

    assert store.source(SOURCE_A.url) is None


def sources_seen_by_another_connection(config: Config) -> set[str]:
    with open_store(config.storage) as other:
        return {s.url for s in other.sources()}


def test_grouped_transactions_commit_together_and_fail_together(
    store: Store, config: Config
) -> None:
    """A refresh's transactions share commits on SQLite (one writer): one
    that fails takes those since the last commit with it, and the rest of
    the group fails. On a shared store each transaction commits alone."""
    with store.grouped():
        with store.transaction():
            store.ensure_source(SOURCE_A)
        seen_before_the_commit = sources_seen_by_another_connection(config)
        store.commit_group()
        seen_after_the_commit = sources_seen_by_another_connection(config)
        with store.transaction():
            store.ensure_source(SOURCE_B)
        with pytest.raises(RuntimeError), store.transaction():
            store.ensure_source(Source("Outlet C", "https://c.example/rss"))
            raise RuntimeError("a bug mid-source")
        rolled_back = pytest.raises(RolledBack, match="RuntimeError: a bug mid-source")
        with rolled_back if not store.shared else nullcontext(), store.transaction():
            store.ensure_source(Source("Outlet D", "https://d.example/rss"))

    assert seen_before_the_commit == (set() if not store.shared else {SOURCE_A.url})
    assert seen_after_the_commit == {SOURCE_A.url}
    kept = (
        {SOURCE_A.url}
        if not store.shared
        else {SOURCE_A.url, SOURCE_B.url, "https://d.example/rss"}
    )
    assert sources_seen_by_another_connection(config) == kept
    assert {s.url for s in store.sources()} == kept


def test_what_a_group_completed_is_committed_whatever_ends_it(store: Store, config: Config) -> None:
    with pytest.raises(RuntimeError), store.grouped():
        with store.transaction():
            store.ensure_source(SOURCE_A)
        raise RuntimeError("cancelled")

    assert sources_seen_by_another_connection(config) == {SOURCE_A.url}
    with store.transaction():  # and the next transaction stands alone again
        store.ensure_source(SOURCE_B)
    assert sources_seen_by_another_connection(config) == {SOURCE_A.url, SOURCE_B.url}


def test_a_failed_group_commit_loses_the_group_and_says_so(tmp_path: Path) -> None:
    """A commit SQLite refuses (here a foreign key checked at the commit)
    fails every later transaction of the group and the group itself: the
    sources it held must not be reported as stored."""
    with open_store(tmp_path / "store.sqlite") as store:
        with pytest.raises(StoreError, match="FOREIGN KEY") as failed, store.grouped():
            with store.transaction():
                store.ensure_source(SOURCE_A)
                store._execute("PRAGMA defer_foreign_keys = ON")
                store._execute("INSERT INTO item_labels (label, item_id) VALUES ('kz', 12345)")
            with pytest.raises(StoreError, match="FOREIGN KEY"):
                store.commit_group()
            with pytest.raises(StoreError, match="FOREIGN KEY"), store.transaction():
                store.ensure_source(SOURCE_B)

        assert "FOREIGN KEY" in str(failed.value)
        assert store.sources() == []
        with store.transaction():  # the store is usable again
            store.ensure_source(SOURCE_B)
        assert [s.url for s in store.sources()] == [SOURCE_B.url]


def test_seen_items_are_skipped_and_changed_ones_updated(store: Store) -> None:
    first = entry(SOURCE_A, 1, "Uzbekistan raises the minimum wage")
    add(store, first)

    with store.transaction():
        again = ingester(store).ingest(SOURCE_A.url, [first], NOW)
        edited = entry(SOURCE_A, 1, "Uzbekistan raises wages")
        changed = ingester(store).ingest(SOURCE_A.url, [edited], NOW)

    assert (again.new, again.changed) == (0, 0)
    assert (changed.new, changed.changed) == (0, 1)
    assert store.count_items() == 1


def test_a_guid_repeated_in_one_document_keeps_its_first_item(store: Store) -> None:
    """Two different items under one guid would replace each other at every
    refresh (and readers would see the survivor updated each time): the
    first is kept, the later ones are left out."""
    first = entry(SOURCE_A, 1, "Uzbekistan raises the minimum wage")
    other = entry(SOURCE_A, 1, "Tashkent opens a new metro line", link="https://a.example/2")

    with store.transaction():
        store.ensure_source(SOURCE_A)
        stored = ingester(store).ingest(SOURCE_A.url, [first, other], NOW)
        again = ingester(store).ingest(SOURCE_A.url, [first, other], NOW + timedelta(hours=1))

    assert (stored.new, stored.changed, again.new, again.changed) == (1, 0, 0, 0)
    assert [item.title for item in store.all_items()] == ["Uzbekistan raises the minimum wage"]


def test_a_changed_item_is_matched_by_its_new_text(store: Store) -> None:
    """A correction changes what later reports are matched against: the
    canonical URL, the fingerprint and the signature of the new text."""
    first = entry(SOURCE_A, 1, "Uzbekistan raises the minimum wage")
    add(store, first)
    edited = replace(
        first,
        title="Uzbekistan raises the minimum wage by 12 percent from June",
        summary="<p>The decree signed on Monday covers 4.1 million workers.</p>",
        link="https://a.example/news/1-corrected",
    )
    with store.transaction():
        assert ingester(store).ingest(SOURCE_A.url, [edited], NOW).changed == 1
    copy = replace(edited, source_url=SOURCE_B.url, guid="b-1", link="https://b.example/wage")
    tracked = replace(copy, guid="b-2", link=f"{edited.link}?utm_source=x")
    add(store, copy, tracked)

    (stored,) = [i for i in store.items_by_link(edited.link) if i.guid == first.guid]
    (row,) = [r for r in store.cluster_rows(NOW - timedelta(days=30)) if r.item_id == stored.id]
    expected = prepare_entries([(edited, content_hash(edited))], Classifier())[0].signature
    assert row.signature is not None and Signature.loads(row.signature) == expected
    (by_text,) = store.items_by_link(copy.link)
    (by_url,) = [i for i in store.items_by_link(edited.link + "?utm_source=x") if i.guid == "b-2"]
    assert by_text.story_id == by_url.story_id == stored.story_id


def test_same_canonical_url_or_fingerprint_joins_the_story(store: Store, config: Config) -> None:
    original = entry(SOURCE_A, 1, "Tajikistan opens the Rogun dam's second turbine")
    tracked = entry(
        SOURCE_B,
        7,
        "Rogun: Tajikistan's second turbine",
        link=f"{original.link}?utm_source=x",
        published=NOW,  # later than the original: the original represents the story
    )
    copy = entry(
        SOURCE_B,
        2,
        original.title,
        summary=original.summary,
        link="https://b.example/c",
        published=NOW,
    )
    add(store, original, tracked, copy)

    publish(store, config)

    feed = entries(config.output.dir / "tajikistan.xml")
    assert [e["title"] for e in feed] == [original.title]
    # Outlet B reported it twice (tracking URL, copy): named once, with its first link
    # (its tracking parameters left out).
    assert str(feed[0]["content"]).endswith(
        '<p>Also reported by: <a href="https://a.example/news/1">Outlet B</a>.</p>'
    )


@pytest.mark.parametrize(
    ("language", "label"),
    [
        ("fr", "Également rapporté par\u00a0:"),
        ("ru-RU", "Также сообщают:"),
        ("ru_RU", "Также сообщают:"),  # stored before languages were checked
        ("kk", "Also reported by:"),  # no wording of its own: English
        (None, "Also reported by:"),
    ],
)
def test_the_other_outlets_are_introduced_in_the_entrys_language(
    store: Store, config: Config, language: str | None, label: str
) -> None:
    original = entry(
        SOURCE_A, 1, "Tajikistan opens the Rogun dam's second turbine", language=language
    )
    copy = entry(SOURCE_B, 2, original.title, summary=original.summary, published=NOW)
    add(store, original, copy)

    publish(store, config)

    [published] = entries(config.output.dir / "tajikistan.xml")
    assert str(published["content"]).endswith(
        f'<p>{label} <a href="https://b.example/news/2">Outlet B</a>.</p>'
    )


def test_same_fingerprint_outside_the_window_is_a_new_story(store: Store, config: Config) -> None:
    old = entry(SOURCE_A, 1, "Kyrgyzstan reports exchange rates of the national bank today")
    add(store, old, now=NOW - timedelta(days=5))
    later = entry(SOURCE_B, 1, old.title, summary=old.summary)
    add(store, later)

    publish(store, config)

    assert len(entries(config.output.dir / "kyrgyzstan.xml")) == 2


def test_publish_is_valid_deterministic_limited_and_leaves_unchanged_files(
    store: Store, config: Config
) -> None:
    add(store, *(entry(SOURCE_A, n, f"Turkmenistan news number {n}") for n in range(1, 6)))

    first = publish(store, config)
    path = config.output.dir / "turkmenistan.xml"
    data, mtime = path.read_bytes(), path.stat().st_mtime_ns
    second = publish(store, config)

    assert path in first.written
    assert second.written == ()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == (data, mtime)
    root = assert_valid_atom(path)
    assert [e["title"] for e in entries(path)] == [
        f"Turkmenistan news number {n}" for n in (1, 2, 3)
    ]  # newest first, max_entries: 3
    ns = {"a": "http://www.w3.org/2005/Atom"}
    self_link = root.find("a:link[@rel='self']", ns)
    assert self_link is not None
    assert self_link.get("href") == "https://news.example.org/feeds/turkmenistan.xml"
    assert root.findtext("a:updated", namespaces=ns) == "2026-11-25T12:00:00Z"


def test_empty_store_publishes_valid_empty_feeds(store: Store, config: Config) -> None:
    report = publish(store, config)

    names = sorted(p.name for p in report.written)
    assert names == sorted(
        [f"{slug}.xml" for slug in (*SLUGS, "central-asia")]
        + ["index.html", "feeds.opml", "feed.xsl"]
    )
    for path in report.written:
        if path.suffix == ".xml":
            assert entries(path) == []
    index = (config.output.dir / "index.html").read_text(encoding="utf-8")
    assert 'type="application/atom+xml"' in index


def test_titles_and_outlet_names_are_escaped(store: Store, config: Config) -> None:
    add(store, entry(SOURCE_A, 1, 'Kazakhstan <script>alert("t")</script> & co'))

    publish(store, config)

    feed = entries(config.output.dir / "kazakhstan.xml")
    assert feed[0]["title"] == 'Kazakhstan <script>alert("t")</script> & co'
    index = (config.output.dir / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in index
    assert "&lt;script&gt;" in index


def test_a_stored_language_that_is_not_a_tag_is_left_out_when_published(
    store: Store, config: Config
) -> None:
    """Items stored before languages were checked (``ru_ru``, ``fr, en``)
    must not make a feed invalid: the Atom schema checks xml:lang."""
    add(
        store,
        entry(SOURCE_A, 1, "Kazakhstan opens a new airport", language="ru_ru"),
        entry(SOURCE_B, 2, "Kyrgyzstan builds a road", language="fr, en"),
    )

    config = replace(config, output=replace(config.output, json_feed=True))
    publish(store, config)

    for slug in ("kazakhstan", "kyrgyzstan"):
        assert_valid_atom(config.output.dir / f"{slug}.xml")
    kazakhstan = (config.output.dir / "kazakhstan.xml").read_text(encoding="utf-8")
    assert 'xml:lang="ru-ru"' in kazakhstan
    assert "fr, en" not in (config.output.dir / "kyrgyzstan.xml").read_text(encoding="utf-8")
    assert "fr, en" not in (config.output.dir / "kyrgyzstan.json").read_text(encoding="utf-8")
    assert '"language": "ru-ru"' in (config.output.dir / "kazakhstan.json").read_text(
        encoding="utf-8"
    )


def test_an_item_dated_in_the_future_is_published_as_of_when_it_was_seen(
    store: Store, config: Config
) -> None:
    """A date in the future would keep an entry at the top of readers' lists
    for days: it is published, and sorted, as of when the store first saw it."""
    add(store, entry(SOURCE_A, 1, "Kazakhstan opens a new airport",
                     published=NOW + timedelta(days=3)))  # fmt: skip
    config = replace(config, output=replace(config.output, json_feed=True))

    publish(store, config)

    kazakhstan = (config.output.dir / "kazakhstan.xml").read_text(encoding="utf-8")
    assert "<published>2026-11-25T12:00:00Z</published>" in kazakhstan
    assert "2026-11-28" not in kazakhstan
    json_feed = (config.output.dir / "kazakhstan.json").read_text(encoding="utf-8")
    assert '"date_published": "2026-11-25T12:00:00Z"' in json_feed


def test_links_are_published_without_tracking_parameters(store: Store, config: Config) -> None:
    tracked = "https://a.example/news/1?id=7&utm_source=rss&utm_medium=feed&fbclid=x"
    add(store, entry(SOURCE_A, 1, "Kazakhstan opens a new airport", link=tracked),
        entry(SOURCE_B, 2, "Kazakhstan opens a new airport",
              link="https://b.example/news/2?utm_campaign=z", published=NOW))  # fmt: skip
    config = replace(config, output=replace(config.output, json_feed=True))

    publish(store, config)

    [published] = entries(config.output.dir / "kazakhstan.xml")
    assert published["link"] == "https://a.example/news/1?id=7"
    assert 'href="https://b.example/news/2"' in str(published["content"])
    for name in ("kazakhstan.xml", "kazakhstan.json", "index.html"):
        text = (config.output.dir / name).read_text(encoding="utf-8")
        assert "utm_" not in text and "fbclid" not in text, name


def test_output_files_deleted_or_damaged_are_written_again(store: Store, config: Config) -> None:
    """The output folder needs no backup: a file deleted or damaged since the
    last publication is written again, though the store did not change."""
    config.path.write_text("# the configuration's bytes are part of the stamp\n")
    add(store, entry(SOURCE_A, 1, "Kazakhstan opens a new airport"))
    assert publish_if_changed(store, config).written
    assert publish_if_changed(store, config).written == ()
    (config.output.dir / "kazakhstan.xml").unlink()
    (config.output.dir / "uzbekistan.xml").write_text("garbage", encoding="utf-8")

    again = publish_if_changed(store, config)

    assert {p.name for p in again.written} == {"kazakhstan.xml", "uzbekistan.xml"}
    for slug in ("kazakhstan", "uzbekistan"):
        assert_valid_atom(config.output.dir / f"{slug}.xml")
    assert publish_if_changed(store, config).written == ()


def test_a_source_taken_out_of_feeds_yaml_leaves_the_feeds(
    store: Store, config: Config, tmp_path: Path
) -> None:
    shared = "Kazakhstan opens a new airport in Turkistan"
    add(
        store,
        entry(SOURCE_A, 1, shared),
        entry(SOURCE_B, 2, shared, summary=entry(SOURCE_A, 1, shared).summary),
        entry(SOURCE_B, 3, "Kazakhstan raises its base rate to 16.5%",
              summary="<p>The National Bank cites inflation of 12% in October.</p>"),
    )  # fmt: skip
    publish(store, config)
    assert len(entries(config.output.dir / "kazakhstan.xml")) == 2

    data = {"output": {"dir": "out", "max_entries": 3},
            "sources": [{"name": SOURCE_A.name, "url": SOURCE_A.url}]}  # fmt: skip
    publish(store, parse_config(data, tmp_path / "feeds.yaml"))

    [left] = entries(config.output.dir / "kazakhstan.xml")
    assert (left["title"], left["author"]) == (shared, SOURCE_A.name)
    assert not any(label in str(left["content"]) for label in ALSO_REPORTED.values())


def test_write_atomic_replaces_and_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "f.xml"

    assert write_atomic(path, b"one") is True
    assert write_atomic(path, b"one") is False
    assert write_atomic(path, b"two") is True

    assert path.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.xml"]


def test_publish_sweeps_temp_files_left_by_a_killed_run(store: Store, config: Config) -> None:
    config.output.dir.mkdir(parents=True)
    stale = config.output.dir / ".kazakhstan.xml.abc123.tmp"
    stale.write_bytes(b"<feed")

    publish(store, config)

    assert not stale.exists()


def test_validate_atom_rejects_an_invalid_document() -> None:
    with pytest.raises(ValueError, match="invalid Atom"):
        validate_atom(b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>')


def test_reworded_report_from_another_outlet_joins_the_story(store: Store, config: Config) -> None:
    first = entry(
        SOURCE_A,
        1,
        "Kyrgyzstan's Kumtor gold output rises 15%",
        summary="<p>Kumtor Gold Company produced 17.8 tonnes of gold in nine months.</p>",
    )
    other = entry(
        SOURCE_B,
        2,
        "State-run Kumtor reports jump in gold production",
        summary="<p>Kyrgyzstan's largest gold mine yielded 17.8 tonnes, up 15 percent.</p>",
        published=NOW,
    )
    different = entry(SOURCE_B, 3, "Kyrgyzstan: coal mine accident kills four miners in Batken")
    add(store, first, other, different)

    publish(store, config)

    feed = entries(config.output.dir / "kyrgyzstan.xml")
    assert [e["title"] for e in feed] == [first.title, different.title]
    assert "Also reported by: <a" in str(feed[0]["content"])
    joined = store.items_by_link(str(other.link))[0]
    assert (joined.joined_by, joined.similarity is not None) == ("similar", True)


def test_an_entry_looks_updated_only_when_readers_see_a_change(
    store: Store, config: Config
) -> None:
    """``updated`` moves when the representative's text changes or another
    outlet joins; not for a copy from the same outlet under a tracking URL,
    nor for an edit of what is not published (its categories)."""
    first = entry(SOURCE_A, 1, "Uzbekistan reforms its cotton sector")
    add(store, first)
    publish(store, config)
    published = entries(config.output.dir / "uzbekistan.xml")[0]

    def updated_after(*items: Entry, hours: int) -> str:
        add(store, *items, now=NOW + timedelta(hours=hours))
        publish(store, config)
        [shown] = entries(config.output.dir / "uzbekistan.xml")
        assert shown["id"] == published["id"]
        return str(shown["updated"])

    tracked = entry(SOURCE_A, 2, first.title, link=f"{first.link}?utm_source=rss&fbclid=x",
                    summary=first.summary, published=first.published)  # fmt: skip
    assert updated_after(tracked, hours=1) == published["updated"]
    assert updated_after(replace(first, categories=("Economy",)), hours=2) == published["updated"]
    other = entry(SOURCE_B, 3, first.title, summary=first.summary, published=first.published)
    assert updated_after(other, hours=3) == "2026-11-25T15:00:00Z"  # Outlet B joined
    edited = replace(first, title="Uzbekistan reforms its cotton sector, ending quotas")
    assert updated_after(edited, hours=4) == "2026-11-25T16:00:00Z"
    assert updated_after(replace(other, categories=("Agriculture",)), hours=5) == (
        "2026-11-25T16:00:00Z"
    )


def test_an_outlet_corrections_show_after_its_link_gained_tracking_parameters(
    store: Store, config: Config
) -> None:
    """RSS items without a guid are known by their link: when the outlet adds
    ``utm_*`` to its links, its article comes back as a new item, joined by
    URL. The entry keeps showing the outlet's article as it stands: unchanged
    while its text is, then with its corrections, then under its new link."""
    link = "https://a.example/2026/11/tajik-border-heroin"
    title = "Tajik border guards detain drug smugglers near Afghan border"
    text = "<p>Tajikistan's border service said guards detained three smugglers.</p>"

    def item(title: str, text: str, link: str) -> Entry:
        return entry(SOURCE_A, 1, title, guid=link, link=link, summary=text, published=NOW)

    def shown(*items: Entry, hours: int) -> dict[str, object]:
        add(store, *items, now=NOW + timedelta(hours=hours))
        publish(store, config)
        [published] = entries(config.output.dir / "tajikistan.xml")
        return published

    first = shown(item(title, text, link), hours=0)
    tracked = f"{link}?utm_source=rss"
    assert shown(item(title, text, tracked), hours=1) == first  # nothing to see: not updated
    amp = link.replace("https://a.", "http://www.a.") + "/amp"
    assert shown(item(title, text, amp), hours=1) == first  # nor its AMP page over http

    fixed = text.replace("three", "four")
    corrected = shown(item(title.replace("drug", "heroin"), fixed, tracked), hours=2)
    assert corrected["title"] == "Tajik border guards detain heroin smugglers near Afghan border"
    assert "four smugglers" in str(corrected["content"])
    assert (corrected["id"], corrected["link"]) == (first["id"], link)
    assert corrected["updated"] == "2026-11-25T14:00:00Z"

    moved = f"{link}-khatlon?utm_source=rss"
    headline = "Tajik border guards detain heroin smugglers near Afghan border in Khatlon"
    again = shown(item(headline, fixed, moved), hours=3)
    assert (again["id"], again["title"]) == (first["id"], headline)
    assert again["link"] == f"{link}-khatlon"


def test_also_reported_by_links_another_outlet_report_as_it_stands(
    store: Store, config: Config
) -> None:
    """Outlet B fixed its headline, and its link with it: "Also reported by"
    links B's article at its new address, not the one it left."""
    text = "<p>Tajikistan's border service said guards detained three smugglers in Khatlon.</p>"
    first = entry(SOURCE_A, 1, "Tajik border guards detain drug smugglers", summary=text,
                  published=NOW)  # fmt: skip
    old = "https://b.example/2026/11/tajik-border-smugglers"
    new = "https://b.example/2026/11/tajik-border-heroin-smugglers"

    def b_item(title: str, link: str) -> Entry:
        return entry(SOURCE_B, 2, title, guid=link, link=link, summary=text,
                     published=NOW + timedelta(hours=1))  # fmt: skip

    add(store, first)
    add(store, b_item("Tajik border guards detain smugglers", old), now=NOW + timedelta(hours=1))
    add(store, b_item("Tajik border guards detain heroin smugglers", new),
        now=NOW + timedelta(hours=2))  # fmt: skip
    publish(store, config)

    (story,) = entries(config.output.dir / "tajikistan.xml")
    assert story["link"] == first.link
    assert f'<a href="{new}">Outlet B</a>' in str(story["content"])
    assert old not in str(story["content"])


def test_an_article_filed_again_under_another_link_keeps_its_first_link(
    store: Store, config: Config
) -> None:
    """The same text under a second link of its outlet (two sections): the
    later link is no better, and the entry does not look updated."""
    title = "Tajik border guards detain drug smugglers near Afghan border"
    text = "<p>Tajikistan's border service said guards detained three smugglers in Khatlon.</p>"
    first = entry(SOURCE_A, 1, title, summary=text, published=NOW)
    add(store, first)
    publish(store, config)
    before = entries(config.output.dir / "tajikistan.xml")

    filed = entry(SOURCE_A, 2, title, summary=text, published=NOW, link="https://a.example/x/9")
    add(store, filed, now=NOW + timedelta(hours=1))
    publish(store, config)

    assert story_of_guid(store, filed.guid) == story_of_guid(store, first.guid)
    assert entries(config.output.dir / "tajikistan.xml") == before


def test_an_item_without_guid_nor_link_edited_is_not_published_twice(
    store: Store, config: Config
) -> None:
    """Its id is a hash of its title and summary: any edit makes a new item,
    which joins its earlier self as a near-copy and stands for it."""
    title = "Khodjent : un nouveau pont sur le Syr-Daria ouvre ce matin"
    text = "<p>Le pont de 400 mètres relie les deux rives de Khodjent, au Tadjikistan.</p>"
    edited = title.replace(" ce matin", "")

    def item(title: str) -> Entry:
        return entry(SOURCE_A, 1, title, guid=_hash(title, text), link=None, summary=text,
                     published=NOW)  # fmt: skip

    add(store, item(title))
    add(store, item(edited), now=NOW + timedelta(hours=1))
    publish(store, config)

    assert [e["title"] for e in entries(config.output.dir / "tajikistan.xml")] == [edited]


def test_reports_about_different_countries_stay_apart(store: Store, config: Config) -> None:
    """One template, two countries: two stories (the index reads the stored
    items' countries)."""
    text = "<p>Подземные толчки магнитудой 4,6 ощущались ночью в нескольких сёлах.</p>"
    kg = entry(
        SOURCE_A, 1, "В Нарынской области произошло землетрясение магнитудой 4,6", summary=text
    )
    tj = entry(SOURCE_B, 2, "В Таджикистане произошло землетрясение магнитудой 4,6", summary=text)
    add(store, kg)
    add(store, tj)  # fmt: skip

    assert story_of_guid(store, kg.guid) != story_of_guid(store, tj.guid)


def test_source_priority_chooses_the_representative(store: Store, tmp_path: Path) -> None:
    original = entry(SOURCE_A, 1, "Tajikistan opens the Rogun dam's second turbine today")
    copy = entry(SOURCE_B, 2, original.title, summary=original.summary, published=NOW)
    add(store, original, copy)
    data = {
        "output": {"dir": "out"},
        "sources": [
            {"name": "Outlet A", "url": SOURCE_A.url},
            {"name": "Outlet B", "url": SOURCE_B.url, "priority": 5},
        ],
    }
    config = parse_config(data, tmp_path / "feeds.yaml")

    publish(store, config)

    (story,) = entries(config.output.dir / "tajikistan.xml")
    assert story["author"] == "Outlet B"  # later, but preferred
    assert story["link"] == copy.link
    assert 'Also reported by: <a href="https://a.example/news/1">Outlet A</a>' in str(
        story["content"]
    )


def test_a_feed_updated_never_goes_back_when_its_newest_story_leaves(
    store: Store, tmp_path: Path, storage: str | None
) -> None:
    add(
        store,
        entry(SOURCE_A, 1, "Kazakhstan holds a referendum on nuclear power", published=NOW),
        entry(SOURCE_B, 2, "Kazakhstan opens a new railway to China", published=NOW),
        now=NOW,
    )
    with store.transaction():  # B's item first seen a day later: the newest story
        store._execute(
            "UPDATE items SET first_seen = ?, changed = ? WHERE source_url = ?",
            ("2026-11-26T12:00:00+00:00", "2026-11-26T12:00:00+00:00", SOURCE_B.url),
        )
    both = make_config(tmp_path, storage)
    publish(store, both)
    feed = both.output.dir / "kazakhstan.xml"
    assert assert_valid_atom(feed).findtext("a:updated", namespaces=ATOM) == "2026-11-26T12:00:00Z"

    # Outlet B taken out of feeds.yaml: its story leaves the feed, which changed.
    only_a = make_config(tmp_path, storage, sources=(SOURCE_A,))
    publish(store, only_a)

    root = assert_valid_atom(feed)
    assert [e["author"] for e in entries(feed)] == ["Outlet A"]
    assert root.findtext("a:updated", namespaces=ATOM) == "2026-11-26T12:00:00Z"


def test_an_entry_that_changes_while_its_reports_do_not_looks_updated(
    store: Store, tmp_path: Path, storage: str | None
) -> None:
    """Outlet B's earlier report represents the story; B taken out of
    feeds.yaml, outlet A's represents it: the entry's text, link and author
    change, though no report did. Its ``updated`` moves on, by a second."""
    title = "Kazakhstan holds a referendum on nuclear power"
    add(store, entry(SOURCE_A, 1, title, published=NOW))
    add(store, entry(SOURCE_B, 2, title, published=NOW - timedelta(hours=1)),
        now=NOW + timedelta(hours=1))  # fmt: skip
    both = make_config(tmp_path, storage)
    publish(store, both)
    (before,) = entries(both.output.dir / "kazakhstan.xml")
    only_a = make_config(tmp_path, storage, sources=(SOURCE_A,))

    publish(store, only_a)
    (after,) = entries(only_a.output.dir / "kazakhstan.xml")
    publish(store, only_a)  # nothing changed since: nothing moves
    (again,) = entries(only_a.output.dir / "kazakhstan.xml")

    assert (before["author"], after["author"]) == ("Outlet B", "Outlet A")
    assert before["id"] == after["id"]
    assert (before["updated"], after["updated"]) == ("2026-11-25T13:00:00Z", "2026-11-25T13:00:01Z")
    assert again == after


def test_retention_prunes_old_items_and_they_never_come_back(store: Store, config: Config) -> None:
    old = entry(SOURCE_A, 1, "Kazakhstan holds a referendum on nuclear power", published=NOW)
    add(store, old)
    later = NOW + timedelta(days=31)

    with store.transaction():
        pruned = store.prune(later - timedelta(days=30), later, later - timedelta(days=120))
        # The source still lists the item, now undated: it is not new.
        again = ingester(store).ingest(SOURCE_A.url, [replace(old, published=None)], later)
        too_old = entry(SOURCE_A, 9, "Kazakhstan: an item from last year", published=NOW)
        skipped = ingester(store).ingest(SOURCE_A.url, [too_old], later)

    assert pruned == 1
    assert (again.new, skipped.new) == (0, 0)
    assert store.count_items() == 0
    publish(store, config)
    assert entries(config.output.dir / "kazakhstan.xml") == []


def test_retention_prunes_a_story_whole_not_its_earliest_report_first(
    store: Store, config: Config
) -> None:
    title = "Kazakhstan holds a referendum on nuclear power"
    first = entry(SOURCE_A, 1, title, published=NOW)
    copy = entry(SOURCE_B, 2, title, published=NOW + timedelta(days=2))
    add(store, first)
    add(store, copy, now=NOW + timedelta(days=2))
    publish(store, config)
    (before,) = entries(config.output.dir / "kazakhstan.xml")

    # 31 days on, the first report is past the 30 days, its copy is not:
    # the story stays as it was, represented by the first report.
    day_31 = NOW + timedelta(days=31)
    with store.transaction():
        assert store.prune(day_31 - timedelta(days=30), day_31, NOW) == 0
    publish(store, config)
    assert entries(config.output.dir / "kazakhstan.xml") == [before]
    assert before["link"] == first.link

    # Once its newest report is past them too, it goes whole, never to come back.
    day_33 = NOW + timedelta(days=33)
    with store.transaction():
        assert store.prune(day_33 - timedelta(days=30), day_33, NOW) == 2
        assert {first.guid} <= store.pruned_guids(SOURCE_A.url)
        assert {copy.guid} <= store.pruned_guids(SOURCE_B.url)
    publish(store, config)
    assert entries(config.output.dir / "kazakhstan.xml") == []


def test_a_story_later_reports_keep_joining_is_still_cut_at_twice_the_retention(
    store: Store,
) -> None:
    title = "Kazakhstan holds a referendum on nuclear power"
    first = entry(SOURCE_A, 1, title, published=NOW)
    add(store, first, entry(SOURCE_B, 2, title, published=NOW + timedelta(hours=1)))
    (story,) = {item.story_id for item in store.items_by_link(first.link or "")}
    # Say the story went on being reported, until 50 days after its first report.
    with store.transaction():
        store._execute(
            "UPDATE items SET date = ? WHERE guid = ?",
            ("2027-01-14T12:00:00Z", "https://b.example/rss#2"),
        )

    def prune(days: int) -> int:
        now = NOW + timedelta(days=days)
        with store.transaction():
            return store.prune(now - timedelta(days=30), now, NOW)

    assert prune(59) == 0  # the first report is 59 days old: under twice 30
    assert prune(61) == 2  # over it: the story goes, whole, though it goes on
    assert store.items_of_stories([story]) == []


def test_pruned_ids_are_forgotten_after_a_while(store: Store) -> None:
    old = entry(SOURCE_A, 1, "Kazakhstan holds a referendum on nuclear power", published=NOW)
    add(store, old)
    with store.transaction():
        store.prune(NOW + timedelta(days=1), NOW, NOW - timedelta(days=1))
        assert old.guid in store.pruned_guids(SOURCE_A.url)
        store.prune(NOW, NOW + timedelta(days=200), NOW + timedelta(days=100))
        assert old.guid not in store.pruned_guids(SOURCE_A.url)


def test_a_version_1_store_is_migrated_and_keeps_its_items(tmp_path: Path) -> None:
    from aggregator.store import MIGRATIONS, SCHEMA, _statements

    config = make_config(tmp_path)
    path = config.storage
    assert isinstance(path, Path)
    db = sqlite3.connect(path)
    for statement in _statements(SCHEMA):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO sources (url, name) VALUES (?, ?)", (SOURCE_A.url, SOURCE_A.name))
    db.execute("INSERT INTO stories (uid, created) VALUES ('urn:uuid:1', ?)", (NOW.isoformat(),))
    db.execute(
        """INSERT INTO items (source_url, guid, story_id, content_hash, title, categories, date,
             first_seen, changed, relevant, countries, regional, explanation)
           VALUES (?, 'old-1', 1, 'h', 'Kazakhstan votes in a referendum', '[]', ?, ?, ?, 1,
             'kz', 0, '{}')""",
        (SOURCE_A.url, NOW.isoformat(), NOW.isoformat(), NOW.isoformat()),
    )
    db.execute("INSERT INTO item_labels (label, item_id) VALUES ('kz', 1)")
    db.commit()
    db.close()

    with open_store(path) as store:
        add(store, entry(SOURCE_B, 1, "Uzbekistan raises the minimum wage by a fifth"))
        publish(store, config)
        assert store.count_items() == 2

    migrated = sqlite3.connect(path)
    assert migrated.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    found = migrated.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")
    indexes = {r[0] for r in found}
    assert "items_link" not in indexes  # version 6
    assert {"items_canonical_url", "items_fingerprint", "items_date"} <= indexes
    assert [e["title"] for e in entries(config.output.dir / "kazakhstan.xml")] == [
        "Kazakhstan votes in a referendum"
    ]


def test_publishing_follows_the_store_even_after_a_run_killed_before_publishing(
    store: Store, config: Config
) -> None:
    config.path.write_text("# the configuration's bytes are part of the stamp\n")
    add(store, entry(SOURCE_A, 1, "Kazakhstan opens a new railway to China"))
    first = publish_if_changed(store, config)
    nothing_new = publish_if_changed(store, config)
    # A run stores an item, then is killed before publishing.
    add(store, entry(SOURCE_B, 2, "Uzbekistan raises the minimum wage by a fifth"))
    next_run = publish_if_changed(store, config)

    out = config.output.dir
    assert out / "kazakhstan.xml" in first.written
    assert (nothing_new.written, nothing_new.unchanged) == ((), ())
    assert out / "uzbekistan.xml" in next_run.written
    assert [e["title"] for e in entries(out / "uzbekistan.xml")] == [
        "Uzbekistan raises the minimum wage by a fifth"
    ]


def story_of_guid(store: Store, guid: str) -> int:
    (item,) = [i for i in store.all_items() if i.guid == guid]
    return item.story_id


def fingerprints(store: Store) -> dict[str, str | None]:
    return dict(store._execute("SELECT guid, fingerprint FROM items").fetchall())


def test_items_not_about_the_region_are_not_compared(store: Store) -> None:
    """They are never published: two reports of a Georgian story stay apart,
    a copy joins by URL only (they have no fingerprint), and a Central Asian
    report of the same event does not join them."""
    georgia = entry(SOURCE_A, 1, "Georgia: mass protests in Tbilisi over the foreign agents law")
    reworded = entry(SOURCE_B, 2, "Tbilisi: thousands protest against Georgia's foreign agents law")
    link = f"{georgia.link}?utm_source=x"
    tracked = replace(georgia, source_url=SOURCE_B.url, guid="b-9", link=link)
    elsewhere = replace(tracked, guid="b-10", link="https://b.example/georgia-protests")
    add(store, georgia, reworded, tracked, elsewhere)

    assert story_of_guid(store, georgia.guid) != story_of_guid(store, reworded.guid)
    assert story_of_guid(store, tracked.guid) == story_of_guid(store, georgia.guid)
    assert story_of_guid(store, elsewhere.guid) != story_of_guid(store, georgia.guid)
    assert fingerprints(store) == dict.fromkeys(
        (georgia.guid, reworded.guid, tracked.guid, elsewhere.guid)
    )
    assert list(store.cluster_rows(NOW - timedelta(days=30))) == []


def test_reclassify_compares_the_items_it_brings_into_the_region(
    store: Store, tmp_path: Path
) -> None:
    title_a = "Tbilisi: mass protests over the foreign agents law enter a third week"
    title_b = "Thousands protest in Tbilisi against the foreign agents law for a third week"
    first = entry(SOURCE_A, 1, title_a, summary=f"<p>{title_a}, organisers said on Sunday.</p>")
    second = entry(SOURCE_B, 2, title_b, summary=f"<p>{title_b}, organisers said.</p>")
    alone = entry(SOURCE_A, 3, "Tbilisi opens a new metro line to the airport")
    add(store, first, second, alone)
    assert story_of_guid(store, first.guid) != story_of_guid(store, second.guid)

    data = {
        "sources": [{"name": s.name, "url": s.url} for s in (SOURCE_A, SOURCE_B)],
        "classify": {"kg": {"add": ["Tbilisi"]}},  # an editor's rule, for the test
    }
    with store.transaction():
        reclassify_all(store, parse_config(data, tmp_path / "feeds.yaml"))

    assert story_of_guid(store, first.guid) == story_of_guid(store, second.guid)
    assert story_of_guid(store, alone.guid) != story_of_guid(store, first.guid)
    assert {r.item_id for r in store.cluster_rows(NOW - timedelta(days=30))} == {
        i.id for i in store.all_items()
    }
    # Now about the region, they have fingerprints: a source posting one
    # again under a new guid and link joins its story.
    assert None not in fingerprints(store).values()
    again = replace(alone, guid="a-again", link="https://a.example/news/metro-again")
    with store.transaction():
        kg = Classifier.from_config(parse_config(data, tmp_path / "feeds.yaml").classify)
        Ingester(store, kg, timedelta(days=30)).ingest(SOURCE_A.url, [again], NOW)
    assert story_of_guid(store, again.guid) == story_of_guid(store, alone.guid)


def test_a_correction_that_brings_an_item_into_the_region_compares_it(store: Store) -> None:
    title = "Mass protests in the capital over the foreign agents law enter a third week"
    vague = entry(SOURCE_A, 1, title, summary=f"<p>{title}, organisers said on Sunday.</p>")
    add(store, vague)
    report = entry(
        SOURCE_B,
        2,
        "Bishkek: mass protests over the foreign agents law enter a third week",
        summary="<p>Mass protests in Bishkek over the foreign agents law, organisers said.</p>",
    )
    add(store, report)
    assert story_of_guid(store, vague.guid) != story_of_guid(store, report.guid)

    corrected = replace(
        vague,
        title="Bishkek: " + title,
        summary=f"<p>Bishkek. {title}, organisers said on Sunday.</p>",
    )
    with store.transaction():
        assert ingester(store).ingest(SOURCE_A.url, [corrected], NOW).changed == 1

    assert story_of_guid(store, vague.guid) == story_of_guid(store, report.guid)
    assert sorted(r.item_id for r in store.cluster_rows(NOW - timedelta(days=30))) == sorted(
        i.id for i in store.all_items()
    )


def test_items_per_source_counts_and_dates_the_newest(store: Store) -> None:
    add(store, entry(SOURCE_A, 1, "Kazakhstan opens a railway"), now=NOW - timedelta(days=2))
    add(store, entry(SOURCE_A, 2, "Kyrgyzstan opens a road"), entry(SOURCE_B, 3, "Tajik dam"))

    assert store.items_per_source() == {SOURCE_A.url: (2, NOW), SOURCE_B.url: (1, NOW)}

"""Worker processes give exactly the result of the in-process path, for new
items and for changed ones, and start only when a refresh has many bodies;
a refresh postpones full garbage collections."""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator import pipeline, prepare
from aggregator.classify import Classifier
from aggregator.config import load_config
from aggregator.pipeline import refresh
from aggregator.store import open_store
from aggregator.types import FetchResult, Source
from benchmarks.farm import build

from .support import DATA, FeedServer, write_config

SOURCES = 30
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The worker pools refreshes start, and how many processes each may
    have (10 new sources start all, more than 10 bodies one)."""
    made: list[object] = []
    original = prepare.pool

    def recording_pool(config: object, processes: int) -> object:
        if (executor := original(config, processes)) is not None:  # type: ignore[arg-type]
            made.append(processes)
        return executor

    monkeypatch.setattr(prepare, "pool", recording_pool)
    monkeypatch.setattr(prepare, "POOL_FROM", 10)
    monkeypatch.setattr(prepare, "WORKER_AFTER", 10)
    return made


def run(tmp_path: Path, server: FeedServer, farm: Path, workers: bool) -> list[tuple[object, ...]]:
    sources, feeds = [], sorted((farm / "feeds").iterdir())
    for i, path in enumerate(feeds):
        sources.append({"name": f"s{i}", "url": server.serve(f"/{path.name}", path.read_bytes())})
    folder = tmp_path / ("workers" if workers else "inline")
    folder.mkdir()
    config = load_config(write_config(folder, sources))
    with open_store(config.storage) as store:
        report = refresh(config, store, force=True)
        assert all(r.status.value == "ok" for r in report.sources)
        # The first item of every feed changes: it now names a city.
        for path in feeds:
            body = path.read_bytes().replace(b"<title>", b"<title>Astana: ", 2)
            server.serve(f"/{path.name}", body)
        report = refresh(config, store, force=True)
    assert [r.changed for r in report.sources] == [1] * len(feeds)
    with sqlite3.connect(config.storage) as db:
        rows = db.execute(
            "SELECT source_url, guid, title, countries, regional, relevant, signature,"
            " explanation FROM items ORDER BY source_url, guid"
        ).fetchall()
    db.close()
    return [(url.rsplit("/", 1)[1], *rest) for url, *rest in rows]


def test_the_pool_and_the_thread_store_the_same_items(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pools: list[object]
) -> None:
    farm = tmp_path / "farm"
    build(farm, SOURCES, 10)
    pooled = run(tmp_path, server, farm, workers=True)
    assert pools == [os.cpu_count(), 1]  # all workers for the first refresh, one for the second
    monkeypatch.setattr(prepare, "POOL_FROM", 10**6)
    monkeypatch.setattr(prepare, "WORKER_AFTER", 10**6)
    inline = run(tmp_path, server, farm, workers=False)
    assert len(pools) == 2  # none more

    assert len(pooled) == SOURCES * 10
    assert sum('"term": "Astana"' in row[-1] for row in pooled) >= SOURCES
    assert pooled == inline


def test_workers_start_for_many_bodies_only(
    server: FeedServer, tmp_path: Path, pools: list[object]
) -> None:
    """A first refresh starts them all at once; a later one starts one worker
    once more than WORKER_AFTER sources have sent a body, none for a few."""
    farm = tmp_path / "farm"
    build(farm, SOURCES, 3)
    feeds = sorted((farm / "feeds").iterdir())
    sources = [
        {"name": f"s{i}", "url": server.serve(f"/{path.name}", path.read_bytes())}
        for i, path in enumerate(feeds)
    ]
    config = load_config(write_config(tmp_path, sources))
    with open_store(config.storage) as store:
        refresh(config, store, force=True)
        assert pools == [os.cpu_count()]
        for changed in (5, 12):
            for path in feeds[:changed]:
                title = f"<title>Almaty, {changed} new schools: ".encode()
                server.serve(f"/{path.name}", path.read_bytes().replace(b"<title>", title, 2))
            report = refresh(config, store, force=True)
            assert sum(r.changed for r in report.sources) == changed
        assert pools == [os.cpu_count(), 1]  # for the 12 changed sources, not for the 5


def test_a_refresh_holds_few_bodies_while_they_wait_to_be_prepared(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fetching outpaces preparing: fetched bodies wait for a worker, at most
    IN_FLIGHT per fetch slot, not one per source (memory stays bounded)."""
    farm = tmp_path / "farm"
    build(farm, SOURCES, 2)
    waiting = most = 0
    original = prepare.Preparer.prepare

    async def slow(self: prepare.Preparer, *args: Any) -> prepare.PreparedSource:
        nonlocal waiting, most
        waiting += 1
        most = max(most, waiting)
        try:
            await asyncio.sleep(0.2)
            return await original(self, *args)
        finally:
            waiting -= 1

    monkeypatch.setattr(prepare.Preparer, "prepare", slow)
    sources = [
        {"name": f"s{i}", "url": server.serve(f"/{path.name}", path.read_bytes())}
        for i, path in enumerate(sorted((farm / "feeds").iterdir()))
    ]
    config = load_config(write_config(tmp_path, sources, fetch={
        "host_delay": 0, "allow_private": True, "concurrency": 2, "per_host": 2,
    }))  # fmt: skip
    with open_store(config.storage) as store:
        report = refresh(config, store, force=True)

    assert [r.status.value for r in report.sources] == ["ok"] * SOURCES
    assert 2 <= most <= pipeline.IN_FLIGHT * 2 < SOURCES  # unbounded, nearly all would wait


def test_workers_send_classifications_without_their_matches(tmp_path: Path) -> None:
    """Matches are in the explanation already; unpickling them cost the
    storing process more than anything else a worker sends."""
    (path,) = build(tmp_path, 1, 20)
    source = Source("s", "https://s0.bench.example/feed")
    result = FetchResult(str(tmp_path / path), (tmp_path / path).read_bytes(), {})
    classifier = Classifier()

    whole = prepare.prepare(source, result, NOW, {}, classifier)
    sent = prepare.prepare(source, result, NOW, {}, classifier, matches=False)

    assert any(p.classification.matches for p in whole.fresh)
    assert all(p.classification.matches == () for p in sent.fresh)
    assert [
        replace(p, classification=replace(p.classification, matches=())) for p in whole.fresh
    ] == list(sent.fresh)


def test_a_refresh_postpones_full_collections_and_restores_the_collector(
    server: FeedServer, tmp_path: Path
) -> None:
    """Full collections walk the growing story index: a refresh postpones
    them, and leaves the collector as it found it, even when it fails."""
    url = server.serve("/fr.xml", (DATA / "feeds" / "fr_rss.xml").read_bytes())
    config = load_config(write_config(tmp_path, [{"name": "Courrier", "url": url}]))
    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []
    with open_store(config.storage) as store:
        refresh(config, store, progress=lambda report: during.append(gc.get_threshold()))
        assert gc.get_threshold() == before
        with pytest.raises(RuntimeError, match="a bug"):
            refresh(config, store, force=True, progress=failing)
    assert during == [(before[0], before[1], pipeline.FULL_COLLECTIONS_AFTER)]
    assert gc.get_threshold() == before


def failing(report: object) -> None:
    raise RuntimeError("a bug in a progress display")


def test_a_bug_storing_one_source_ends_the_refresh_with_it_and_loses_nothing(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sources sharing a commit with the one that failed are rolled back
    with it (``Store.grouped``): the refresh reports the bug itself, not the
    transactions it took along, and the next refresh stores every item once."""
    names = ("fr_rss.xml", "ru_rss.xml", "en_atom.xml")
    # The last source is stored first: the others fail after it, rolled back.
    urls = [
        server.serve(f"/{name}", (DATA / "feeds" / name).read_bytes(), delay=0.5 * (n < 2))
        for n, name in enumerate(names)
    ]
    fetch = {"host_delay": 0, "allow_private": True, "per_host": 4}
    config = load_config(write_config(tmp_path, [{"url": url} for url in urls], fetch=fetch))
    store_items = pipeline.Ingester.store

    def buggy(self: pipeline.Ingester, source_url: str, *args: Any, **kwargs: Any) -> Any:
        if source_url == urls[2]:
            raise RuntimeError("a bug while storing")
        return store_items(self, source_url, *args, **kwargs)

    with open_store(config.storage) as store:
        monkeypatch.setattr(pipeline.Ingester, "store", buggy)
        with pytest.raises(RuntimeError, match="a bug while storing"):
            refresh(config, store, classifier=Classifier())  # built: no wait for it
        monkeypatch.setattr(pipeline.Ingester, "store", store_items)
        report = refresh(config, store)
        assert [r.status.value for r in report.sources] == ["ok"] * 3
        guids = [(item.source_url, item.guid) for item in store.all_items()]
    assert len(guids) == len(set(guids)) > 10
    assert {url for url, _ in guids} == set(urls)


def test_a_bug_reading_one_source_fails_that_source_only(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """An unexpected error while a body is read (a parser's bug met on
    hostile content) fails its source, logged with its traceback; the other
    sources are stored, and the next refresh tries the source again."""
    names = ("fr_rss.xml", "ru_rss.xml")
    urls = [server.serve(f"/{name}", (DATA / "feeds" / name).read_bytes()) for name in names]
    fetch = {"host_delay": 0, "allow_private": True, "per_host": 4}
    config = load_config(write_config(tmp_path, [{"url": url} for url in urls], fetch=fetch))
    read = prepare.read

    def buggy(source: Source, *args: Any) -> Any:
        if source.url == urls[1]:
            raise RuntimeError("a bug in a parser")
        return read(source, *args)

    with open_store(config.storage) as store:
        monkeypatch.setattr(prepare, "read", buggy)  # bodies are read in a thread: few sources
        report = refresh(config, store, classifier=Classifier())
        assert [r.status.value for r in report.sources] == ["ok", "error"]
        assert report.sources[1].error == "could not be read: RuntimeError: a bug in a parser"
        logged = [r for r in caplog.records if "could not be read" in r.getMessage()]
        assert logged and logged[0].exc_info is not None
        assert {item.source_url for item in store.all_items()} == {urls[0]}
        monkeypatch.setattr(prepare, "read", read)
        report = refresh(config, store, force=True)
        assert [r.status.value for r in report.sources] == ["not_modified", "ok"]
        assert {item.source_url for item in store.all_items()} == set(urls)

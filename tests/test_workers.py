"""Worker processes give exactly the result of the in-process path, for new
items and for changed ones."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from aggregator import pipeline, prepare
from aggregator.config import load_config
from aggregator.pipeline import refresh
from aggregator.store import open_store
from benchmarks.farm import build

from .support import FeedServer, write_config

SOURCES = 30


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
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    farm = tmp_path / "farm"
    build(farm, SOURCES, 10)
    made: list[object] = []

    def recording_pool(config: object, sources: int) -> object:
        made.append(executor := prepare.pool(config, sources))  # type: ignore[arg-type]
        return executor

    monkeypatch.setattr(pipeline, "pool", recording_pool)
    monkeypatch.setattr(prepare, "POOL_FROM", 10)
    pooled = run(tmp_path, server, farm, workers=True)
    assert isinstance(made[-1], ProcessPoolExecutor)
    monkeypatch.setattr(prepare, "POOL_FROM", 10**6)
    inline = run(tmp_path, server, farm, workers=False)
    assert made[-1] is None

    assert len(pooled) == SOURCES * 10
    assert sum('"term": "Astana"' in row[-1] for row in pooled) >= SOURCES
    assert pooled == inline

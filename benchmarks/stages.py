"""CPU time per item of each stage of a refresh, in one process.

    python -m benchmarks.stages [--sources 60] [--items 50] [--repeat 3] [--profile STAGE]

Builds a farm (:mod:`benchmarks.farm`) in a temporary folder, reads its
feeds from disk (no HTTP) and times, with ``time.process_time`` (CPU time,
so another process on the machine barely moves it), each stage over every
item: parsing, classification, canonical URL, fingerprint, clustering
signature, the whole of :func:`aggregator.prepare.prepare_entries` (per feed), and storing
(story index look-up and SQLite insert, :meth:`Ingester.store`). Each stage
runs ``--repeat`` times and the best run is kept; caches are warm after the
first run, as they are after the first few sources of a refresh.

``--profile STAGE`` runs that stage once more under cProfile and prints the
top functions by internal time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aggregator import cluster
from aggregator.classify import Classifier
from aggregator.dedupe import canonical_url, content_hash, fingerprint
from aggregator.parse import parse
from aggregator.pipeline import Ingester
from aggregator.prepare import Prepared, prepare_entries, title_places
from aggregator.store import open_store
from aggregator.types import Entry, FetchResult, Source

from . import farm

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def feeds(folder: Path, sources: int, items: int) -> list[tuple[str, FetchResult]]:
    """The farm's feeds as fetch results, read from disk."""
    paths = farm.build(folder, sources, items, seed=1, now=NOW)
    out = []
    for i, path in enumerate(paths):
        url = f"http://127.0.0.1/{path}"
        body = (folder / path).read_bytes()
        headers = {"content-type": "application/xml; charset=utf-8"}
        out.append((f"https://s{i}.bench.example/feed", FetchResult(url, body, headers)))
    return out


def best(run: Callable[[], Any], repeat: int) -> float:
    """The least CPU seconds of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def stages(
    results: list[tuple[str, FetchResult]], entries: list[Entry], classifier: Classifier
) -> dict[str, Callable[[], Any]]:
    classified = [classifier.classify(e) for e in entries]
    by_feed: dict[str, list[tuple[Entry, str]]] = {}
    for e in entries:
        by_feed.setdefault(e.source_url, []).append((e, content_hash(e)))
    return {
        "parsing": lambda: [parse(url, result) for url, result in results],
        "classification": lambda: [classifier.classify(e) for e in entries],
        "canonical URL": lambda: [canonical_url(e.link) for e in entries if e.link],
        "fingerprint": lambda: [fingerprint(e) for e in entries],
        "signature": lambda: [
            cluster.signature(e.title, e.summary, title_places(c))
            for e, c in zip(entries, classified, strict=True)
        ],
        "content hash": lambda: [content_hash(e) for e in entries],
        # As a refresh prepares a feed's new entries: a stage at a time over them.
        "prepare_entries": lambda: [prepare_entries(feed, classifier) for feed in by_feed.values()],
    }


def store_all(folder: Path, prepared: list[Prepared], classifier: Classifier) -> float:
    """CPU seconds to store every prepared entry into a new store, one
    transaction per source, as a refresh does."""
    store = open_store(folder / "stages.sqlite")
    by_source: dict[str, list[Prepared]] = {}
    for p in prepared:
        by_source.setdefault(p.entry.source_url, []).append(p)
    with store.transaction():
        for url in by_source:
            store.ensure_source(Source(url, url))
    ingester = Ingester(store, classifier, timedelta(days=30))
    started = time.process_time()
    for url, fresh in by_source.items():
        with store.transaction():
            ingester.store(url, fresh, NOW, {})
    spent = time.process_time() - started
    store.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=60)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default=None, help="a stage name, or 'store'")
    args = parser.parse_args()
    classifier = Classifier()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        results = feeds(folder, args.sources, args.items)
        entries = [e for url, r in results for e in parse(url, r).entries]
        count = len(entries)
        size = sum(len(e.title) + len(e.summary or "") for e in entries) / count
        print(f"{count} items of {size:,.0f} characters on average; CPU us per item, best of"
              f" {args.repeat}:")  # fmt: skip
        runs = stages(results, entries, classifier)
        for stage, run in runs.items():
            print(f"  {stage:<16} {best(run, args.repeat) / count * 1e6:8.1f}")
        prepared = prepare_entries([(e, content_hash(e)) for e in entries], classifier)
        spent = store_all(folder, prepared, classifier)
        print(f"  {'store':<16} {spent / count * 1e6:8.1f}  (story index and SQLite, once)")
        if args.profile:
            profile = cProfile.Profile()
            if args.profile == "store":
                (folder / "stages.sqlite").unlink()
                profile.runcall(store_all, folder, prepared, classifier)
            else:
                profile.runcall(runs[args.profile])
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()

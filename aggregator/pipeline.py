"""One refresh: every source through fetch, parse, dedupe, classify and store,
concurrently, then publish from the store.

A source's own failure (a :class:`~aggregator.errors.SourceError`) is recorded
in the store and its report, and the run goes on; anything else is a bug or
an unusable store and propagates. Each source's items are written in one
transaction, so a killed run leaves every source either before or after.
This module sequences; the stages decide.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx

from .classify import Classifier
from .dedupe import canonical_url, content_hash, fingerprint, story_uid
from .errors import SourceError
from .fetch import Fetcher
from .parse import parse
from .publish import publish
from .store import Store
from .types import Config, Entry, RunReport, Source, SourceReport, Status

log = logging.getLogger(__name__)

#: Items with the same fingerprint are one story only if seen this close together.
STORY_WINDOW = timedelta(hours=72)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class IngestCounts:
    new: int = 0
    changed: int = 0
    relevant: int = 0


def refresh(
    config: Config,
    store: Store,
    *,
    client: httpx.AsyncClient | None = None,
    clock: Clock = utc_now,
    classifier: Classifier | None = None,
) -> RunReport:
    """Refresh every configured source, then publish. See the module docstring."""
    return asyncio.run(
        refresh_async(config, store, client=client, clock=clock, classifier=classifier)
    )


async def refresh_async(
    config: Config,
    store: Store,
    *,
    client: httpx.AsyncClient | None = None,
    clock: Clock = utc_now,
    classifier: Classifier | None = None,
) -> RunReport:
    started = time.monotonic()
    classifier = classifier or Classifier.from_config(config.classify)
    async with Fetcher(config.fetch, client) as fetcher:
        reports = await asyncio.gather(
            *(
                refresh_source(source, fetcher, store, classifier, clock)
                for source in config.sources
            )
        )
    published = publish(store, config)
    return RunReport(sources=tuple(reports), publish=published, seconds=time.monotonic() - started)


async def refresh_source(
    source: Source,
    fetcher: Fetcher,
    store: Store,
    classifier: Classifier,
    clock: Clock,
) -> SourceReport:
    """Fetch, parse and store one source; its own failures become the report."""
    started = time.monotonic()
    try:
        result = await fetcher.fetch(source.url, store.validators(source.url))
        if result.not_modified:
            with store.transaction():
                store.record_success(source, result.validators, clock(), None)
            report = SourceReport(source, Status.NOT_MODIFIED)
        else:
            parsed = await asyncio.to_thread(parse, source.url, result, source.language)
            with store.transaction():
                store.ensure_source(source)
                counts = ingest(store, classifier, parsed.entries, clock(), source.country)
                store.record_success(source, result.validators, clock(), parsed.feed)
            report = SourceReport(
                source,
                Status.OK,
                entries=len(parsed.entries),
                new=counts.new,
                changed=counts.changed,
                relevant=counts.relevant,
            )
    except SourceError as e:
        with store.transaction():
            store.record_failure(source, e.reason, clock())
        report = SourceReport(source, Status.ERROR, error=e.reason)
    report = replace(report, seconds=time.monotonic() - started)
    _log(report)
    return report


def ingest(
    store: Store,
    classifier: Classifier,
    entries: Iterable[Entry],
    now: datetime,
    hint: str | None = None,
) -> IngestCounts:
    """Store new and changed entries of one source; skip those seen unchanged.

    A new entry joins the story of an item with the same canonical URL (or
    the same fingerprint within :data:`STORY_WINDOW`), else starts one.
    ``hint`` is the source's home country, for the classifier. Call inside
    :meth:`Store.transaction`.
    """
    new = changed = relevant = 0
    known: dict[str, dict[str, str]] = {}
    for entry in entries:
        hashes = known.setdefault(entry.source_url, store.content_hashes(entry.source_url))
        digest = content_hash(entry)
        previous = hashes.get(entry.guid)
        if previous == digest:
            continue
        classification = classifier.classify(entry, hint)
        if previous is None:
            canonical = canonical_url(entry.link) if entry.link else None
            print_ = fingerprint(entry)
            story = store.find_story(canonical, print_, now - STORY_WINDOW)
            if story is None:
                story = store.new_story(story_uid(entry), now)
            store.insert_item(
                entry,
                story_id=story,
                canonical_url=canonical,
                fingerprint=print_,
                content_hash=digest,
                classification=classification,
                now=now,
            )
            new += 1
            relevant += classification.relevant
        else:
            store.update_item(entry, content_hash=digest, classification=classification, now=now)
            changed += 1
        hashes[entry.guid] = digest
    return IngestCounts(new=new, changed=changed, relevant=relevant)


def _log(report: SourceReport) -> None:
    log.info(
        "source=%s status=%s new=%d changed=%d relevant=%d seconds=%.2f%s",
        report.source.url,
        report.status.value,
        report.new,
        report.changed,
        report.relevant,
        report.seconds,
        f" error={report.error!r}" if report.error else "",
    )

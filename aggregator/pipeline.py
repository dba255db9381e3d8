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
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx

from . import cluster
from .classify import Classifier
from .dedupe import canonical_url, content_hash, fingerprint, story_uid
from .errors import FetchError, SourceError
from .fetch import Fetcher
from .parse import parse
from .publish import publish
from .schedule import Policy, after_failure, after_success, is_due
from .scrape import scrape
from .store import ClusterRow, Placement, Store
from .types import (
    Classification,
    Config,
    Entry,
    FetchResult,
    ParsedFeed,
    RunReport,
    Source,
    SourceReport,
    Status,
    Validators,
)

log = logging.getLogger(__name__)

#: Items with the same fingerprint are one story only if seen this close together.
STORY_WINDOW = timedelta(hours=72)
#: Ids of pruned items are remembered this many retention periods, so a feed
#: that still lists them does not bring them back.
RETENTION_MEMORY = 4

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
    force: bool = False,
    stop: threading.Event | None = None,
    progress: Callable[[SourceReport], None] | None = None,
) -> RunReport:
    """Refresh the sources that are due (all of them with ``force``), then
    publish. See the module docstring. Setting ``stop`` (from another thread,
    e.g. on SIGTERM) abandons the fetches in flight; what is stored stays."""
    return asyncio.run(
        refresh_async(
            config,
            store,
            client=client,
            clock=clock,
            classifier=classifier,
            force=force,
            stop=stop,
            progress=progress,
        )
    )


async def refresh_async(
    config: Config,
    store: Store,
    *,
    client: httpx.AsyncClient | None = None,
    clock: Clock = utc_now,
    classifier: Classifier | None = None,
    force: bool = False,
    stop: threading.Event | None = None,
    progress: Callable[[SourceReport], None] | None = None,
) -> RunReport:
    started = time.monotonic()
    classifier = classifier or Classifier.from_config(config.classify)
    retention = timedelta(days=config.retention_days)
    now = clock()
    with store.transaction():
        pruned = store.prune(now - retention, now, now - RETENTION_MEMORY * retention)
    if pruned:
        log.info("pruned %d items older than %g days", pruned, config.retention_days)
    ingester = Ingester(store, classifier, retention)
    policy = Policy.from_config(config)
    async with Fetcher(config.fetch, client) as fetcher:
        tasks = [
            asyncio.create_task(
                _reporting(
                    refresh_source(source, fetcher, store, ingester, clock, policy, force),
                    progress,
                )
            )
            for source in config.sources
        ]
        watcher = asyncio.create_task(_cancel_when(stop, tasks)) if stop else None
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if watcher:
            watcher.cancel()
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
    reports = [r for r in results if isinstance(r, SourceReport)]
    if len(reports) < len(tasks):
        log.warning("stopped: %d sources not refreshed", len(tasks) - len(reports))
    published = publish(store, config)
    return RunReport(sources=tuple(reports), publish=published, seconds=time.monotonic() - started)


async def _reporting(
    work: Awaitable[SourceReport], progress: Callable[[SourceReport], None] | None
) -> SourceReport:
    report = await work
    if progress is not None:
        progress(report)
    return report


async def _cancel_when(stop: threading.Event, tasks: list[asyncio.Task[SourceReport]]) -> None:
    """Cancel the tasks still running once ``stop`` is set. Cancellation lands
    at an await (a fetch, a parse), never inside a store transaction."""
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()


async def refresh_source(
    source: Source,
    fetcher: Fetcher,
    store: Store,
    ingester: Ingester,
    clock: Clock,
    policy: Policy,
    force: bool = False,
) -> SourceReport:
    """Fetch, parse and store one source if it is due; its own failures
    become the report and its next attempt."""
    started = time.monotonic()
    state = store.source(source.url)
    if state is not None and state.gone is not None:
        return _log(
            SourceReport(
                source, Status.GONE, error=f"HTTP 410 Gone since {state.gone:%Y-%m-%d}",
                note="remove it from feeds.yaml",
            )
        )  # fmt: skip
    if state is not None and not force and not is_due(state.next_attempt, clock(), policy):
        assert state.next_attempt is not None
        when = f"{state.next_attempt:%Y-%m-%d %H:%M} UTC"
        return _log(SourceReport(source, Status.NOT_DUE, error=f"next attempt at {when}"))
    url = (state.moved_to if state else None) or source.url
    validators = state.validators if state else Validators()
    try:
        result = await fetcher.fetch(url, validators)
        note = f"moved permanently to {result.moved_to}: update feeds.yaml" if (
            result.moved_to and result.moved_to != url
        ) else None  # fmt: skip
        if result.not_modified:
            with store.transaction():
                now = clock()
                next_attempt = after_success(now, policy, result.max_age)
                store.record_success(
                    source, result.validators, now, None,
                    next_attempt=next_attempt, moved_to=result.moved_to,
                )  # fmt: skip
            report = SourceReport(source, Status.NOT_MODIFIED, note=note)
        else:
            parsed = await asyncio.to_thread(read, source, result, clock())
            with store.transaction():
                store.ensure_source(source)
                counts = ingester.ingest(source.url, parsed.entries, clock(), source.country)
                now = clock()
                next_attempt = after_success(now, policy, result.max_age, parsed.feed.ttl)
                store.record_success(
                    source, result.validators, now, parsed.feed,
                    next_attempt=next_attempt, moved_to=result.moved_to,
                )  # fmt: skip
            report = SourceReport(
                source,
                Status.OK,
                entries=len(parsed.entries),
                new=counts.new,
                changed=counts.changed,
                relevant=counts.relevant,
                note=note,
            )
    except SourceError as e:
        status = e.status if isinstance(e, FetchError) else None
        wait = e.retry_after if isinstance(e, FetchError) else None
        failures = (state.failures if state else 0) + 1
        with store.transaction():
            now = clock()
            store.record_failure(
                source, e.reason, now,
                next_attempt=after_failure(now, policy, failures, wait),
                gone=status == 410,
            )  # fmt: skip
        note = "gone: remove it from feeds.yaml" if status == 410 else None
        report = SourceReport(source, Status.ERROR, error=e.reason, note=note)
    return _log(replace(report, seconds=time.monotonic() - started))


def read(source: Source, result: FetchResult, now: datetime) -> ParsedFeed:
    """A fetched body as entries: a feed, or a page scraped with the source's selectors."""
    if source.selectors is not None:
        return scrape(source.url, result, source.selectors, source.language, now=now)
    return parse(source.url, result, source.language)


class Ingester:
    """Decides what each parsed entry is, and stores it: new (in which story),
    changed, already seen, or too old.

    A new entry joins the story of an item with the same canonical URL, or the
    same fingerprint within :data:`STORY_WINDOW`, or, failing both, of the most
    similar recent item from another source (:mod:`.cluster`); else it starts
    a story. Entries older than the retention period, or pruned before, are
    not stored again. Call :meth:`ingest` inside :meth:`Store.transaction`.
    """

    def __init__(self, store: Store, classifier: Classifier, retention: timedelta) -> None:
        self.store = store
        self.classifier = classifier
        self.retention = retention
        self._index: cluster.StoryIndex | None = None

    def index(self, now: datetime) -> cluster.StoryIndex:
        """The story index of recent items, loaded from the store on first use."""
        if self._index is None:
            self._index = cluster.StoryIndex()
            for row in self.store.cluster_rows(now - cluster.WINDOW):
                self._index.add(_doc_from_row(row))
        return self._index

    def ingest(
        self, source_url: str, entries: Iterable[Entry], now: datetime, hint: str | None = None
    ) -> IngestCounts:
        """Store the new and changed entries of one source.

        ``hint`` is the source's home country, for the classifier.
        """
        new = changed = relevant = 0
        hashes = self.store.content_hashes(source_url)
        oldest = now - self.retention
        for entry in entries:
            digest = content_hash(entry)
            previous = hashes.get(entry.guid)
            if previous == digest:
                continue
            if previous is None and (
                (entry.published is not None and entry.published < oldest)
                or self.store.is_pruned(source_url, entry.guid)
            ):
                continue
            classification = self.classifier.classify(entry, hint)
            if previous is None:
                self._insert(entry, digest, classification, now)
                new += 1
                relevant += classification.relevant
            else:
                self.store.update_item(
                    entry, content_hash=digest, classification=classification, now=now
                )
                changed += 1
            hashes[entry.guid] = digest
        return IngestCounts(new=new, changed=changed, relevant=relevant)

    def _insert(
        self, entry: Entry, digest: str, classification: Classification, now: datetime
    ) -> None:
        canonical = canonical_url(entry.link) if entry.link else None
        print_ = fingerprint(entry)
        date = min(entry.published, now) if entry.published else now
        signature = cluster.signature(entry.title, entry.summary, title_places(classification))
        doc = cluster.Doc(0, 0, entry.source_url, date, signature)
        index = self.index(now)
        placement = self.store.find_story(canonical, print_, now - STORY_WINDOW)
        if placement is None and (hit := index.find(doc)) is not None:
            placement = Placement(hit.story_id, "similar", hit.item_id, round(hit.similarity, 3))
        if placement is None:
            placement = Placement(self.store.new_story(story_uid(entry), now))
        item_id = self.store.insert_item(
            entry,
            placement=placement,
            canonical_url=canonical,
            fingerprint=print_,
            content_hash=digest,
            signature=signature.dumps(),
            classification=classification,
            now=now,
        )
        index.add(replace(doc, item_id=item_id, story_id=placement.story_id))


#: Kinds of gazetteer terms that name a place below country level.
PLACE_KINDS = frozenset({"city", "province", "capital"})


def title_places(classification: Classification) -> list[str]:
    """The towns, provinces and capitals an item's title names, Central Asian
    or foreign, as written (for :func:`cluster.signature`)."""
    return [m.text for m in classification.matches if m.field == "title" and m.kind in PLACE_KINDS]


def _doc_from_row(row: ClusterRow) -> cluster.Doc:
    if row.signature is None:  # stored before clustering existed
        signature = cluster.signature(row.title, row.summary)
    else:
        signature = cluster.Signature.loads(row.signature)
    return cluster.Doc(row.item_id, row.story_id, row.source_url, row.date, signature)


def _log(report: SourceReport) -> SourceReport:
    """Log one line per source per refresh; return the report."""
    log.info(
        "source=%s status=%s new=%d changed=%d relevant=%d seconds=%.2f%s%s",
        report.source.url,
        report.status.value,
        report.new,
        report.changed,
        report.relevant,
        report.seconds,
        f" error={report.error!r}" if report.error else "",
        f" note={report.note!r}" if report.note else "",
    )
    return report


def reclassify_all(store: Store, config: Config) -> tuple[int, int]:
    """Classify every stored item again with the current rules; return how many
    items there are and how many changed countries. Call inside a transaction."""
    classifier = Classifier.from_config(config.classify)
    hints = {s.url: s.country for s in config.sources}
    total = changed = 0
    for item in list(store.all_items()):
        entry = Entry(
            source_url=item.source_url,
            guid=item.guid,
            link=item.link,
            title=item.title,
            summary=item.summary,
            categories=item.categories,
        )
        new = classifier.classify(entry, hints.get(item.source_url))
        total += 1
        changed += (new.countries, new.regional) != (item.countries, item.regional)
        store.set_classification(item.id, new)
    return total, changed

"""One refresh: every source through fetch, parse, dedupe, classify and store,
concurrently, then publish from the store.

A source's own failure (a :class:`~aggregator.errors.SourceError`) is recorded
in the store and its report, and the run goes on; so is an unexpected error
while reading its body (a parser's bug met on hostile content), logged with
its traceback. Anything else is a bug or an unusable store and propagates.
Each source's items are written in one transaction, so a killed run leaves
every source either before or after; on SQLite, the transactions of half a
second share a commit (:meth:`Store.grouped`), so a killed run refetches at
most that much.
With a store shared by several workers (PostgreSQL), each source is claimed
before it is fetched and item writes take turns (:mod:`.store`); publishing
follows the store's generation, whoever stored the change.
This module sequences; the stages decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

import httpx

from . import __version__, cluster
from .classify import Classifier
from .dedupe import link_id
from .errors import (
    FetchError,
    OutputError,
    ParseError,
    RolledBack,
    SourceError,
    StoreError,
    WorkersDied,
)
from .fetch import Fetcher
from .parse import HASHED_ID
from .prepare import (
    Prepared,
    PreparedSource,
    Preparer,
    changed_entries,
    fingerprint_of,
    prepare_entries,
    signature_of,
)
from .publish import publish, write_atomic
from .schedule import Policy, after_failure, after_success, is_due
from .store import ClusterRow, Placement, SourceState, Store, StoredItem
from .types import (
    Classification,
    Config,
    Entry,
    FetchResult,
    PublishReport,
    RunReport,
    Source,
    SourceReport,
    Status,
    Validators,
    redacted,
)

log = logging.getLogger(__name__)

#: Items with the same fingerprint are one story only if seen this close together.
STORY_WINDOW = timedelta(hours=72)
#: Sources a refresh holds at once (being fetched, waiting for a worker, being
#: stored), per fetch slot: this bounds the bodies held in memory when fetching
#: outpaces preparing, and leaves sources to the other workers sharing a store.
IN_FLIGHT = 2
#: Seconds between commits of a refresh's SQLite store: the sources stored
#: meanwhile share one (:meth:`Store.grouped`); a process killed loses them.
COMMIT_EVERY = 0.5
#: During a refresh, a full garbage collection waits for this many collections
#: of the middle generation (Python's default: 10).
FULL_COLLECTIONS_AFTER = 1000
#: Seconds between two checks that the worker processes are alive.
WORKER_CHECK = 0.5
#: Seconds between two attempts to claim a source another worker holds.
CLAIM_POLL = 0.2
#: Why a source claimed after another worker is not fetched again.
ELSEWHERE = "refreshed by another worker during this run"
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
    with _few_full_collections():
        return await _refresh(config, store, client, clock, classifier, force, stop, progress)


@contextlib.contextmanager
def _few_full_collections() -> Iterator[None]:
    """Postpone the garbage collector's full collections. A refresh builds up
    its story index (a quarter of a million objects for 30,000 items), and
    each full collection walks all of it: 7 of them took 0.5 s of a
    1,000-source first refresh, for no memory given back (its cycles are few
    and short-lived; the younger generations still collect them)."""
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, max(full, FULL_COLLECTIONS_AFTER))
    try:
        yield
    finally:
        gc.set_threshold(young, middle, full)


async def _refresh(
    config: Config,
    store: Store,
    client: httpx.AsyncClient | None,
    clock: Clock,
    classifier: Classifier | None,
    force: bool,
    stop: threading.Event | None,
    progress: Callable[[SourceReport], None] | None,
) -> RunReport:
    started = time.monotonic()
    retention = timedelta(days=config.retention_days)
    now = clock()
    with store.transaction():
        store.lock_items()
        renamed = follow_renamed_sources(store, config.sources)
        renamed += give_names(store, config.sources)
        pruned = store.prune(now - retention, now, now - RETENTION_MEMORY * retention)
        if pruned or renamed:
            store.bump_generation()
    if pruned:
        log.info("pruned %d items of stories older than %g days", pruned, config.retention_days)
    ingester = Ingester(
        store, classifier or (lambda: Classifier.from_config(config.classify)), retention
    )
    policy = Policy.from_config(config)
    states = {source.url: store.source(source.url) for source in config.sources}
    # Sources never fetched will send a body: with many, start the workers now.
    never_fetched = sum(states[source.url] is None for source in config.sources)
    workers = Preparer(config.classify, lambda: ingester.classifier, never_fetched)
    slots = asyncio.Semaphore(IN_FLIGHT * config.fetch.concurrency)
    committer = asyncio.create_task(_commit_every(store, COMMIT_EVERY))
    try:
        with store.grouped():
            async with Fetcher(config.fetch, client) as fetcher:
                tasks = [
                    asyncio.create_task(
                        _reporting(
                            refresh_source(
                                source,
                                states[source.url],
                                fetcher,
                                store,
                                ingester,
                                clock,
                                policy,
                                workers,
                                force,
                                slots,
                            ),  # fmt: skip
                            progress,
                        )
                    )
                    for source in config.sources
                ]
                watcher = asyncio.create_task(_cancel_when(stop, tasks)) if stop else None
                watchdog = asyncio.create_task(_watch_workers(workers, tasks))
                results = await asyncio.gather(*tasks, return_exceptions=True)
                watchdog.cancel()
                if watcher:
                    watcher.cancel()
    finally:
        committer.cancel()
        workers.close()
    if (died := workers.dead_worker()) is not None:
        raise WorkersDied(
            f"{died} (out of memory?): the refresh stopped; what it stored is kept,"
            " the next run fetches the rest"
        )
    errors = [
        r
        for r in results
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
    ]
    if errors:  # the failure itself, rather than a transaction it rolled back
        raise next((e for e in errors if not isinstance(e, RolledBack)), errors[0])
    reports = [r for r in results if isinstance(r, SourceReport)]
    if len(reports) < len(tasks):
        log.warning("stopped: %d sources not refreshed", len(tasks) - len(reports))
    published = publish_if_changed(store, config)
    return RunReport(sources=tuple(reports), publish=published, seconds=time.monotonic() - started)


def give_names(store: Store, sources: Iterable[Source]) -> int:
    """Store the ``name:`` of each configured source whose stored name differs
    (the author of its entries), so that a renamed outlet is published under
    its new name though its feed has not changed. Call inside a transaction;
    return how many were renamed."""
    stored = {state.url: state.name for state in store.sources()}
    changed = [s for s in sources if s.url in stored and stored[s.url] != s.name]
    for source in changed:
        store.ensure_source(source)
    return len(changed)


def follow_renamed_sources(store: Store, sources: Iterable[Source]) -> int:
    """Give a configured source that the store does not know yet the stored
    source it replaces, if there is exactly one: the one no longer configured
    that redirected permanently to its URL (a refresh says "moved permanently
    to ...: update feeds.yaml"), else the one no longer configured with the
    same name (when no other new source has that name). Its items stay its
    own: they are not stored again under the new URL, nor credited to their
    outlet twice. Call inside a transaction; return how many were renamed."""
    sources = list(sources)
    configured = {source.url for source in sources}
    stored = store.sources()
    orphans = [state for state in stored if state.url not in configured]
    known = {state.url for state in stored}
    new = [source for source in sources if source.url not in known]
    renamed = 0
    for source in new if orphans else ():
        candidates = [o for o in orphans if o.moved_to == source.url]
        if not candidates and sum(s.name == source.name for s in new) == 1:
            candidates = [o for o in orphans if o.name == source.name]
        if len(candidates) != 1:
            continue
        old = candidates[0]
        items = store.rename_source(old.url, source.url)
        orphans.remove(old)
        renamed += 1
        log.warning(
            "source=%s renamed from %s, with its %d items",
            redacted(source.url),
            redacted(old.url),
            items,
        )
    return renamed


async def _reporting(
    work: Awaitable[SourceReport], progress: Callable[[SourceReport], None] | None
) -> SourceReport:
    report = await work
    if progress is not None:
        progress(report)
    return report


async def _commit_every(store: Store, seconds: float) -> None:
    """Commit the sources stored so far every ``seconds`` (:meth:`Store.grouped`).
    It runs between the sources' transactions: none awaits inside one."""
    while True:
        await asyncio.sleep(seconds)
        try:
            store.commit_group()
        except StoreError:
            return  # the next transaction and the end of the group raise it


async def _watch_workers(workers: Preparer, tasks: list[asyncio.Task[SourceReport]]) -> None:
    """Cancel the tasks still running once a worker process has died: the
    pool may never answer again (:meth:`Preparer.dead_worker`)."""
    while workers.dead_worker() is None:
        await asyncio.sleep(WORKER_CHECK)
    for task in tasks:
        task.cancel()


async def _cancel_when(stop: threading.Event, tasks: list[asyncio.Task[SourceReport]]) -> None:
    """Cancel the tasks still running once ``stop`` is set. Cancellation lands
    at an await (a fetch, a parse), never inside a store transaction."""
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()


def skipped(
    source: Source, state: SourceState | None, now: datetime, policy: Policy, force: bool
) -> SourceReport | None:
    """Why a source is not fetched now (gone, or not due), or None: fetch it.
    With ``force``, every source is fetched: one gone (410) too, in case it is back."""
    if state is not None and state.gone is not None and not force:
        return SourceReport(
            source, Status.GONE, error=f"HTTP 410 Gone since {state.gone:%Y-%m-%d}",
            note="remove it from feeds.yaml",
        )  # fmt: skip
    if state is not None and not force and not is_due(state.next_attempt, now, policy):
        assert state.next_attempt is not None
        when = f"{state.next_attempt:%Y-%m-%d %H:%M} UTC"
        return SourceReport(source, Status.NOT_DUE, error=f"next attempt at {when}")
    return None


async def refresh_source(
    source: Source,
    state: SourceState | None,
    fetcher: Fetcher,
    store: Store,
    ingester: Ingester,
    clock: Clock,
    policy: Policy,
    workers: Preparer,
    force: bool = False,
    slots: asyncio.Semaphore | None = None,
) -> SourceReport:
    """Fetch, parse (with ``workers``) and store one source if it is due; its
    own failures become the report and its next attempt. ``slots`` bounds how
    many sources this refresh holds at once (:data:`IN_FLIGHT`); the report's
    seconds count from when the source got one."""
    policy = policy.for_source(source)
    if (report := skipped(source, state, clock(), policy, force)) is not None:
        return _log(report)
    # With a shared store, another worker may hold the source: come back to it
    # after the others (giving up the slot meanwhile), then fetch it only if
    # that worker did not refresh it in the meantime.
    while True:
        async with slots or contextlib.nullcontext():
            started = time.monotonic()
            if store.claim(source.url):
                try:
                    if store.shared and store.source(source.url) != state:
                        return _log(SourceReport(source, Status.NOT_DUE, error=ELSEWHERE))
                    report = await _refresh_claimed(
                        source, state, fetcher, store, ingester, clock, policy, workers
                    )
                finally:
                    store.release(source.url)
                return _log(replace(report, seconds=time.monotonic() - started))
        await asyncio.sleep(CLAIM_POLL)


async def _refresh_claimed(
    source: Source,
    state: SourceState | None,
    fetcher: Fetcher,
    store: Store,
    ingester: Ingester,
    clock: Clock,
    policy: Policy,
    workers: Preparer,
) -> SourceReport:
    url = (state.moved_to if state else None) or source.url
    validators = state.validators if state else Validators()
    known: dict[str, str] = {}

    async def attempt(
        url: str, validators: Validators
    ) -> tuple[FetchResult, PreparedSource | None]:
        result = await fetcher.fetch(url, validators)
        if result.not_modified:
            return result, None
        known.update(store.content_hashes(source.url))
        return result, await _prepare(workers, source, result, clock(), known)

    try:
        back = None
        try:
            result, prepared = await attempt(url, validators)
        except SourceError as e:
            if url == source.url or (isinstance(e, FetchError) and e.retry_after is not None):
                raise  # (a server asking to wait is not a broken move)
            # A permanent redirect can be a mistake (a site's new home page, a
            # parked domain): where it sent us fails, so try feeds.yaml's URL.
            # If that works, the move is forgotten (or replaced by its own).
            log.info("source=%s: %s failed (%s); trying feeds.yaml's URL", redacted(source.url),
                     redacted(url), e.reason)  # fmt: skip
            back = f"the address it had moved to failed ({e.reason}): fetched from feeds.yaml's URL"
            url = source.url
            result, prepared = await attempt(url, Validators())
        note = f"moved permanently to {redacted(result.moved_to)}: update feeds.yaml" if (
            result.moved_to and result.moved_to != url
        ) else back  # fmt: skip
        # Fetched from feeds.yaml's URL: its redirect, or none, is the move now.
        forget = url == source.url
        if prepared is None:
            with store.transaction():
                now = clock()
                next_attempt = after_success(now, policy, result.max_age)
                store.record_success(
                    source, result.validators, now, None,
                    next_attempt=next_attempt, moved_to=result.moved_to, forget_move=forget,
                )  # fmt: skip
            report = SourceReport(source, Status.NOT_MODIFIED, note=note)
        else:
            with store.transaction():
                store.ensure_source(source)
                counts = ingester.store(source.url, prepared.fresh, clock(), known)
                now = clock()
                next_attempt = after_success(now, policy, result.max_age, prepared.feed.ttl)
                store.record_success(
                    source, result.validators, now, prepared.feed,
                    next_attempt=next_attempt, moved_to=result.moved_to, forget_move=forget,
                )  # fmt: skip
            report = SourceReport(
                source,
                Status.OK,
                entries=prepared.entries,
                new=counts.new,
                changed=counts.changed,
                relevant=counts.relevant,
                note="; ".join(n for n in (note, prepared.note) if n) or None,
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
    return report


async def _prepare(
    workers: Preparer, source: Source, result: FetchResult, now: datetime, known: dict[str, str]
) -> PreparedSource:
    """``workers.prepare``; an unexpected error there (a parser's or our own
    bug, met on this source's content) fails this source, logged with its
    traceback, rather than every refresh of every source until the item goes
    away. Workers that died (``BrokenExecutor``) still end the refresh."""
    try:
        return await workers.prepare(source, result, now, known)
    except (SourceError, BrokenExecutor):
        raise
    except Exception as e:
        log.error("source=%s could not be read (a bug)", redacted(source.url), exc_info=e)
        raise ParseError(source.url, f"could not be read: {type(e).__name__}: {e}") from e


class Ingester:
    """Decides what each prepared entry is, and stores it: new (in which story),
    changed, or too old.

    A new entry joins the story of an item with the same canonical URL, or the
    same fingerprint within :data:`STORY_WINDOW`, or, failing both and if it
    is about the region, of the most similar recent item about the region
    from another source (:mod:`.cluster`); else it starts a story. Items not
    about the region are never published, so they have no fingerprint and
    are not compared (until :func:`reclassify_all` brings them in). Entries
    older than the retention period, or pruned before, are not stored again.
    Call :meth:`store` inside :meth:`Store.transaction`.
    """

    def __init__(
        self,
        store: Store,
        classifier: Classifier | Callable[[], Classifier],
        retention: timedelta,
    ) -> None:
        self.db = store
        self._classifier = classifier
        self.retention = retention
        self._index: cluster.StoryIndex | None = None
        #: The highest item id in the index.
        self._last_id = 0

    @property
    def classifier(self) -> Classifier:
        """The classifier, built on first use (a refresh where every source
        answers 304 never needs one)."""
        if not isinstance(self._classifier, Classifier):
            self._classifier = self._classifier()
        return self._classifier

    def index(self, now: datetime) -> cluster.StoryIndex:
        """The story index of recent items, loaded from the store on first use."""
        if self._index is None:
            self._index = cluster.StoryIndex()
            self._catch_up(now)
        return self._index

    def _catch_up(self, now: datetime) -> None:
        """Add to the index the recent items stored since it was last read
        (by other workers sharing the store)."""
        assert self._index is not None
        for row in self.db.cluster_rows(now - cluster.WINDOW, after=self._last_id):
            self._index.add(_doc_from_row(row))
            self._last_id = max(self._last_id, row.item_id)

    def ingest(
        self, source_url: str, entries: Iterable[Entry], now: datetime, hint: str | None = None
    ) -> IngestCounts:
        """Prepare (in this process) and store the entries of one source."""
        known = self.db.content_hashes(source_url)
        fresh = prepare_entries(changed_entries(entries, known), self.classifier, hint)
        return self.store(source_url, fresh, now, known)

    def store(
        self,
        source_url: str,
        fresh: Iterable[Prepared],
        now: datetime,
        known: dict[str, str] | None = None,
    ) -> IngestCounts:
        """Store the new and changed entries of one source; ``known`` is what
        :meth:`Store.content_hashes` gave when they were prepared (updated here)."""
        new = changed = relevant = 0
        self.db.lock_items()
        if self._index is not None and self.db.shared:
            self._catch_up(now)
        known = self.db.content_hashes(source_url) if known is None else known
        oldest = now - self.retention
        pruned: set[str] | None = None  # read on first need
        for prepared in fresh:
            entry = prepared.entry
            previous = known.get(entry.guid)
            if previous == prepared.digest:
                continue  # stored with this very text already
            if previous is None:
                if entry.published is not None and entry.published < oldest:
                    continue
                if pruned is None:
                    pruned = self.db.pruned_guids(source_url)
                if entry.guid in pruned:
                    continue
                self._insert(prepared, now)
                new += 1
                relevant += prepared.classification.relevant
            else:
                if prepared.signature is not None:
                    # Loaded before the update: an item it brings into the
                    # region must not be read into the index as well.
                    self.index(now)
                before = self.db.update_item(
                    entry,
                    content_hash=prepared.digest,
                    classification=prepared.classification,
                    now=now,
                    canonical_url=prepared.canonical,
                    fingerprint=prepared.fingerprint,
                    signature=prepared.signature_json,
                    explanation=prepared.explanation,
                )
                if prepared.signature is not None and not before.relevant:
                    # A correction brought it into the region: compare it now.
                    doc = cluster.Doc(
                        before.id, before.story_id, source_url, before.date, prepared.signature,
                        cluster.countries(prepared.classification.countries),
                    )  # fmt: skip
                    _join_similar(self.db, self.index(now), doc)
                    self._last_id = max(self._last_id, before.id)
                changed += 1
            known[entry.guid] = prepared.digest
        if new or changed:
            self.db.bump_generation()
        return IngestCounts(new=new, changed=changed, relevant=relevant)

    def _insert(self, prepared: Prepared, now: datetime) -> None:
        entry = prepared.entry
        date = min(entry.published, now) if entry.published else now
        placement = self.db.find_story(prepared.canonical, prepared.fingerprint, now - STORY_WINDOW)
        doc = None
        if prepared.signature is not None:  # about the region: compared with the others
            doc = cluster.Doc(
                0, 0, entry.source_url, date, prepared.signature,
                cluster.countries(prepared.classification.countries), without_own_id(entry),
            )  # fmt: skip
            if placement is None and (hit := self.index(now).find(doc)) is not None:
                placement = _joining(hit)
        if placement is None:
            placement = Placement(self.db.new_story(prepared.story_uid, now))
        item_id = self.db.insert_item(
            entry,
            placement=placement,
            canonical_url=prepared.canonical,
            fingerprint=prepared.fingerprint,
            content_hash=prepared.digest,
            signature=prepared.signature_json,
            classification=prepared.classification,
            now=now,
            explanation=prepared.explanation,
        )
        if doc is not None:
            self.index(now).add(replace(doc, item_id=item_id, story_id=placement.story_id))
            self._last_id = max(self._last_id, item_id)


def _doc_from_row(row: ClusterRow) -> cluster.Doc:
    if row.signature is None:  # stored before clustering existed
        signature = cluster.signature(row.title or "", row.summary)
    else:
        signature = cluster.Signature.loads(row.signature, row.title or "")
    return cluster.Doc(
        row.item_id, row.story_id, row.source_url, row.date, signature,
        cluster.countries(row.countries.split()),
    )  # fmt: skip


def _log(report: SourceReport) -> SourceReport:
    """Log one line per source per refresh; return the report."""
    log.info(
        "source=%s status=%s new=%d changed=%d relevant=%d seconds=%.2f%s%s",
        redacted(report.source.url),
        report.status.value,
        report.new,
        report.changed,
        report.relevant,
        report.seconds,
        f" error={report.error!r}" if report.error else "",
        f" note={report.note!r}" if report.note else "",
    )
    return report


#: In the output folder: what the files were last published from.
STAMP = ".aggregator-published"


def publish_if_changed(store: Store, config: Config) -> PublishReport:
    """Publish, unless the output folder was last published from this very
    state (the same store at the same generation, the same configuration and
    program) and its files are still as written. One worker publishes at a
    time, from one snapshot of the store.

    Raises:
        OutputError: the output folder cannot be written.
    """
    out = config.output.dir
    with store.publishing(), store.snapshot():
        stamp = _stamp(config, store)
        try:
            recorded = _recorded(out)
            if _published(out, stamp, recorded):
                return PublishReport(written=(), unchanged=())
            report = publish(store, config)
            current = report.written + report.unchanged
            removed = _remove_unpublished(out, {path.name for path in current}, recorded)
            report = replace(report, removed=removed)
            files = "".join(f"{_file_hash(path)} {path.name}\n" for path in current)
            write_atomic(out / STAMP, (stamp + files).encode("utf-8"))
        except OSError as e:
            problem = f"{e.strerror}: {e.filename}" if e.strerror and e.filename else str(e)
            raise OutputError(f"{out}: cannot write the output folder ({problem})") from e
    return report


#: The stamp file's first line, and the files it lists as (hash, name).
Recorded = tuple[str, list[tuple[str, str]]]


def _recorded(out: Path) -> Recorded | None:
    """The stamp file in ``out``: its first line (what the files were
    published from), and each file it lists with its hash, as (hash, name);
    None without one."""
    try:
        recorded = (out / STAMP).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    head, _, files = recorded.partition("\n")
    lines = (line.partition(" ") for line in files.splitlines())
    return f"{head}\n", [(digest, name) for digest, _, name in lines]


def _published(out: Path, stamp: str, recorded: Recorded | None) -> bool:
    """True when ``out`` holds what publishing from ``stamp`` wrote: the stamp
    file (``recorded``) names each file with its hash, so a file deleted or
    damaged since is written again."""
    if recorded is None:
        return False
    head, files = recorded
    if head != stamp or not files:
        return False
    for digest, name in files:
        try:
            if _file_hash(out / name) != digest:
                return False
        except OSError:
            return False
    return True


def _remove_unpublished(
    out: Path, published: set[str], recorded: Recorded | None
) -> tuple[Path, ...]:
    """Delete the files the last publication wrote (the stamp, ``recorded``,
    lists them) that this one did not: an output taken out of ``feeds.yaml``,
    JSON feeds turned off. A stale feed would be served for ever, frozen;
    gone, it tells feed readers so. A file changed since it was written is
    not ours any more: kept."""
    removed: list[Path] = []
    for digest, name in recorded[1] if recorded else ():
        if not name or name in published or "/" in name or name.startswith("."):
            continue
        path = out / name
        try:
            if _file_hash(path) == digest:
                path.unlink()
                removed.append(path)
                log.info("removed %s: no longer published", path)
        except (OSError, ValueError):  # ValueError: a NUL in a name (a stamp edited by hand)
            continue
    return tuple(removed)


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp(config: Config, store: Store) -> str:
    """The configuration's bytes, the program's version and where the store
    is, hashed, and the store's generation."""
    digest = hashlib.sha256(config.path.read_bytes())
    digest.update(__version__.encode())
    digest.update(str(config.storage).encode())
    return f"{digest.hexdigest()} {store.generation()}\n"


def reclassify_all(store: Store, config: Config) -> tuple[int, int]:
    """Classify every stored item again with the current rules; return how many
    items there are and how many changed countries. Call inside a transaction."""
    classifier = Classifier.from_config(config.classify)
    hints = {s.url: s.country for s in config.sources}
    total = changed = 0
    store.lock_items()
    arrived: list[tuple[StoredItem, Entry, Classification]] = []
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
        if new.relevant and not item.relevant:
            arrived.append((item, entry, new))
    if arrived:
        _compare_arrivals(store, arrived)
    store.bump_generation()
    return total, changed


def _compare_arrivals(
    store: Store, arrived: list[tuple[StoredItem, Entry, Classification]]
) -> None:
    """Items the new rules bring into the region were stored without being
    compared with others (see :class:`Ingester`): compare them now, oldest
    first, so that two reports of one story are not published as two. An
    item moves to a similar story only if it is alone in its own (a copy
    joined by URL or fingerprint stays with it)."""
    ids = {item.id for item, _, _ in arrived}
    index = cluster.StoryIndex()
    since = min(item.date for item, _, _ in arrived) - cluster.WINDOW
    for row in store.cluster_rows(since):
        if row.item_id not in ids:
            index.add(_doc_from_row(row))
    for item, entry, classification in arrived:
        signature = signature_of(entry, classification)
        assert signature is not None  # the item is about the region now
        doc = cluster.Doc(
            item.id, item.story_id, item.source_url, item.date, signature,
            cluster.countries(classification.countries),
        )  # fmt: skip
        _join_similar(store, index, doc, fingerprint_of(entry, classification))


def _join_similar(
    store: Store, index: cluster.StoryIndex, doc: cluster.Doc, fingerprint: str | None = None
) -> None:
    """Store the signature (and the ``fingerprint``, if given) of an item that
    has just come into the region and, if it is alone in its story, move it to
    the most similar story in ``index``, if any; then index it."""
    placement = None
    if store.story_size(doc.story_id) == 1 and (hit := index.find(doc)) is not None:
        placement = _joining(hit)
    store.place_again(doc.item_id, doc.signature.dumps(), placement, fingerprint)
    index.add(replace(doc, story_id=placement.story_id) if placement else doc)


def without_own_id(entry: Entry) -> bool:
    """True when an entry has no guid of its own: its id is its link (RSS
    without ``<guid>``, an HTML page's items), so a new link is a new item;
    or, without a link either, a hash of its title and summary
    (:func:`parse._hash`), so any edit is."""
    if entry.link is None:
        return entry.guid.startswith(HASHED_ID)
    own = (entry.link, link_id(entry.link))
    # A feed's relative link is its id as written: "/news/floods", "a b".
    return entry.guid in own or urljoin(entry.link, entry.guid.replace(" ", "%20")) in own


def _joining(hit: cluster.Hit) -> Placement:
    """The placement of an item in the story of the item it was found to repeat."""
    return Placement(hit.story_id, "similar", hit.item_id, round(hit.similarity, 3))

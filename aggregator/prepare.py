"""The CPU-bound part of refreshing a source, with no I/O: it can run in a
worker process.

From a fetched body it parses the entries, and for each one that is new or
changed (its content hash differs from what the store holds) computes
everything that does not need the store: the classification, the canonical
URL, the fingerprint and the clustering signature. Deciding which story an
entry joins, and storing it, stay in the pipeline's process, which holds the
store and the story index.

A refresh with many bodies to prepare spreads this work over the machine's
cores with a process pool (:func:`pool`); one with few runs it in a thread,
where starting processes would cost more than it saves (:class:`Preparer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.context
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

from . import cluster
from .classify import FOREIGN, Classifier
from .dedupe import canonical_url, content_hash, fingerprint, story_uid
from .parse import parse
from .store import explanation_json
from .types import Classification, ClassifyConfig, Entry, FeedInfo, FetchResult, ParsedFeed, Source

#: Kinds of gazetteer terms that name a place below country level.
PLACE_KINDS = frozenset({"city", "province", "capital"})
#: A refresh with this many sources never fetched starts every worker at once.
POOL_FROM = 24
#: Another refresh starts one worker once more bodies than this have arrived.
WORKER_AFTER = 4


@dataclass(frozen=True)
class Prepared:
    """A new or changed entry, with everything computed that needs no store."""

    entry: Entry
    digest: str
    #: From a worker process, without its matches: they are in
    #: :attr:`explanation`, and unpickling them cost the storing process more
    #: than anything else it receives.
    classification: Classification
    canonical: str | None
    #: None for an item not about the region (:func:`fingerprint_of`).
    fingerprint: str | None
    #: None for an item not about the region: it is never published, so it is
    #: not compared with others (a copy still joins it by URL).
    signature: cluster.Signature | None
    #: The signature and the classification's explanation as stored, encoded
    #: here (in a worker process) rather than by the process that stores them.
    signature_json: str | None
    explanation: str
    #: The id of the story it starts, if it starts one (:func:`story_uid`).
    story_uid: str


@dataclass(frozen=True)
class PreparedSource:
    feed: FeedInfo
    #: Entries in the document.
    entries: int
    #: The new and changed ones, in document order.
    fresh: tuple[Prepared, ...]
    #: :attr:`ParsedFeed.note`.
    note: str | None = None


def read(source: Source, result: FetchResult, now: datetime) -> ParsedFeed:
    """A fetched body as entries: a feed, or a page scraped with the source's selectors."""
    if source.selectors is not None:
        from .scrape import scrape  # BeautifulSoup loads only when a page is scraped

        zone = ZoneInfo(source.timezone) if source.timezone else UTC
        return scrape(source.url, result, source.selectors, source.language, now=now, zone=zone)
    return parse(source.url, result, source.language)


def prepare(
    source: Source,
    result: FetchResult,
    now: datetime,
    known: Mapping[str, str],
    classifier: Classifier,
    matches: bool = True,
) -> PreparedSource:
    """Parse a body and prepare its new and changed entries; ``known`` maps the
    guids the store holds for this source to their content hashes. Without
    ``matches``, classifications come without them (see :class:`Prepared`).

    Raises:
        ParseError: the body is not usable.
    """
    parsed = read(source, result, now)
    entries = changed_entries(parsed.entries, known)
    fresh = prepare_entries(entries, classifier, source.country, matches)
    return PreparedSource(parsed.feed, len(parsed.entries), tuple(fresh), parsed.note)


def changed_entries(entries: Iterable[Entry], known: Mapping[str, str]) -> list[tuple[Entry, str]]:
    """The entries that are new or changed, with their content hashes; ``known``
    maps the guids stored for their source to their content hashes.

    An entry whose guid an earlier entry of the document has is left out: two
    different items under one id would replace each other in the store at
    every refresh, and readers would see the survivor updated each time."""
    seen: set[str] = set()
    changed = []
    for entry in entries:
        if entry.guid in seen:
            continue
        seen.add(entry.guid)
        if known.get(entry.guid) != (digest := content_hash(entry)):
            changed.append((entry, digest))
    return changed


def prepare_entries(
    entries: Sequence[tuple[Entry, str]],
    classifier: Classifier,
    hint: str | None = None,
    matches: bool = True,
) -> list[Prepared]:
    """Everything about each (entry, its :func:`content_hash`) that needs no
    store; ``hint`` is their source's country; without ``matches``, the
    classifications come without them. A stage at a time over all of them:
    each stage's tables and caches stay in the processor's caches, where
    going entry by entry evicts them (a tenth faster on the farm)."""
    classifications = [classifier.classify(entry, hint) for entry, _ in entries]
    signatures = [signature_of(e, c) for (e, _), c in zip(entries, classifications, strict=True)]
    fingerprints = [
        fingerprint_of(e, c) for (e, _), c in zip(entries, classifications, strict=True)
    ]
    canonicals = [canonical_url(entry.link) if entry.link else None for entry, _ in entries]
    explanations = [explanation_json(c) for c in classifications]
    if not matches:
        classifications = [
            Classification(c.countries, c.regional, c.scores, ()) for c in classifications
        ]
    return [
        Prepared(
            entry=entry,
            digest=digest,
            classification=classification,
            canonical=canonical,
            fingerprint=print_,
            signature=signature,
            signature_json=signature.dumps() if signature else None,
            explanation=explanation,
            story_uid=story_uid(entry),
        )
        for (entry, digest), classification, signature, print_, canonical, explanation in zip(
            entries, classifications, signatures, fingerprints, canonicals, explanations,
            strict=True,
        )
    ]  # fmt: skip


def signature_of(entry: Entry, classification: Classification) -> cluster.Signature | None:
    """The clustering signature of an item about the region, else None."""
    if not classification.relevant:
        return None
    return cluster.signature(entry.title, entry.summary, title_places(classification))


def fingerprint_of(entry: Entry, classification: Classification) -> str | None:
    """The fingerprint of an item about the region, else None: it is never
    published, so a copy of it joins it by URL only (a tenth of the work of
    preparing it; :func:`~aggregator.pipeline.reclassify_all` fingerprints
    the items it brings into the region)."""
    return fingerprint(entry) if classification.relevant else None


def title_places(classification: Classification) -> list[str]:
    """The towns, provinces and capitals an item's title names, Central Asian
    or foreign, as written (for :func:`cluster.signature`); a Central Asian
    capital also as its country ("@tm": Ashgabat and Ашхабад are one place,
    and the adjective ташкентский still agrees with Ташкент)."""
    places = []
    for m in classification.matches:
        if m.field == "title" and m.kind in PLACE_KINDS:
            if m.kind == "capital" and m.label != FOREIGN:
                places.append(f"@{m.label}")
            places.append(m.text)
    return places


# --- worker processes ----------------------------------------------------------

_worker_classifier: Classifier | None = None


def _start_worker(config: ClassifyConfig, refresh: int) -> None:
    global _worker_classifier
    _worker_classifier = Classifier.from_config(config)  # the bundled one is built already
    threading.Thread(target=_exit_with, args=(refresh,), daemon=True).start()


def _exit_with(refresh: int) -> None:
    """End this worker when the process of the refresh that started it is
    gone (killed with SIGKILL, say): a pool's workers would otherwise wait for
    work forever, and the server they were forked from with them. It is not
    their parent (the server is), so it is watched by its id (a zombie, killed
    but not yet reaped by whoever started it, counts as gone)."""
    while _alive(refresh):
        time.sleep(0.5)
    os._exit(0)


def _alive(pid: int) -> bool:
    """True while process ``pid`` runs: a process killed but not yet reaped
    by its own parent (a zombie) is gone too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: as alive as os.kill says


def prepare_in_worker(
    source: Source, result: FetchResult, now: datetime, known: Mapping[str, str]
) -> PreparedSource:
    """:func:`prepare` with the worker's own classifier (see :func:`pool`),
    its classifications sent back without their matches (see :class:`Prepared`)."""
    assert _worker_classifier is not None, "the pool starts its workers with a classifier"
    return prepare(source, result, now, known, _worker_classifier, matches=False)


def pool(config: ClassifyConfig, processes: int) -> Executor | None:
    """Up to ``processes`` worker processes (one per core, four at most), or
    None on one core: a thread will do."""
    cores = os.cpu_count() or 1
    if cores < 2:
        return None
    return ProcessPoolExecutor(
        max_workers=min(cores, 4, processes),
        mp_context=_workers_context(),
        initializer=_start_worker,
        initargs=(config, os.getpid()),
    )


@cache
def _workers_context() -> multiprocessing.context.BaseContext:
    """Worker processes are forked from a server process (``forkserver``)
    that has imported this module and built the bundled classifier once
    (:mod:`.preload`), so a worker starts in milliseconds, where a spawned
    one would spend half a second importing (the whole command line, when
    started by the ``aggregator`` script) and building its classifier. Not
    a fork of this process: it would copy the event loop's threads and the
    store's connection. The server lives as long as this process; workers
    end with it (:func:`_exit_with`)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["aggregator.preload"])
    return context


class Preparer:
    """Prepares the bodies of one refresh, in a thread or in worker processes.

    Worker processes cost about half a second of CPU to start: the server
    they are forked from imports the preparing code and builds the bundled
    classifier once (:func:`_workers_context`). A refresh sure to have many
    bodies (at least :data:`POOL_FROM` sources never fetched: a first
    refresh) starts one per core at once. Another starts one worker once more than
    :data:`WORKER_AFTER` bodies have arrived: it prepares them on the second
    core while this process stores. Until then, and on one core, bodies are
    prepared in a thread of this process with ``classifier()``, built on
    first need (a refresh where every source answers 304 never needs it).
    """

    def __init__(
        self, config: ClassifyConfig, classifier: Callable[[], Classifier], new_sources: int
    ) -> None:
        self._config = config
        self._classifier = classifier
        self._building = threading.Lock()
        self._bodies = 0
        self._pool = pool(config, os.cpu_count() or 1) if new_sources >= POOL_FROM else None
        #: How a worker process died, once one has (see :meth:`dead_worker`).
        self._died: str | None = None

    async def prepare(
        self, source: Source, result: FetchResult, now: datetime, known: Mapping[str, str]
    ) -> PreparedSource:
        """:func:`prepare`, where it is cheapest."""
        self._bodies += 1
        if self._pool is None and self._bodies > WORKER_AFTER:
            self._pool = pool(self._config, 1)
        if self._pool is None:
            return await asyncio.to_thread(self._here, source, result, now, known)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, prepare_in_worker, source, result, now, known)

    def _here(
        self, source: Source, result: FetchResult, now: datetime, known: Mapping[str, str]
    ) -> PreparedSource:
        with self._building:  # one classifier, however many threads want it first
            classifier = self._classifier()
        return prepare(source, result, now, known, classifier)

    def dead_worker(self) -> str | None:
        """How a worker process ended, if one did while the pool was open
        (killed, out of memory): the pool cannot be trusted after that. When
        a worker dies while sending a result, CPython's pool may wait forever
        for the rest of it (``ProcessPoolExecutor`` in 3.11), holding the
        refresh and the store's lock."""
        if self._died is not None:
            return self._died
        broken = getattr(self._pool, "_broken", False)
        if broken:  # the pool saw a worker die (its message says how)
            self._died = f"a worker process died ({broken})"
        processes = getattr(self._pool, "_processes", None) or {}
        for process in list(processes.values()):
            code = process.exitcode
            if code is not None and code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                self._died = f"worker process {process.pid} {how}"
        return self._died

    def close(self) -> None:
        """Stop the worker processes, if any started (without waiting for a
        pool whose worker died: it may never answer; its other workers are
        killed, or one would print a traceback on the refresh's stderr when
        the pipe it reads work from closes)."""
        if self._pool is None:
            return
        died = self.dead_worker() is not None
        if died:
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                with contextlib.suppress(OSError, ValueError):
                    process.kill()
        self._pool.shutdown(wait=not died, cancel_futures=True)

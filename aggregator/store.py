"""Persist sources, items and stories in SQLite or PostgreSQL: the only
module that speaks SQL.

One schema string with a comment per column, numbered migrations, rows turned
into records here. :class:`Store` holds every query, written once in the SQL
both databases share; a backend (:class:`_SQLite`, :class:`_Postgres`) holds
what differs: connecting, placeholders, the few DDL words, the schema version,
and locks. It does not decide anything: what is new, which story, which
country are decided by the callers and handed in.

SQLite, the default, runs in WAL mode with a busy timeout, so a publisher
reading and a refresh writing do not block each other, and a killed process
never leaves it corrupt; one refresh at a time holds it (:mod:`.lock`).

PostgreSQL lets several workers share one store. They coordinate with
advisory locks, which the server releases when a worker's connection ends,
however it ends:

- a worker *claims* a source (:meth:`Store.claim`) before fetching it, so no
  source is fetched by two workers at once;
- transactions that write items take one transaction-level lock
  (:meth:`Store.lock_items`), so placing an item in a story and inserting it
  is never interleaved with another worker's: the same article from two
  outlets cannot start two stories;
- one worker publishes at a time (:meth:`Store.publishing`), from one
  snapshot (:meth:`Store.snapshot`).

Each source is written in one transaction (:meth:`Store.transaction`).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import RolledBack, StoreError
from .types import Classification, Entry, FeedInfo, Match, PostgresURL, Source, Validators

if TYPE_CHECKING:
    import psycopg

SCHEMA = """
CREATE TABLE sources (
    url TEXT PRIMARY KEY,            -- the feed URL as configured
    name TEXT NOT NULL,              -- the outlet's name in feeds.yaml, at the last refresh
    title TEXT,                      -- the feed's own title, for attribution
    link TEXT,                       -- the outlet's home page, from the feed
    etag TEXT,                       -- validators for the next conditional GET
    last_modified TEXT,
    body_hash TEXT,                  -- SHA-256 of the last body, to skip an identical one
    last_attempt TEXT,               -- ISO 8601 UTC times
    last_success TEXT,
    failures INTEGER NOT NULL DEFAULT 0,  -- consecutive failed refreshes
    last_error TEXT                  -- one-line reason of the last failure
);

CREATE TABLE stories (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,        -- the published atom:id; never changes
    created TEXT NOT NULL
);

CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    source_url TEXT NOT NULL REFERENCES sources (url),
    guid TEXT NOT NULL,              -- the item's id within its source
    story_id INTEGER NOT NULL REFERENCES stories (id),
    canonical_url TEXT,              -- dedupe.canonical_url(link)
    fingerprint TEXT,                -- dedupe.fingerprint(entry), NULL when too short
    content_hash TEXT NOT NULL,      -- detects a changed text under the same guid
    link TEXT,
    title TEXT NOT NULL,
    summary TEXT,                    -- sanitized HTML
    author TEXT,
    language TEXT,
    categories TEXT NOT NULL,        -- JSON list of strings
    published TEXT,                  -- from the feed, ISO 8601 UTC
    updated TEXT,                    -- from the feed, ISO 8601 UTC
    date TEXT NOT NULL,              -- sort date: published, but never after first_seen
    first_seen TEXT NOT NULL,        -- when this store first saw the item
    changed TEXT NOT NULL,           -- when its published text last changed
    relevant INTEGER NOT NULL,       -- 0: not about the region, never published
    countries TEXT NOT NULL,         -- country codes, strongest first, space-separated
    regional INTEGER NOT NULL,       -- about Central Asia as a whole
    explanation TEXT NOT NULL,       -- JSON: matches, scores, outcome
    UNIQUE (source_url, guid)
);
CREATE INDEX items_canonical_url ON items (canonical_url);
CREATE INDEX items_fingerprint ON items (fingerprint);
CREATE INDEX items_story ON items (story_id);
CREATE INDEX items_link ON items (link);  -- dropped in version 6

CREATE TABLE item_labels (           -- one row per country code or 'region' of an item
    label TEXT NOT NULL,
    item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    PRIMARY KEY (label, item_id)
) WITHOUT ROWID;
"""

#: Version 2: story clustering and retention.
CLUSTERING = """
ALTER TABLE items ADD COLUMN signature TEXT;      -- cluster.Signature as JSON
ALTER TABLE items ADD COLUMN joined_by TEXT;      -- how it joined its story: url, fingerprint,
                                                  -- similar; NULL when it started the story
ALTER TABLE items ADD COLUMN joined_item INTEGER; -- the item it was found to repeat
ALTER TABLE items ADD COLUMN similarity REAL;     -- with joined_item, when joined_by = similar
CREATE INDEX items_date ON items (date);

CREATE TABLE pruned (                 -- items removed by retention, so they never come back
    source_url TEXT NOT NULL,
    guid TEXT NOT NULL,
    pruned TEXT NOT NULL,             -- when
    PRIMARY KEY (source_url, guid)
) WITHOUT ROWID;
"""

#: Version 3: polite polling.
SCHEDULING = """
ALTER TABLE sources ADD COLUMN next_attempt TEXT;  -- not fetched before (backoff, max-age, ttl)
ALTER TABLE sources ADD COLUMN gone TEXT;          -- when it answered 410 Gone; never fetched again
ALTER TABLE sources ADD COLUMN moved_to TEXT;      -- where a permanent redirect sent it
"""

#: Version 4: replacing an item's labels without scanning every label.
LABEL_INDEX = """
CREATE INDEX item_labels_item ON item_labels (item_id);
"""

#: Version 5: what publishing has to catch up with.
CHANGES = """
CREATE TABLE changes (                -- one row
    generation INTEGER NOT NULL       -- bumped by every transaction that changes stored items
);
INSERT INTO changes (generation) VALUES (0);
"""

#: Version 6: an index no query used. ``items_by_link`` also matches the
#: guid, which has no index of its own, so it scans the table either way; and
#: keeping an index of random URLs up to date cost about a fifth of the time
#: of storing an item.
NO_LINK_INDEX = """
DROP INDEX IF EXISTS items_link;
"""

#: Migrations: index i upgrades schema version i to i + 1.
MIGRATIONS: tuple[str, ...] = (SCHEMA, CLUSTERING, SCHEDULING, LABEL_INDEX, CHANGES, NO_LINK_INDEX)


@dataclass(frozen=True)
class Placement:
    """The story a new item joins, and why."""

    story_id: int
    #: ``url``, ``fingerprint`` or ``similar``; None when the item starts the story.
    joined_by: str | None = None
    #: The stored item it repeats.
    joined_item: int | None = None
    #: Similarity with ``joined_item``, for ``similar``.
    similarity: float | None = None


@dataclass(frozen=True)
class ClusterRow:
    """What story clustering needs of a stored item."""

    item_id: int
    story_id: int
    source_url: str
    date: datetime
    signature: str | None
    #: The title (a signature stored by an older version lacks what is read
    #: from it), and the summary only for an item stored without a signature
    #: (before clustering).
    title: str | None
    summary: str | None
    #: Its country codes, space-separated (``items.countries``).
    countries: str = ""


@dataclass(frozen=True)
class SourceState:
    """A source as the store knows it."""

    url: str
    name: str
    title: str | None
    link: str | None
    validators: Validators
    last_attempt: datetime | None
    last_success: datetime | None
    failures: int
    last_error: str | None
    next_attempt: datetime | None = None
    gone: datetime | None = None
    moved_to: str | None = None


@dataclass(frozen=True)
class ItemBefore:
    """What a stored item was before :meth:`Store.update_item` changed it."""

    id: int
    story_id: int
    date: datetime
    relevant: bool


@dataclass(frozen=True)
class StoredItem:
    """An item as stored, with its classification outcome."""

    id: int
    source_url: str
    source_name: str
    source_title: str | None
    source_link: str | None
    guid: str
    story_id: int
    story_uid: str
    link: str | None
    title: str
    summary: str | None
    author: str | None
    language: str | None
    categories: tuple[str, ...]
    published: datetime | None
    updated: datetime | None
    date: datetime
    first_seen: datetime
    changed: datetime
    relevant: bool
    countries: tuple[str, ...]
    regional: bool
    explanation: dict[str, object]
    joined_by: str | None = None
    joined_item: int | None = None
    similarity: float | None = None


class Row(Protocol):
    """A result row: by position or by column name (sqlite3.Row, :class:`_PgRow`)."""

    def __getitem__(self, key: int | str) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


@dataclass
class _Group:
    """The transaction shared by :meth:`Store.grouped`."""

    open: bool = False
    #: Why it failed, once it has: what it held since its last commit is lost.
    failed: str | None = None
    #: The failure reached the caller of the transaction that failed, as raised.
    reported: bool = False


class Store:
    """An open store. Use :func:`open_store` to get one."""

    def __init__(self, backend: _Backend) -> None:
        self._db = backend
        self._group: _Group | None = None  # inside grouped()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        return self._db.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside is committed at once, or not at all; inside
        :meth:`grouped`, with the transactions around it.

        Raises:
            StoreError: the database refused (the change is rolled back).
        """
        with self._db.errors():
            if self._group is not None:
                with self._grouped_transaction(self._group):
                    yield
                return
            self._db.execute(self._db.BEGIN)
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _grouped_transaction(self, group: _Group) -> Iterator[None]:
        """:meth:`transaction` inside :meth:`grouped`: part of the group's
        transaction, which it starts if none is open. If it fails, the whole
        group is rolled back: a savepoint per transaction would keep the
        others, but its journal cost more than sharing the commit saved."""
        if group.failed is not None:
            raise RolledBack(group.failed)
        if not group.open:
            self._db.execute(self._db.BEGIN)
            group.open = True
        try:
            yield
        except BaseException as e:
            group.open = False
            group.failed = (
                f"{self._db.where}: a transaction failed ({type(e).__name__}: {e}),"
                " and the transactions sharing its commit were rolled back with it"
            )
            group.reported = True
            if self._db.in_transaction():
                self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Transactions inside share one commit, made by :meth:`commit_group`
        (call it every fraction of a second, between transactions) and at the
        end, even if an exception ends the block. Each commit is all or
        nothing: a process killed meanwhile loses every transaction since the
        last one, never part of one. A transaction that fails, or a commit,
        rolls back the transactions since the last commit, and every
        transaction inside fails from then on (:class:`RolledBack`), as does
        the block, unless the failure was raised already to the caller of
        the transaction that failed.

        A commit writes every page the transaction changed. The indexes of
        canonical URLs, fingerprints and story ids take random keys, so a
        source's 50 items touch about 50 pages of each: committed one source
        at a time, a first refresh of 1,000 x 50 wrote 2.1 GB for a 276 MB
        store (0.9 GB now). Only for SQLite, where one refresh writes at a
        time (:mod:`.lock`) and holding its write lock between sources keeps
        no one waiting; with a shared store (PostgreSQL) each transaction
        commits alone.

        Raises:
            StoreError: a commit failed: what the group held since its last
                commit is lost.
        """
        if self.shared:
            yield
            return
        group = self._group = _Group()
        try:
            yield
        finally:
            self._group = None
            if group.failed is None:
                self._commit(group)  # what the transactions completed, whatever ended the block
        if group.failed is not None and not group.reported:
            raise StoreError(group.failed)

    def commit_group(self) -> None:
        """Commit the transactions made so far inside :meth:`grouped`, if any;
        call it between transactions.

        Raises:
            StoreError: the commit failed: what it held is lost.
        """
        if self._group is not None:
            self._commit(self._group)

    def _commit(self, group: _Group) -> None:
        if not group.open:
            return
        group.open = False
        try:
            with self._db.errors():
                self._db.execute("COMMIT")
        except StoreError as e:
            group.failed = f"{e} (a commit: the transactions it held are lost)"
            with self._db.errors():
                if self._db.in_transaction():
                    self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        """Everything inside is undone at the end: for a dry run."""
        with self._db.errors():
            self._db.execute(self._db.BEGIN)
            try:
                yield
            finally:
                self._db.execute("ROLLBACK")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees the store as it was at the first one, even
        while other workers write: for publishing."""
        with self._db.errors():
            self._db.execute(self._db.BEGIN_SNAPSHOT)
            try:
                yield
            finally:
                self._db.execute("ROLLBACK")

    # --- coordination between workers (no-ops in SQLite: one writer) ----------

    @property
    def shared(self) -> bool:
        """True when other workers may write this store at the same time."""
        return self._db.shared

    def claim(self, source_url: str) -> bool:
        """Try to claim a source for this worker; False when another holds it.
        A claim lasts until :meth:`release`, or until this worker's connection ends."""
        with self._db.errors():
            return self._db.try_lock(self._db.lock_key("source", source_url))

    def release(self, source_url: str) -> None:
        with self._db.errors():
            self._db.unlock(self._db.lock_key("source", source_url))

    def lock_items(self) -> None:
        """Wait until no other worker is writing items, and keep them out until
        this transaction ends. Call first in a transaction that writes items."""
        self._db.lock_transaction(self._db.lock_key("items", ""))

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """Publish alone: wait for any other worker publishing to finish."""
        key = self._db.lock_key("publish", "")
        with self._db.errors():
            self._db.lock(key)
        try:
            yield
        finally:
            with self._db.errors():
                self._db.unlock(key)

    def generation(self) -> int:
        """A number that changes with every transaction that changed stored items."""
        return int(self._execute("SELECT generation FROM changes").fetchone()[0])

    def bump_generation(self) -> None:
        """Mark stored items as changed (call inside the changing transaction)."""
        self._execute("UPDATE changes SET generation = generation + 1")

    # --- sources -------------------------------------------------------------

    def source(self, url: str) -> SourceState | None:
        row = self._execute("SELECT * FROM sources WHERE url = ?", (url,)).fetchone()
        return _source_state(row) if row else None

    def sources(self) -> list[SourceState]:
        rows = self._execute("SELECT * FROM sources ORDER BY url").fetchall()
        return [_source_state(r) for r in rows]

    def validators(self, url: str) -> Validators:
        state = self.source(url)
        return state.validators if state else Validators()

    def ensure_source(self, source: Source) -> None:
        self._execute(
            "INSERT INTO sources (url, name) VALUES (?, ?)"
            " ON CONFLICT (url) DO UPDATE SET name = excluded.name",
            (source.url, source.name),
        )

    def rename_source(self, old: str, new: str) -> int:
        """Move the stored source ``old``, with its items, to the URL ``new``,
        which the store does not know yet; return how many items moved. Its
        validators and schedule are dropped: the new URL is fetched afresh."""
        self._execute(
            """INSERT INTO sources (url, name, title, link, last_attempt, last_success)
               SELECT ?, name, title, link, last_attempt, last_success FROM sources
               WHERE url = ?""",
            (new, old),
        )
        moved = self._execute(
            "UPDATE items SET source_url = ? WHERE source_url = ?", (new, old)
        ).rowcount
        self._execute("UPDATE pruned SET source_url = ? WHERE source_url = ?", (new, old))
        self._execute("DELETE FROM sources WHERE url = ?", (old,))
        return int(moved)

    def record_success(
        self,
        source: Source,
        validators: Validators,
        now: datetime,
        feed: FeedInfo | None,
        *,
        next_attempt: datetime | None = None,
        moved_to: str | None = None,
        forget_move: bool = False,
    ) -> None:
        """A fetch succeeded (changed or not); ``feed`` is None when nothing was
        parsed, ``moved_to`` set when the source redirected permanently. With
        ``forget_move`` (the fetch was from feeds.yaml's URL), ``moved_to``
        replaces the move stored, even with none."""
        self.ensure_source(source)
        self._execute(
            """UPDATE sources SET etag = ?, last_modified = ?, body_hash = ?,
                 last_attempt = ?, last_success = ?, failures = 0, last_error = NULL,
                 gone = NULL, title = coalesce(?, title), link = coalesce(?, link),
                 next_attempt = ?, moved_to = CASE WHEN ? THEN ? ELSE coalesce(?, moved_to) END
               WHERE url = ?""",
            (
                validators.etag,
                validators.last_modified,
                validators.body_hash,
                _iso(now),
                _iso(now),
                feed.title if feed else None,
                feed.link if feed else None,
                _iso(next_attempt),
                forget_move,
                moved_to,
                moved_to,
                source.url,
            ),
        )

    def record_failure(
        self,
        source: Source,
        error: str,
        now: datetime,
        *,
        next_attempt: datetime | None = None,
        gone: bool = False,
    ) -> None:
        """A fetch failed; ``gone`` when the server said 410 (no more attempts)."""
        self.ensure_source(source)
        self._execute(
            """UPDATE sources SET last_attempt = ?, failures = failures + 1, last_error = ?,
                 next_attempt = ?, gone = CASE WHEN ? THEN coalesce(gone, ?) ELSE gone END
               WHERE url = ?""",
            (_iso(now), error, _iso(next_attempt), gone, _iso(now), source.url),
        )

    # --- items ---------------------------------------------------------------

    def content_hashes(self, source_url: str) -> dict[str, str]:
        """guid -> content hash of every stored item of a source."""
        rows = self._execute(
            "SELECT guid, content_hash FROM items WHERE source_url = ?", (source_url,)
        )
        return dict(rows.fetchall())

    def find_story(
        self, canonical_url: str | None, fingerprint: str | None, since: datetime
    ) -> Placement | None:
        """The story of an item with the same canonical URL, or the same
        fingerprint first seen after ``since``; None if there is none."""
        if canonical_url:
            row = self._execute(
                "SELECT story_id, id FROM items WHERE canonical_url = ? ORDER BY id LIMIT 1",
                (canonical_url,),
            ).fetchone()
            if row:
                return Placement(row[0], "url", row[1])
        if fingerprint:
            row = self._execute(
                "SELECT story_id, id FROM items WHERE fingerprint = ? AND first_seen >= ?"
                " ORDER BY id LIMIT 1",
                (fingerprint, _iso(since)),
            ).fetchone()
            if row:
                return Placement(row[0], "fingerprint", row[1])
        return None

    def cluster_rows(self, since: datetime, after: int = 0) -> Iterator[ClusterRow]:
        """Items about the region dated after ``since`` whose id is above
        ``after``, for the story index."""
        rows = self._execute(
            """SELECT id, story_id, source_url, date, signature, title,
                      CASE WHEN signature IS NULL THEN summary END, countries
               FROM items WHERE relevant = 1 AND date >= ? AND id > ? ORDER BY id""",
            (_iso(since), after),
        )
        for row in rows:
            yield ClusterRow(row[0], row[1], row[2], _required_dt(row[3]), *row[4:])

    def pruned_guids(self, source_url: str) -> set[str]:
        """The guids of a source's items removed by retention (never stored again)."""
        rows = self._execute("SELECT guid FROM pruned WHERE source_url = ?", (source_url,))
        return {row[0] for row in rows}

    def prune(self, before: datetime, now: datetime, forget_before: datetime) -> int:
        """Delete the stories whose every item is dated before ``before`` (remembering
        their items' ids, so they are never stored again), and forget the ids of
        items pruned before ``forget_before``. Returns how many items were deleted.

        A story goes whole: pruning its earliest report alone would give its
        entry another representative (text, link, date) and move it up the
        feed, as if it were new. A story that later reports keep joining goes
        whole too once its first report is twice the retention period old
        (``before`` minus the period), so that it cannot hold its items forever."""
        cutoff, hard = _iso(before), _iso(before - (now - before))
        stale = """(date < ? AND NOT EXISTS (
                       SELECT 1 FROM items AS newer
                       WHERE newer.story_id = items.story_id AND newer.date >= ?))
                   OR story_id IN (SELECT story_id FROM items WHERE date < ?)"""
        self._execute(
            f"""INSERT INTO pruned (source_url, guid, pruned)
                SELECT source_url, guid, ? FROM items WHERE {stale}
                ON CONFLICT DO NOTHING""",
            (_iso(now), cutoff, cutoff, hard),
        )
        deleted = self._execute(f"DELETE FROM items WHERE {stale}", (cutoff, cutoff, hard)).rowcount
        self._execute("DELETE FROM stories WHERE id NOT IN (SELECT DISTINCT story_id FROM items)")
        self._execute("DELETE FROM pruned WHERE pruned < ?", (_iso(forget_before),))
        return int(deleted)

    def new_story(self, uid: str, now: datetime) -> int:
        """The id of the story ``uid``, created if it does not exist yet."""
        row = self._execute(
            "INSERT INTO stories (uid, created) VALUES (?, ?) ON CONFLICT (uid) DO NOTHING"
            " RETURNING id",
            (uid, _iso(now)),
        ).fetchone()
        if row is None:  # it exists
            row = self._execute("SELECT id FROM stories WHERE uid = ?", (uid,)).fetchone()
        return int(row[0])

    def insert_item(
        self,
        entry: Entry,
        *,
        placement: Placement,
        canonical_url: str | None,
        fingerprint: str | None,
        content_hash: str,
        signature: str | None,
        classification: Classification,
        now: datetime,
        explanation: str | None = None,
    ) -> int:
        """Store a new item; return its id. ``explanation`` is
        :func:`explanation_json` of ``classification``, if already computed."""
        published, stamp = _iso(entry.published), _iso(now)
        date = stamp if entry.published is None or entry.published >= now else published
        cursor = self._execute(
            """INSERT INTO items (source_url, guid, story_id, canonical_url, fingerprint,
                 content_hash, link, title, summary, author, language, categories,
                 published, updated, date, first_seen, changed,
                 relevant, countries, regional, explanation,
                 signature, joined_by, joined_item, similarity)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                       ?, ?, ?, ?)
               RETURNING id""",
            (
                entry.source_url,
                entry.guid,
                placement.story_id,
                canonical_url,
                fingerprint,
                content_hash,
                entry.link,
                entry.title,
                entry.summary,
                entry.author,
                entry.language,
                _JSON.encode(list(entry.categories)),
                published,
                _iso(entry.updated),
                date,
                stamp,
                stamp,
                *_classification_columns(classification, explanation),
                signature,
                placement.joined_by,
                placement.joined_item,
                placement.similarity,
            ),
        )
        item_id = int(cursor.fetchone()[0])
        self._set_labels(item_id, classification, new=True)
        return item_id

    def update_item(
        self,
        entry: Entry,
        *,
        content_hash: str,
        classification: Classification,
        now: datetime,
        canonical_url: str | None,
        fingerprint: str | None,
        signature: str | None,
        explanation: str | None = None,
    ) -> ItemBefore:
        """Replace the text of an item already stored under the same guid, and
        what is computed from it (its story stays); return what it was.
        ``explanation`` is :func:`explanation_json` of ``classification``, if
        already computed.

        Its ``changed`` time (the published entry's ``updated``) moves only
        when something published changes: its title, summary, link, language
        or countries, not its categories or author alone."""
        row = self._execute(
            """SELECT id, story_id, date, relevant, title, summary, link, language,
                 countries, regional, changed
               FROM items WHERE source_url = ? AND guid = ?""",
            (entry.source_url, entry.guid),
        ).fetchone()
        if row is None:
            raise StoreError(f"no stored item {entry.guid!r} of {entry.source_url}")
        relevant, countries, regional, explanation = _classification_columns(
            classification, explanation
        )
        shown = (entry.title, entry.summary, entry.link, entry.language, countries, regional)
        changed = row[10] if tuple(row[4:10]) == shown else _iso(now)
        self._execute(
            """UPDATE items SET content_hash = ?, link = ?, title = ?, summary = ?,
                 author = ?, language = ?, categories = ?, updated = ?, changed = ?,
                 relevant = ?, countries = ?, regional = ?, explanation = ?,
                 canonical_url = ?, fingerprint = ?, signature = ?
               WHERE id = ?""",
            (
                content_hash,
                entry.link,
                entry.title,
                entry.summary,
                entry.author,
                entry.language,
                _JSON.encode(list(entry.categories)),
                _iso(entry.updated),
                changed,
                relevant,
                countries,
                regional,
                explanation,
                canonical_url,
                fingerprint,
                signature,
                row[0],
            ),
        )
        self._set_labels(row[0], classification)
        return ItemBefore(int(row[0]), int(row[1]), _required_dt(row[2]), bool(row[3]))

    def all_items(self) -> Iterator[StoredItem]:
        """Every stored item, oldest first."""
        for row in self._execute(f"{_ITEM_SELECT} ORDER BY i.id").fetchall():
            yield _stored_item(row)

    def set_classification(self, item_id: int, classification: Classification) -> None:
        """Replace the classification of a stored item (its text stays)."""
        self._execute(
            "UPDATE items SET relevant = ?, countries = ?, regional = ?, explanation = ?"
            " WHERE id = ?",
            (*_classification_columns(classification), item_id),
        )
        self._set_labels(item_id, classification)

    def story_size(self, story_id: int) -> int:
        """How many items a story has."""
        row = self._execute("SELECT count(*) FROM items WHERE story_id = ?", (story_id,))
        return int(row.fetchone()[0])

    def place_again(
        self,
        item_id: int,
        signature: str,
        placement: Placement | None,
        fingerprint: str | None = None,
    ) -> None:
        """Store an item's signature (and its fingerprint, if given), and move
        it to ``placement``'s story, if given (its former story, left empty,
        goes at the next pruning)."""
        if fingerprint is not None:
            self._execute("UPDATE items SET fingerprint = ? WHERE id = ?", (fingerprint, item_id))
        if placement is None:
            self._execute("UPDATE items SET signature = ? WHERE id = ?", (signature, item_id))
            return
        self._execute(
            """UPDATE items SET signature = ?, story_id = ?, joined_by = ?, joined_item = ?,
                 similarity = ? WHERE id = ?""",
            (
                signature, placement.story_id, placement.joined_by, placement.joined_item,
                placement.similarity, item_id,
            ),
        )  # fmt: skip

    def _set_labels(self, item_id: int, classification: Classification, new: bool = False) -> None:
        if not new:
            self._execute("DELETE FROM item_labels WHERE item_id = ?", (item_id,))
        if labels := classification.labels:  # none for an item not about the region
            self._db.executemany(
                "INSERT INTO item_labels (label, item_id) VALUES (?, ?)",
                [(label, item_id) for label in labels],
            )

    # --- reading for publishing and explaining ---------------------------------

    def story_ids(self, labels: Sequence[str], limit: int) -> list[int]:
        """The newest ``limit`` stories with an item labelled with any of ``labels``,
        newest first (a story's date is its earliest item's)."""
        marks = ",".join("?" * len(labels))
        rows = self._execute(
            f"""SELECT i.story_id FROM items i
                WHERE i.relevant = 1 AND i.story_id IN (
                    SELECT i2.story_id FROM item_labels l JOIN items i2 ON i2.id = l.item_id
                    WHERE l.label IN ({marks}))
                GROUP BY i.story_id
                ORDER BY min(i.date) DESC, i.story_id DESC
                LIMIT ?""",
            (*labels, limit),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def items_of_stories(self, story_ids: Sequence[int]) -> list[StoredItem]:
        """The relevant items of the given stories, in story order then by date."""
        if not story_ids:
            return []
        marks = ",".join("?" * len(story_ids))
        rows = self._execute(
            f"""{_ITEM_SELECT} WHERE i.relevant = 1 AND i.story_id IN ({marks})
                ORDER BY i.date, i.id""",
            tuple(story_ids),
        ).fetchall()
        order = {sid: n for n, sid in enumerate(story_ids)}
        items = [_stored_item(r) for r in rows]
        return sorted(items, key=lambda it: order[it.story_id])

    def items_by_link(self, url: str) -> list[StoredItem]:
        """Items whose link or guid is ``url``, or whose canonical URL is
        ``url``'s (the link of a published entry, without its tracking
        parameters, or with ``www.``), or every item of the story whose
        published id it is."""
        from .dedupe import canonical_url  # dedupe imports the classifier: only here

        try:
            canonical = canonical_url(url)
        except ValueError:  # not a URL ("http://[::1"): an id, maybe
            canonical = url
        rows = self._execute(
            f"""{_ITEM_SELECT} WHERE i.link = ? OR i.canonical_url = ? OR i.guid = ?
                  OR st.uid = ?
                ORDER BY i.id""",
            (url, canonical, url, url),
        ).fetchall()
        return [_stored_item(r) for r in rows]

    def dropped_items(self, limit: int) -> list[StoredItem]:
        """The newest items that were not about the region."""
        rows = self._execute(
            f"{_ITEM_SELECT} WHERE i.relevant = 0 ORDER BY i.date DESC, i.id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [_stored_item(r) for r in rows]

    def count_items(self) -> int:
        return int(self._execute("SELECT count(*) FROM items").fetchone()[0])

    def items_per_source(self) -> dict[str, tuple[int, datetime]]:
        """For each source with stored items: how many, and when the newest
        was first seen (a source that answers but never brings anything new
        has a feed that stopped)."""
        rows = self._execute(
            "SELECT source_url, count(*) AS items, max(first_seen) AS newest"
            " FROM items GROUP BY source_url"
        ).fetchall()
        return {row["source_url"]: (int(row["items"]), _required_dt(row["newest"])) for row in rows}


_ITEM_SELECT = """
    SELECT i.*, s.name AS source_name, s.title AS source_title, s.link AS source_link,
           st.uid AS story_uid
    FROM items i JOIN sources s ON s.url = i.source_url JOIN stories st ON st.id = i.story_id
"""


def open_store(storage: Path | PostgresURL) -> Store:
    """Open (creating if needed) and migrate the store: a SQLite file, or a
    PostgreSQL database.

    Raises:
        StoreError: the store cannot be reached or created, or is not usable.
    """
    backend: _Backend = _Postgres(storage) if isinstance(storage, PostgresURL) else _SQLite(storage)
    try:
        with backend.errors():
            _migrate(backend)
    except StoreError:
        backend.close()
        raise
    return Store(backend)


def _migrate(db: _Backend) -> None:
    """Bring the schema to the current version, one migration per transaction."""
    if not db.shared:
        # One read, without the write lock, which a refresh holds for half a
        # second at a time (Store.grouped): ``status`` need not wait for it.
        with db.errors():
            if db.version() == len(MIGRATIONS):
                return
    while True:
        with db.errors():
            db.execute(db.BEGIN)
            try:
                db.lock_transaction(db.lock_key("migrate", ""))  # two workers starting together
                version = db.version()
                if version > len(MIGRATIONS):
                    raise StoreError(
                        f"{db.where}: schema version {version} is newer than this"
                        f" program ({len(MIGRATIONS)})"
                    )
                if version == len(MIGRATIONS):
                    db.execute("ROLLBACK")
                    return
                for statement in _statements(MIGRATIONS[version]):
                    db.execute(db.ddl(statement))
                db.set_version(version + 1)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


def _statements(script: str) -> list[str]:
    parts, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            parts.append(current.strip())
            current = ""
    return [p for p in parts if p]


# --- backends ----------------------------------------------------------------


class _Backend:
    """What differs between SQLite and PostgreSQL; queries live in :class:`Store`."""

    #: Starts a transaction that writes.
    BEGIN = "BEGIN"
    #: Starts a read-only transaction on one snapshot.
    BEGIN_SNAPSHOT = "BEGIN"
    #: Other processes may write at the same time.
    shared = False
    where = ""

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        raise NotImplementedError

    def in_transaction(self) -> bool:
        raise NotImplementedError

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn the driver's errors into :class:`StoreError`."""
        yield

    def close(self) -> None:
        raise NotImplementedError

    def ddl(self, statement: str) -> str:
        """A statement of the (SQLite-flavoured) schema, for this database."""
        return statement

    def version(self) -> int:
        raise NotImplementedError

    def set_version(self, version: int) -> None:
        raise NotImplementedError

    #: Advisory locks are per database: keys include this (the schema), so
    #: stores in two schemas of one database do not hold each other up.
    namespace = ""

    def lock_key(self, kind: str, name: str) -> int:
        """A signed 64-bit advisory lock key for ``kind`` (source, items,
        publish, migrate) and ``name``."""
        text = f"aggregator:{self.namespace}:{kind}:{name}"
        digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    # Locks between workers: none are needed with one writer.
    def try_lock(self, key: int) -> bool:
        return True

    def lock(self, key: int) -> None:
        pass

    def unlock(self, key: int) -> None:
        pass

    def lock_transaction(self, key: int) -> None:
        pass


class _SQLite(_Backend):
    # IMMEDIATE: take the write lock now, not at the first write (no deadlock
    # between two transactions that both read, then write).
    BEGIN = "BEGIN IMMEDIATE"

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"{path}: cannot open the store: {e}") from e
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA busy_timeout = 10000")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            # A refresh writes tens of megabytes: checkpoint (and sync) every
            # 40 MB of log rather than every 4 MB (six percent of a first
            # refresh of 1,000 sources); closing the store checkpoints the rest.
            self._conn.execute("PRAGMA wal_autocheckpoint = 10000")
            # Room for most pages a group of transactions changes before its
            # commit (Store.grouped). Storing the 50,000 items of a first
            # refresh of 1,000 x 50 wrote 955 MB with the default 2 MB (pages
            # spilled during the transaction were written again at the
            # commit), 739 MB with 8 MB, 728 MB with 16 or 32.
            self._conn.execute("PRAGMA cache_size = -8192")
            # Statement journals in memory: in a group, most pages a statement
            # changes are changed already, and SQLite first copies them to a
            # temporary file, in case the statement fails (a third of the
            # bytes a first refresh wrote).
            self._conn.execute("PRAGMA temp_store = MEMORY")
        except sqlite3.Error as e:
            self._conn.close()
            raise StoreError(f"{path}: not a usable store: {e}") from e

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self._conn.executemany(sql, rows)

    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise StoreError(f"{self.where}: {e}") from e

    def close(self) -> None:
        self._conn.close()

    def version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def set_version(self, version: int) -> None:
        self._conn.execute(f"PRAGMA user_version = {int(version)}")


class _Postgres(_Backend):
    BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    shared = True

    def __init__(self, url: PostgresURL) -> None:
        self.where = str(url)
        try:
            import psycopg
        except ImportError as e:
            raise StoreError(
                f"{self.where}: a PostgreSQL store needs psycopg:"
                " install the postgresql extra (pip install -e '.[postgresql]' in the project)"
            ) from e
        self._error = psycopg.Error
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(
                url.url, autocommit=True, row_factory=_pg_row, connect_timeout=10
            )
        except psycopg.Error as e:
            raise StoreError(f"{self.where}: cannot connect: {_one_line(e)}") from e
        try:
            with self.errors():
                row = self._conn.execute("SELECT current_schema()").fetchone()
        except StoreError:
            self._conn.close()
            raise
        self.namespace = str(row[0]) if row else ""

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        return self._conn.execute(_placeholders(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self._conn.cursor().executemany(_placeholders(sql), rows)

    def in_transaction(self) -> bool:
        return bool(self._conn.info.transaction_status)

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except self._error as e:
            raise StoreError(f"{self.where}: {_one_line(e)}") from e

    def close(self) -> None:
        self._conn.close()

    def ddl(self, statement: str) -> str:
        statement = statement.replace(
            "INTEGER PRIMARY KEY", "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        )
        statement = statement.replace(" WITHOUT ROWID", "")
        statement = re.sub(r"\bREAL\b", "DOUBLE PRECISION", statement)
        # Byte order, as SQLite compares: ISO 8601 times and URLs sort as written.
        return re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', statement)

    def version(self) -> int:
        self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0) if row else 0

    def set_version(self, version: int) -> None:
        self._conn.execute("DELETE FROM schema_version")
        self._conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    def try_lock(self, key: int) -> bool:
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        return bool(row and row[0])

    def lock(self, key: int) -> None:
        self._conn.execute("SELECT pg_advisory_lock(%s)", (key,))

    def unlock(self, key: int) -> None:
        self._conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def lock_transaction(self, key: int) -> None:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))


@lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (no query here holds a
    literal ``?`` or ``%``)."""
    return sql.replace("?", "%s")


class _PgRow:
    """A PostgreSQL row that reads like ``sqlite3.Row``: by position or name."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._names[key] if isinstance(key, str) else key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _pg_row(cursor: psycopg.Cursor[Any]) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> _PgRow:
        return _PgRow(names, values)

    return make


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _classification_columns(
    c: Classification, explanation: str | None = None
) -> tuple[int, str, int, str]:
    return (
        int(c.relevant),
        " ".join(c.countries),
        int(c.regional),
        explanation_json(c) if explanation is None else explanation,
    )


def explanation_json(c: Classification) -> str:
    """What ``explain`` shows of a classification, as stored (pure, so a
    worker process can compute it): the JSON of :func:`explanation`.

    Joined from the JSON of each distinct match, encoded once per process
    (most recur: the same capital named in the same field), in half the time
    of encoding it whole; the same text."""
    head = _JSON.encode(_outcome(c))
    matches = ", ".join(
        f'{_match_json(match)}, "count": {count}}}' if count > 1 else f"{_match_json(match)}}}"
        for match, count in _distinct(c.matches).items()
    )
    return f'{head[:-1]}, "matches": [{matches}]}}'


def explanation(c: Classification) -> dict[str, object]:
    """What ``explain`` shows of a classification: what :func:`explanation_json`
    encodes, joined from parts (the tests compare the two)."""
    return {**_outcome(c), "matches": explained_matches(c.matches)}


def _outcome(c: Classification) -> dict[str, object]:
    return {
        "outcome": "published" if c.relevant else "dropped",
        "countries": list(c.countries),
        "primary": c.primary,
        "regional": c.regional,
        "scores": c.scores,
    }


@lru_cache(maxsize=1 << 14)
def _match_json(match: _MatchKey) -> str:
    """The JSON of one entry of :func:`explained_matches`, without its closing brace."""
    return _JSON.encode(_match_entry(match))[:-1]


def explained_matches(matches: Iterable[Match]) -> list[dict[str, object]]:
    """Matches as ``explain`` shows and stores them: one entry per distinct
    match (label, term, text as written, field, kind, points), in order of
    first appearance, with a ``count`` when it repeats (Almaty named three
    times in a summary). An entry without a count (all of them, in
    explanations stored before counts were kept) is one match."""
    entries = []
    for match, count in _distinct(matches).items():
        entry = _match_entry(match)
        if count > 1:
            entry["count"] = count
        entries.append(entry)
    return entries


#: What tells matches apart: label, term, text as written, field, kind, points.
_MatchKey = tuple[str, str, str, str, str, float]


def _distinct(matches: Iterable[Match]) -> Counter[_MatchKey]:
    """The distinct matches, in order of first appearance, with their counts."""
    return Counter((m.label, m.term, m.text, m.field, m.kind, m.points) for m in matches)


def _match_entry(match: _MatchKey) -> dict[str, object]:
    label, term, text, field, kind, points = match
    return {
        "label": label, "term": term, "text": text, "field": field, "kind": kind,
        "points": points,
    }  # fmt: skip


#: What ``json.dumps(..., ensure_ascii=False)`` builds on every call.
_JSON = json.JSONEncoder(ensure_ascii=False)


def _source_state(row: Row) -> SourceState:
    return SourceState(
        url=row["url"],
        name=row["name"],
        title=row["title"],
        link=row["link"],
        validators=Validators(row["etag"], row["last_modified"], row["body_hash"]),
        last_attempt=_dt(row["last_attempt"]),
        last_success=_dt(row["last_success"]),
        failures=row["failures"],
        last_error=row["last_error"],
        next_attempt=_dt(row["next_attempt"]),
        gone=_dt(row["gone"]),
        moved_to=row["moved_to"],
    )


def _stored_item(row: Row) -> StoredItem:
    return StoredItem(
        id=row["id"],
        source_url=row["source_url"],
        source_name=row["source_name"],
        source_title=row["source_title"],
        source_link=row["source_link"],
        guid=row["guid"],
        story_id=row["story_id"],
        story_uid=row["story_uid"],
        link=row["link"],
        title=row["title"],
        summary=row["summary"],
        author=row["author"],
        language=row["language"],
        categories=tuple(json.loads(row["categories"])),
        published=_dt(row["published"]),
        updated=_dt(row["updated"]),
        date=_required_dt(row["date"]),
        first_seen=_required_dt(row["first_seen"]),
        changed=_required_dt(row["changed"]),
        relevant=bool(row["relevant"]),
        countries=tuple(row["countries"].split()),
        regional=bool(row["regional"]),
        explanation=json.loads(row["explanation"]),
        joined_by=row["joined_by"],
        joined_item=row["joined_item"],
        similarity=row["similarity"],
    )


@lru_cache(maxsize=256)  # a refresh stamps every item with the same few times
def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="seconds")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _required_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)

"""Persist sources, items and stories in SQLite: the only module that speaks SQL.

One schema string with a comment per column, numbered migrations keyed by
``PRAGMA user_version``, rows turned into records here. The database runs in
WAL mode with a busy timeout, so a publisher reading and a refresh writing do
not block each other, and a killed process never leaves it corrupt. Each
source is written in one transaction (:meth:`Store.transaction`).
It does not decide anything: what is new, which story, which country are
decided by the callers and handed in.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .errors import StoreError
from .types import Classification, Entry, FeedInfo, Source, Validators

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
    changed TEXT NOT NULL,           -- when the stored text last changed
    relevant INTEGER NOT NULL,       -- 0: not about the region, never published
    countries TEXT NOT NULL,         -- country codes, strongest first, space-separated
    regional INTEGER NOT NULL,       -- about Central Asia as a whole
    explanation TEXT NOT NULL,       -- JSON: matches, scores, outcome
    UNIQUE (source_url, guid)
);
CREATE INDEX items_canonical_url ON items (canonical_url);
CREATE INDEX items_fingerprint ON items (fingerprint);
CREATE INDEX items_story ON items (story_id);
CREATE INDEX items_link ON items (link);

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

#: Migrations: index i upgrades user_version i to i + 1.
MIGRATIONS: tuple[str, ...] = (SCHEMA, CLUSTERING, SCHEDULING, LABEL_INDEX)


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
    title: str
    summary: str | None


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


class Store:
    """An open SQLite store. Use :func:`open_store` to get one."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside is committed at once, or not at all."""
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                yield
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: {e}") from e

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        """Everything inside is undone at the end: for a dry run."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("ROLLBACK")

    # --- sources -------------------------------------------------------------

    def source(self, url: str) -> SourceState | None:
        row = self._conn.execute("SELECT * FROM sources WHERE url = ?", (url,)).fetchone()
        return _source_state(row) if row else None

    def sources(self) -> list[SourceState]:
        rows = self._conn.execute("SELECT * FROM sources ORDER BY url").fetchall()
        return [_source_state(r) for r in rows]

    def validators(self, url: str) -> Validators:
        state = self.source(url)
        return state.validators if state else Validators()

    def ensure_source(self, source: Source) -> None:
        self._conn.execute(
            "INSERT INTO sources (url, name) VALUES (?, ?)"
            " ON CONFLICT (url) DO UPDATE SET name = excluded.name",
            (source.url, source.name),
        )

    def record_success(
        self,
        source: Source,
        validators: Validators,
        now: datetime,
        feed: FeedInfo | None,
        *,
        next_attempt: datetime | None = None,
        moved_to: str | None = None,
    ) -> None:
        """A fetch succeeded (changed or not); ``feed`` is None when nothing was
        parsed, ``moved_to`` set when the source redirected permanently."""
        self.ensure_source(source)
        self._conn.execute(
            """UPDATE sources SET etag = ?, last_modified = ?, body_hash = ?,
                 last_attempt = ?, last_success = ?, failures = 0, last_error = NULL,
                 title = coalesce(?, title), link = coalesce(?, link),
                 next_attempt = ?, moved_to = coalesce(?, moved_to)
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
        self._conn.execute(
            """UPDATE sources SET last_attempt = ?, failures = failures + 1, last_error = ?,
                 next_attempt = ?, gone = CASE WHEN ? THEN ? ELSE gone END
               WHERE url = ?""",
            (_iso(now), error, _iso(next_attempt), gone, _iso(now), source.url),
        )

    # --- items ---------------------------------------------------------------

    def content_hashes(self, source_url: str) -> dict[str, str]:
        """guid -> content hash of every stored item of a source."""
        rows = self._conn.execute(
            "SELECT guid, content_hash FROM items WHERE source_url = ?", (source_url,)
        )
        return dict(rows.fetchall())

    def find_story(
        self, canonical_url: str | None, fingerprint: str | None, since: datetime
    ) -> Placement | None:
        """The story of an item with the same canonical URL, or the same
        fingerprint first seen after ``since``; None if there is none."""
        if canonical_url:
            row = self._conn.execute(
                "SELECT story_id, id FROM items WHERE canonical_url = ? ORDER BY id LIMIT 1",
                (canonical_url,),
            ).fetchone()
            if row:
                return Placement(row[0], "url", row[1])
        if fingerprint:
            row = self._conn.execute(
                "SELECT story_id, id FROM items WHERE fingerprint = ? AND first_seen >= ?"
                " ORDER BY id LIMIT 1",
                (fingerprint, _iso(since)),
            ).fetchone()
            if row:
                return Placement(row[0], "fingerprint", row[1])
        return None

    def cluster_rows(self, since: datetime) -> Iterator[ClusterRow]:
        """Items dated after ``since``, for the story index."""
        rows = self._conn.execute(
            """SELECT id, story_id, source_url, date, signature, title, summary
               FROM items WHERE date >= ? ORDER BY id""",
            (_iso(since),),
        )
        for row in rows:
            yield ClusterRow(row[0], row[1], row[2], _required_dt(row[3]), *row[4:])

    def is_pruned(self, source_url: str, guid: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM pruned WHERE source_url = ? AND guid = ?", (source_url, guid)
        ).fetchone()
        return row is not None

    def prune(self, before: datetime, now: datetime, forget_before: datetime) -> int:
        """Delete items dated before ``before`` (remembering their ids, so they
        are never stored again) and stories left empty; forget the ids of
        items pruned before ``forget_before``. Returns how many were deleted."""
        cutoff = _iso(before)
        self._conn.execute(
            """INSERT OR IGNORE INTO pruned (source_url, guid, pruned)
               SELECT source_url, guid, ? FROM items WHERE date < ?""",
            (_iso(now), cutoff),
        )
        deleted = self._conn.execute("DELETE FROM items WHERE date < ?", (cutoff,)).rowcount
        self._conn.execute(
            "DELETE FROM stories WHERE id NOT IN (SELECT DISTINCT story_id FROM items)"
        )
        self._conn.execute("DELETE FROM pruned WHERE pruned < ?", (_iso(forget_before),))
        return int(deleted)

    def new_story(self, uid: str, now: datetime) -> int:
        """The id of the story ``uid``, created if it does not exist yet."""
        self._conn.execute(
            "INSERT INTO stories (uid, created) VALUES (?, ?) ON CONFLICT (uid) DO NOTHING",
            (uid, _iso(now)),
        )
        row = self._conn.execute("SELECT id FROM stories WHERE uid = ?", (uid,)).fetchone()
        return int(row[0])

    def insert_item(
        self,
        entry: Entry,
        *,
        placement: Placement,
        canonical_url: str | None,
        fingerprint: str | None,
        content_hash: str,
        signature: str,
        classification: Classification,
        now: datetime,
    ) -> int:
        """Store a new item; return its id."""
        date = min(entry.published, now) if entry.published else now
        cursor = self._conn.execute(
            """INSERT INTO items (source_url, guid, story_id, canonical_url, fingerprint,
                 content_hash, link, title, summary, author, language, categories,
                 published, updated, date, first_seen, changed,
                 relevant, countries, regional, explanation,
                 signature, joined_by, joined_item, similarity)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                       ?, ?, ?, ?)""",
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
                json.dumps(list(entry.categories), ensure_ascii=False),
                _iso(entry.published),
                _iso(entry.updated),
                _iso(date),
                _iso(now),
                _iso(now),
                *_classification_columns(classification),
                signature,
                placement.joined_by,
                placement.joined_item,
                placement.similarity,
            ),
        )
        assert cursor.lastrowid is not None
        self._set_labels(cursor.lastrowid, classification, new=True)
        return cursor.lastrowid

    def update_item(
        self,
        entry: Entry,
        *,
        content_hash: str,
        classification: Classification,
        now: datetime,
    ) -> None:
        """Replace the text of an item already stored under the same guid."""
        row = self._conn.execute(
            "SELECT id FROM items WHERE source_url = ? AND guid = ?",
            (entry.source_url, entry.guid),
        ).fetchone()
        if row is None:
            raise StoreError(f"no stored item {entry.guid!r} of {entry.source_url}")
        self._conn.execute(
            """UPDATE items SET content_hash = ?, link = ?, title = ?, summary = ?,
                 author = ?, language = ?, categories = ?, updated = ?, changed = ?,
                 relevant = ?, countries = ?, regional = ?, explanation = ?
               WHERE id = ?""",
            (
                content_hash,
                entry.link,
                entry.title,
                entry.summary,
                entry.author,
                entry.language,
                json.dumps(list(entry.categories), ensure_ascii=False),
                _iso(entry.updated),
                _iso(now),
                *_classification_columns(classification),
                row[0],
            ),
        )
        self._set_labels(row[0], classification)

    def all_items(self) -> Iterator[StoredItem]:
        """Every stored item, oldest first."""
        for row in self._conn.execute(f"{_ITEM_SELECT} ORDER BY i.id").fetchall():
            yield _stored_item(row)

    def set_classification(self, item_id: int, classification: Classification) -> None:
        """Replace the classification of a stored item (its text stays)."""
        self._conn.execute(
            "UPDATE items SET relevant = ?, countries = ?, regional = ?, explanation = ?"
            " WHERE id = ?",
            (*_classification_columns(classification), item_id),
        )
        self._set_labels(item_id, classification)

    def _set_labels(self, item_id: int, classification: Classification, new: bool = False) -> None:
        if not new:
            self._conn.execute("DELETE FROM item_labels WHERE item_id = ?", (item_id,))
        self._conn.executemany(
            "INSERT INTO item_labels (label, item_id) VALUES (?, ?)",
            [(label, item_id) for label in classification.labels],
        )

    # --- reading for publishing and explaining ---------------------------------

    def story_ids(self, labels: Sequence[str], limit: int) -> list[int]:
        """The newest ``limit`` stories with an item labelled with any of ``labels``,
        newest first (a story's date is its earliest item's)."""
        marks = ",".join("?" * len(labels))
        rows = self._conn.execute(
            f"""SELECT i.story_id FROM items i
                WHERE i.relevant AND i.story_id IN (
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
        rows = self._conn.execute(
            f"""{_ITEM_SELECT} WHERE i.relevant AND i.story_id IN ({marks})
                ORDER BY i.date, i.id""",
            tuple(story_ids),
        ).fetchall()
        order = {sid: n for n, sid in enumerate(story_ids)}
        items = [_stored_item(r) for r in rows]
        return sorted(items, key=lambda it: order[it.story_id])

    def items_by_link(self, url: str) -> list[StoredItem]:
        """Items whose link, canonical URL or guid is ``url``."""
        rows = self._conn.execute(
            f"""{_ITEM_SELECT} WHERE i.link = ? OR i.canonical_url = ? OR i.guid = ?
                ORDER BY i.id""",
            (url, url, url),
        ).fetchall()
        return [_stored_item(r) for r in rows]

    def dropped_items(self, limit: int) -> list[StoredItem]:
        """The newest items that were not about the region."""
        rows = self._conn.execute(
            f"{_ITEM_SELECT} WHERE NOT i.relevant ORDER BY i.date DESC, i.id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [_stored_item(r) for r in rows]

    def count_items(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM items").fetchone()[0])


_ITEM_SELECT = """
    SELECT i.*, s.name AS source_name, s.title AS source_title, s.link AS source_link,
           st.uid AS story_uid
    FROM items i JOIN sources s ON s.url = i.source_url JOIN stories st ON st.id = i.story_id
"""


def open_store(path: Path) -> Store:
    """Open (creating if needed) and migrate the SQLite store at ``path``.

    Raises:
        StoreError: the file cannot be created or is not a usable database.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"{path}: cannot open the store: {e}") from e
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn)
    except sqlite3.Error as e:
        conn.close()
        raise StoreError(f"{path}: not a usable store: {e}") from e
    return Store(conn, path)


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise sqlite3.DatabaseError(
            f"schema version {version} is newer than this program ({len(MIGRATIONS)})"
        )
    for number in range(version, len(MIGRATIONS)):
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            # executescript() would commit on its own; run the statements one by one.
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")


def _statements(script: str) -> list[str]:
    parts, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            parts.append(current.strip())
            current = ""
    return [p for p in parts if p]


def _classification_columns(c: Classification) -> tuple[int, str, int, str]:
    explanation = {
        "outcome": "published" if c.relevant else "dropped",
        "countries": list(c.countries),
        "primary": c.primary,
        "regional": c.regional,
        "scores": c.scores,
        "matches": [
            {
                "label": m.label,
                "term": m.term,
                "text": m.text,
                "field": m.field,
                "kind": m.kind,
                "points": m.points,
            }
            for m in c.matches
        ],
    }
    return (
        int(c.relevant),
        " ".join(c.countries),
        int(c.regional),
        json.dumps(explanation, ensure_ascii=False),
    )


def _source_state(row: sqlite3.Row) -> SourceState:
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


def _stored_item(row: sqlite3.Row) -> StoredItem:
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


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _required_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)

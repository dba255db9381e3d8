"""Typed records passed between the pipeline stages.

Every record is a frozen dataclass: stages exchange these, never dicts or
library objects. No I/O and no third-party imports here.
Datetimes are timezone-aware UTC; a missing value is ``None``, never ``''``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

#: The five countries, in the order feeds and reports list them.
COUNTRIES: tuple[str, ...] = ("kz", "kg", "tj", "tm", "uz")

#: The label of the regional bucket (Central Asia as a whole).
REGION = "region"

#: A language tag as published (``xml:lang``, RFC 4646 syntax, which the Atom
#: schema checks): a primary language of two or three letters, then subtags.
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*", re.ASCII)
#: Names that feeds write where a language tag belongs.
_LANGUAGE_NAMES = {
    "english": "en", "french": "fr", "français": "fr", "francais": "fr",
    "russian": "ru", "русский": "ru",
}  # fmt: skip


def language_tag(value: str | None) -> str | None:
    """``value`` as a lower-case language tag, or None when it is not one.

    Feeds write ``ru_RU``, ``en-US``, ``Russian``, ``fr, en`` or ``english (US)``
    in ``<language>``: ``_`` is read as ``-``, a few language names as their
    codes, and anything else that is not a tag gives None (the source's
    configured language is used instead). A stored item's language goes
    through it again when published, so no value can make a feed invalid.
    """
    if not value:
        return None
    text = value.strip().lower().replace("_", "-")
    text = _LANGUAGE_NAMES.get(text, text)
    return text if _LANGUAGE_TAG.fullmatch(text) else None


#: The user information of a URL (``https://user:password@host/``), which
#: httpx sends as HTTP Basic credentials.
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#]*@")
#: The same, in a text that quotes URLs (an error message).
_QUOTED_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s'\"<>@]*@")


def redacted(text: object) -> str:
    """``text`` (a URL, or a message quoting URLs) as shown in logs and
    terminals: the user information of its URLs (a password, a token)
    replaced by ``***``."""
    text = str(text)
    return _QUOTED_USERINFO.sub(r"\1***@", text) if "@" in text else text


def without_credentials(url: str) -> str:
    """``url`` as published (a source's feed, in an entry's ``<source>``):
    without its user information."""
    return _USERINFO.sub(r"\1", url) if "@" in url else url


# --- configuration ---------------------------------------------------------


@dataclass(frozen=True)
class Selectors:
    """CSS selectors that find the items of an HTML page (``type: html``)."""

    #: Each element matching this is one item.
    item: str
    #: Inside an item: its title (the text).
    title: str
    #: Inside an item: its link (``href`` of the element, or of its first ``<a>``);
    #: None: the item's own ``href``, or its first ``<a>``.
    link: str | None = None
    #: Inside an item: its date (a ``datetime`` attribute, or the text, in French,
    #: English or Russian); None: no date.
    date: str | None = None
    #: Inside an item: its summary (the HTML); None: no summary.
    summary: str | None = None


@dataclass(frozen=True)
class Source:
    """One entry of ``sources:`` in ``feeds.yaml``."""

    #: Human name of the outlet; used as the author of published entries.
    name: str
    #: The feed URL as configured; the source's identity in the store.
    url: str
    #: BCP 47 language tag of the outlet (``fr``, ``en``, ``ru``), if known.
    language: str | None = None
    #: The outlet's home country (``kg``...): breaks ties, and labels items
    #: that name no place at all. Never given for outlets covering several.
    country: str | None = None
    #: Higher wins: the outlet whose item represents a story reported by several.
    priority: int = 0
    #: For a page without a feed (``type: html``): how to find its items.
    selectors: Selectors | None = None
    #: Minutes between two fetches of this source, instead of the schedule's.
    interval_minutes: float | None = None
    #: IANA time zone (``Asia/Almaty``) of a page's dates that give none
    #: (``type: html``); None: UTC.
    timezone: str | None = None


@dataclass(frozen=True)
class OutputConfig:
    """The ``output:`` section."""

    #: Absolute directory the published files go to.
    dir: Path
    #: Most entries per published feed.
    max_entries: int = 100
    #: Also write a JSON Feed 1.1 (``<slug>.json``) beside each Atom file.
    json_feed: bool = False


@dataclass(frozen=True)
class OutputSpec:
    """One entry of ``outputs:``: a feed an editor adds (or a default it replaces)."""

    #: File name without extension: ``[a-z0-9-]+``.
    slug: str
    title: str | None = None
    description: str | None = None
    #: Country codes and ``region``; an item needs one. Empty: every item about the region.
    labels: tuple[str, ...] = ()
    #: Item languages (``fr``...); empty: any.
    languages: tuple[str, ...] = ()
    #: Source names or URLs; empty: any.
    sources: tuple[str, ...] = ()
    #: Words or phrases; an item needs one of them (in its title or summary).
    include: tuple[str, ...] = ()
    #: Words or phrases; an item with any of them is left out.
    exclude: tuple[str, ...] = ()
    #: Most entries; None: ``output.max_entries``.
    max_entries: int | None = None


@dataclass(frozen=True)
class SiteConfig:
    """The ``site:`` section: how the published files are addressed."""

    #: Public URL of the output directory (ends with ``/``), or None.
    base_url: str | None = None
    #: Title prefix of every published feed.
    title: str = "Central Asia News"
    #: A WebSub hub: feeds name it, and it is pinged when a feed changes.
    hub: str | None = None


@dataclass(frozen=True)
class FetchConfig:
    """The ``fetch:`` section: how sources are polled."""

    #: Most requests in flight at once, all hosts together.
    concurrency: int = 8
    #: Most requests in flight at once to one host.
    per_host: int = 2
    #: Total seconds one request may take, connection to last byte.
    timeout: float = 30.0
    #: Largest accepted body, in bytes, after decompression.
    max_bytes: int = 10 * 1024 * 1024
    #: Contact URL or e-mail appended to the User-Agent, or None.
    contact: str | None = None
    #: Least seconds between the starts of two requests to the same host.
    host_delay: float = 1.0
    #: Allow sources (and redirects) on private, loopback or link-local
    #: addresses; off, a feed cannot make the worker probe its own network.
    allow_private: bool = False
    #: An HTTP proxy every request goes through (``http://proxy.lan:3128``),
    #: or None: requests go straight to the sources.
    proxy: str | None = None


@dataclass(frozen=True)
class ClassifyConfig:
    """The ``classify:`` section: an editor's changes to the gazetteer."""

    #: Label (``kz``... or ``region``) -> extra forms that count for it.
    add: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Label -> phrases in which its forms never count (a listed form is removed).
    exclude: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class PostgresURL:
    """A PostgreSQL store, as a libpq connection URI
    (``postgresql://user:password@host:port/database?options``)."""

    url: str

    def __str__(self) -> str:
        """The URI without its password, for logs and reports."""
        hidden = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", self.url)
        return re.sub(r"(password=)[^&]*", r"\1***", hidden)

    def __repr__(self) -> str:
        return f"PostgresURL({str(self)!r})"

    def in_schema(self, schema: str) -> PostgresURL:
        """The same database, its connections using ``schema`` (one database
        may hold several stores, one per schema)."""
        separator = "&" if "?" in self.url else "?"
        return PostgresURL(f"{self.url}{separator}options={quote(f'-csearch_path={schema}')}")


@dataclass(frozen=True)
class Config:
    """A loaded, validated ``feeds.yaml``; paths are absolute."""

    #: The configuration file itself.
    path: Path
    #: The SQLite database file, or a PostgreSQL database.
    storage: Path | PostgresURL
    output: OutputConfig
    site: SiteConfig
    fetch: FetchConfig
    #: Minutes between two fetches of a source, unless it asks for longer.
    interval_minutes: float
    sources: tuple[Source, ...]
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    #: Feeds an editor adds to the defaults (one per country, ``central-asia``).
    outputs: tuple[OutputSpec, ...] = ()
    #: Items older than this many days are pruned from the store and the feeds.
    retention_days: float = 30.0
    #: Bounds for the next fetch of a source (its max-age, ttl, backoff).
    min_interval_minutes: float = 5.0
    max_interval_minutes: float = 24 * 60.0


# --- fetch -----------------------------------------------------------------


@dataclass(frozen=True)
class Validators:
    """What the last successful fetch of a source told us, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None
    #: SHA-256 of the last body, to skip parsing an identical one.
    body_hash: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one HTTP fetch that did not fail."""

    #: The URL finally answered, after redirects.
    url: str
    #: The body, or None when the server said 304 or sent the same bytes again.
    body: bytes | None
    #: Response headers that matter to parsing (lower-case names).
    headers: dict[str, str] = field(default_factory=dict)
    #: Validators to store for the next conditional GET.
    validators: Validators = field(default_factory=Validators)
    #: Where the source moved, when it answered with permanent redirects (301, 308).
    moved_to: str | None = None
    #: Seconds the server says the answer stays fresh (Cache-Control: max-age).
    max_age: float | None = None

    @property
    def not_modified(self) -> bool:
        return self.body is None


# --- parse -----------------------------------------------------------------


@dataclass(frozen=True)
class FeedInfo:
    """What a feed says about itself, for attribution."""

    title: str | None = None
    #: The outlet's home page.
    link: str | None = None
    language: str | None = None
    #: Minutes the feed asks readers to wait between polls (RSS ``<ttl>``).
    ttl: float | None = None


@dataclass(frozen=True)
class Entry:
    """One item of a feed, normalized once."""

    #: The source's configured URL.
    source_url: str
    #: The item's identity within its source: its id, else its link, else a hash.
    guid: str
    #: Absolute link to the original article, or None.
    link: str | None
    #: Plain text, never empty.
    title: str
    #: Sanitized HTML, or None.
    summary: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    author: str | None = None
    categories: tuple[str, ...] = ()
    language: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    feed: FeedInfo
    entries: tuple[Entry, ...]
    #: Something the editor should know about the document (a page's items
    #: without a title, say), if anything.
    note: str | None = None


# --- classify --------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """One gazetteer term found in one field of an item."""

    #: Country code (``kz``...) or ``region``.
    label: str
    #: The gazetteer form that matched, as written in the gazetteer.
    term: str
    #: The text of the item that matched it, as written in the item.
    text: str
    #: ``title``, ``summary`` or ``categories``.
    field: str
    #: ``country``, ``demonym``, ``capital``, ``region``...
    kind: str
    points: float


@dataclass(frozen=True)
class Classification:
    """Which countries an item is about, and why."""

    #: Country codes, strongest first.
    countries: tuple[str, ...]
    #: True when the item is about Central Asia as a whole.
    regional: bool
    #: Score per label (countries and ``region``).
    scores: dict[str, float]
    matches: tuple[Match, ...]

    @property
    def primary(self) -> str | None:
        return self.countries[0] if self.countries else None

    @property
    def relevant(self) -> bool:
        """False means the item is dropped: not about the region."""
        return bool(self.countries) or self.regional

    @property
    def labels(self) -> tuple[str, ...]:
        """What the item is published under: its countries, then ``region``."""
        return self.countries + ((REGION,) if self.regional else ())


# --- reports ---------------------------------------------------------------


class Status(StrEnum):
    OK = "ok"
    NOT_MODIFIED = "not_modified"
    ERROR = "error"
    #: Not fetched: its next attempt is later (backoff, max-age, ttl).
    NOT_DUE = "not_due"
    #: Not fetched: it answered 410 Gone; remove it from feeds.yaml.
    GONE = "gone"


@dataclass(frozen=True)
class SourceReport:
    """What one refresh did with one source."""

    source: Source
    status: Status
    #: Items seen in the feed this time.
    entries: int = 0
    #: Items stored for the first time.
    new: int = 0
    #: Items already stored whose text changed.
    changed: int = 0
    #: New items kept (about the region).
    relevant: int = 0
    #: Seconds spent on this source.
    seconds: float = 0.0
    #: One-line reason, when status is ERROR (or why it was not fetched).
    error: str | None = None
    #: Something the editor should know: a permanent redirect, a 410.
    note: str | None = None


@dataclass(frozen=True)
class PublishReport:
    #: Paths written because their content changed.
    written: tuple[Path, ...]
    #: Paths left untouched because their content was the same.
    unchanged: tuple[Path, ...]
    #: Files published before and no longer (an output taken out of
    #: ``feeds.yaml``), deleted.
    removed: tuple[Path, ...] = ()


@dataclass(frozen=True)
class RunReport:
    sources: tuple[SourceReport, ...]
    publish: PublishReport
    seconds: float

    @property
    def failures(self) -> tuple[SourceReport, ...]:
        """The sources that failed this time."""
        return tuple(r for r in self.sources if r.status is Status.ERROR)

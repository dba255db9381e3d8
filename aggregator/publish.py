"""Write the published files from the store.

One Atom feed per output (a country, or ``central-asia`` for every item about
the region) and an ``index.html`` listing them. Output is a function of the
stored state: ``updated`` comes from the data, never from the clock (and never
goes back from the published file's, nor stays when an entry changed:
:func:`continued`), so the same state gives byte-identical files, and a
file whose bytes would not change is left untouched (its mtime stays, web
servers keep answering 304).
Every file is written to a temporary file in the same folder, fsynced and
renamed over the old one, so no reader ever sees half a file. Each feed is
validated against the RFC 4287 schema before it replaces the old one.
It does not fetch, classify or decide what is a duplicate.

Atom is built with lxml, not feedgen: feedgen 1.0 drops the ``rel`` and
``type`` of entry links (a shadowed variable in ``FeedEntry.atom_entry``),
cannot write ``atom:source`` or ``xml:lang`` on entries, and raises on a
control character; the document is small enough to write directly.
"""

from __future__ import annotations

import html
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

from lxml import etree

from . import __version__, site
from .classify import LABELS
from .classify.text import fold, term_tokens, tokens
from .dedupe import without_tracking
from .fetch import ping_hub
from .store import Store, StoredItem
from .types import COUNTRIES, REGION, Config, PublishReport, language_tag, without_credentials

log = logging.getLogger(__name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
#: Scheme of the country categories on published entries.
CATEGORY_SCHEME = "urn:central-asia-aggregator:country"
#: ``updated`` of a feed with no entries: fixed, so empty feeds are stable too.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GENERATOR_URI = "https://github.com/central-asia-aggregator"


@dataclass(frozen=True)
class Output:
    """One published feed, with its filters resolved."""

    slug: str
    title: str
    description: str
    #: Labels (country codes, ``region``) an item needs one of to be listed.
    labels: tuple[str, ...]
    max_entries: int
    #: Item languages (``en`` takes ``en-gb`` too, ``en-us`` only ``en-us``); empty: any.
    languages: tuple[str, ...] = ()
    #: Source URLs; empty: any.
    sources: tuple[str, ...] = ()
    #: Phrases an item needs one of, and phrases that leave it out (folded tokens).
    include: tuple[tuple[str, ...], ...] = ()
    exclude: tuple[tuple[str, ...], ...] = ()

    @property
    def filtered(self) -> bool:
        return bool(self.languages or self.sources or self.include or self.exclude)

    def accepts(self, item: StoredItem) -> bool:
        """True when an item passes the language, source and keyword filters."""
        if self.languages and not any(
            tag == language or tag.startswith(f"{language}-")
            for tag in (language_tag(item.language) or "",)
            for language in self.languages
        ):
            return False
        if self.sources and item.source_url not in self.sources:
            return False
        if self.include or self.exclude:
            words = tokens(fold(f"{item.title} {_text(item.summary)}").text)
            if self.include and not any(_contains(words, p) for p in self.include):
                return False
            if any(_contains(words, p) for p in self.exclude):
                return False
        return True


def outputs(config: Config) -> tuple[Output, ...]:
    """The default feeds (one per country, ``central-asia``), then the editor's
    ``outputs:``; an editor's output with a default's slug replaces it."""
    prefix, size = config.site.title, config.output.max_entries
    defaults = [
        Output(
            slug=LABELS[code].lower(),
            title=f"{prefix}: {LABELS[code]}",
            description=f"News about {LABELS[code]}, from the region's outlets.",
            labels=(code,),
            max_entries=size,
        )
        for code in COUNTRIES
    ]
    defaults.append(
        Output(
            slug="central-asia",
            title=f"{prefix}: all of Central Asia",
            description="Every item about Central Asia or one of its five countries.",
            labels=(*COUNTRIES, REGION),
            max_entries=size,
        )
    )
    by_slug = {o.slug: o for o in defaults}
    # By name or URL; unnamed sources of one host share its name, and it takes them all.
    urls: dict[str, list[str]] = {}
    for source in config.sources:
        urls.setdefault(source.name, []).append(source.url)
    for spec in config.outputs:
        labels = spec.labels or (*COUNTRIES, REGION)
        named = ", ".join(LABELS[label] for label in labels)
        by_slug[spec.slug] = Output(
            slug=spec.slug,
            title=spec.title or f"{prefix}: {spec.slug}",
            description=spec.description or f"News about {named}.",
            labels=labels,
            max_entries=spec.max_entries or size,
            languages=spec.languages,
            sources=tuple(url for name in spec.sources for url in urls.get(name, [name])),
            include=tuple(term_tokens(p) for p in spec.include),
            exclude=tuple(term_tokens(p) for p in spec.exclude),
        )
    return tuple(by_slug.values())


def _contains(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(words[i : i + size] == phrase for i in range(len(words) - size + 1))


def _text(markup: str | None) -> str:
    return html.unescape(re.sub(r"<[^>]*>", " ", markup or ""))


@dataclass(frozen=True)
class Story:
    """One published entry: a representative item and the other outlets' copies."""

    uid: str
    representative: StoredItem
    others: tuple[StoredItem, ...]
    #: The least ``updated``: the published entry's, or a second after it
    #: when the entry changed since (:func:`continued`).
    not_before: datetime = EPOCH

    @property
    def items(self) -> tuple[StoredItem, ...]:
        return (self.representative, *self.others)

    @property
    def labels(self) -> tuple[str, ...]:
        found = {c for item in self.items for c in item.countries}
        return tuple(c for c in COUNTRIES if c in found) + (
            (REGION,) if any(i.regional for i in self.items) else ()
        )

    @property
    def outlets(self) -> tuple[StoredItem, ...]:
        """The other outlets' reports an entry names: the first of each outlet
        other than the representative's (superseded versions come last:
        :func:`story_of`)."""
        first: dict[str, StoredItem] = {}
        for other in self.others:
            if other.source_url != self.representative.source_url:
                first.setdefault(other.source_url, other)
        return tuple(first.values())

    @property
    def updated(self) -> datetime:
        """When the entry last changed as readers see it: its representative's
        text, or another outlet joining. A copy from the representative's own
        outlet (under a tracking URL, say), or another report of an outlet
        already named, is not shown, so it does not make the entry look updated."""
        return max(
            (self.not_before, self.representative.changed, *(o.first_seen for o in self.outlets))
        )


#: Stories a filtered output looks through to fill its entries.
FILTERED_POOL = 5000


def stories(
    store: Store,
    output: Output,
    priorities: Mapping[str, int] | None = None,
    listed: Collection[str] | None = None,
) -> list[Story]:
    """The newest stories of an output, newest first.

    ``priorities`` maps source URLs to their ``priority:``; the highest
    represents a story, then the earliest report. In a filtered output (by
    language, source or keyword) the representative is chosen among the
    reports that pass the filters; a story with none is left out. With
    ``listed`` (the sources of ``feeds.yaml``, when the store holds others),
    the reports of other sources are left out: a source taken out of
    ``feeds.yaml`` leaves the feeds with its items.
    """
    pool = FILTERED_POOL if output.filtered or listed is not None else output.max_entries
    ids = store.story_ids(output.labels, pool)
    by_story: dict[int, list[StoredItem]] = {sid: [] for sid in ids}
    for item in store.items_of_stories(ids):
        if listed is None or item.source_url in listed:
            by_story[item.story_id].append(item)
    chosen = []
    for members in by_story.values():
        passing = [m for m in members if output.accepts(m)]
        if not passing:
            continue
        story = story_of(passing, priorities or {})
        others = tuple(m for m in members if m is not story.representative and m not in passing)
        chosen.append(replace(story, others=story.others + others))
        if len(chosen) == output.max_entries:
            break
    return chosen


def story_of(members: Sequence[StoredItem], priorities: Mapping[str, int]) -> Story:
    """The story told by ``members``, represented by the highest-priority
    source's item, then the earliest, then the first stored; an item that its
    outlet gave again (under a tracking URL, a new link, its headline fixed:
    :func:`superseded`) is represented by its last version."""
    gone = superseded(members)
    ordered = sorted(
        members, key=lambda i: (i.id in gone, -priorities.get(i.source_url, 0), i.date, i.id)
    )
    return Story(ordered[0].story_uid, ordered[0], tuple(ordered[1:]))


def superseded(members: Sequence[StoredItem]) -> set[int]:
    """The ids of the items that their own outlet gave again: the same article
    under a tracking URL (joined by URL), its text again (by fingerprint), or
    its headline fixed and its link with it (a near-copy,
    :data:`cluster.SAME_SOURCE_WINDOW`).

    Of the items of one source so linked, directly or through each other,
    one stands for the article: the last to change what readers see (its
    corrections, and its link with them), and not a later copy that differs
    by its link alone (:func:`_shown`). The others are superseded."""
    by_id = {item.id: item for item in members}
    group: dict[int, int] = {}  # item id: an item of its group, up to the group's root

    def root(item_id: int) -> int:
        while (parent := group.get(item_id, item_id)) != item_id:
            item_id = parent
        return item_id

    for item in members:
        earlier = by_id.get(item.joined_item) if item.joined_item is not None else None
        if earlier is not None and earlier.source_url == item.source_url:
            group[root(item.id)] = root(earlier.id)
    groups: dict[int, list[StoredItem]] = {}
    for item in members:
        groups.setdefault(root(item.id), []).append(item)
    gone: set[int] = set()
    for linked in groups.values():
        current, *later = sorted(linked, key=lambda i: (i.changed, i.id))
        for item in later:
            if _shown(item) != _shown(current):
                current = item
        gone.update(item.id for item in linked if item is not current)
    return gone


def _shown(item: StoredItem) -> tuple[object, ...]:
    """What readers see of an item in its entry, but its link: a later copy
    that differs by its link alone (a tracking, AMP, ``www.`` or ``http:``
    variant, another section of the site) is no better, and would only make
    the entry look updated."""
    return (item.title, item.summary, item.language, item.countries, item.regional)


def publish(store: Store, config: Config) -> PublishReport:
    """Write every output, the site around them, and ping the WebSub hub for
    the feeds that changed; return what was written or left alone."""
    out_dir = config.output.dir
    out_dir.mkdir(parents=True, exist_ok=True)
    _sweep_temp_files(out_dir)
    written: list[Path] = []
    unchanged: list[Path] = []

    def write(path: Path, data: bytes) -> bool:
        changed = write_atomic(path, data)
        (written if changed else unchanged).append(path)
        return changed

    listing: list[tuple[Output, list[Story]]] = []
    changed_feeds: list[str] = []
    priorities = source_priorities(config)
    listed = published_sources(store, config)
    for output in outputs(config):
        path = out_dir / f"{output.slug}.xml"
        before = published(path)
        chosen = continued(stories(store, output, priorities, listed), before)
        listing.append((output, chosen))
        data = atom_feed(output, chosen, config, not_before=before.updated)
        validate_atom(data)
        if write(path, data):
            changed_feeds.append(feed_url(config, output.slug) or "")
        if config.output.json_feed:
            write(out_dir / f"{output.slug}.json", site.json_feed(output, chosen, config))
    write(out_dir / "index.html", site.index_html(listing, config))
    write(out_dir / "feeds.opml", site.opml(listing, config))
    write(out_dir / site.STYLESHEET, site.stylesheet())
    if config.site.hub and config.site.base_url and changed_feeds:
        for problem in ping_hub(config.site.hub, changed_feeds, config.fetch):
            log.warning("WebSub hub %s: %s", config.site.hub, problem)
    return PublishReport(written=tuple(written), unchanged=tuple(unchanged))


def published_sources(store: Store, config: Config) -> frozenset[str] | None:
    """The sources whose items are published: those of ``feeds.yaml``, when
    the store also holds sources taken out of it; None when it holds no
    others (every stored item may be published)."""
    listed = frozenset(source.url for source in config.sources)
    if all(state.url in listed for state in store.sources()):
        return None
    return listed


def source_priorities(config: Config) -> dict[str, int]:
    return {source.url: source.priority for source in config.sources}


def feed_url(config: Config, slug: str) -> str | None:
    return f"{config.site.base_url}{slug}.xml" if config.site.base_url else None


@dataclass(frozen=True)
class Published:
    """What an Atom file of this module holds: its ``updated``, and each
    entry's ``updated`` and :func:`_shown_entry`, by id."""

    updated: datetime = EPOCH
    entries: Mapping[str, tuple[datetime, str]] = field(default_factory=dict)


def published(path: Path) -> Published:
    """The Atom file at ``path`` as :class:`Published`; empty when there is
    none (or it cannot be read: it is rewritten)."""
    try:
        root = etree.parse(str(path), _SAFE_PARSER).getroot()
    except (OSError, etree.XMLSyntaxError):
        return Published()
    entries = {}
    for entry in root.iterfind(_atom("entry")):
        uid, at = entry.findtext(_atom("id")), _instant(entry.findtext(_atom("updated")))
        if uid and at is not None:
            entries[uid] = (at, _shown_entry(entry))
    return Published(_instant(root.findtext(_atom("updated"))) or EPOCH, entries)


_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def _instant(text: str | None) -> datetime | None:
    """A time as :func:`site.rfc3339` writes it, or None."""
    try:
        return datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def continued(chosen: Sequence[Story], before: Published) -> list[Story]:
    """The stories, each ``updated`` never earlier than its published
    entry's, and later when the entry changed since. An entry can change
    while none of its reports did: another report represents it (the source
    of the one before was taken out of ``feeds.yaml``, an earlier report
    joined), an outlet leaves its "Also reported by". Readers that go by
    ``updated`` would keep the old text; a second after the published time
    tells them."""
    out = []
    for story in chosen:
        if (known := before.entries.get(story.uid)) is not None:
            at, shown = known
            if story.updated <= at:
                same = _shown_entry(_entry(story)) == shown
                story = replace(story, not_before=at if same else at + timedelta(seconds=1))
        out.append(story)
    return out


def _shown_entry(entry: etree._Element) -> str:
    """What an Atom entry element shows a reader, as one string: its
    language, title, link, countries and content, as for :attr:`Story.updated`.
    Not its author and ``<source>``: an outlet renamed, or its feed moved
    ("update feeds.yaml"), does not make every entry of it look updated."""
    shown = {_atom(tag) for tag in ("title", "link", "category", "content")}
    return repr(
        [sorted(entry.attrib.items())]
        + [
            (element.tag, sorted(element.attrib.items()), element.text)
            for element in entry
            if element.tag in shown
        ]
    )


def atom_feed(
    output: Output, chosen: Sequence[Story], config: Config, *, not_before: datetime = EPOCH
) -> bytes:
    """The Atom document of one output, deterministic for the same stories.

    Its ``updated`` is its newest entry's, or ``not_before`` (the published
    file's) if later: when the newest story leaves (reclassified, its source
    taken out of ``feeds.yaml``), the feed has still changed, and a feed's
    ``updated`` going backwards tells a reader it has not."""
    self_url = feed_url(config, output.slug)
    feed = etree.Element(_atom("feed"), nsmap={None: ATOM_NS})
    # Opened in a browser, the feed is shown as a page (see site.STYLESHEET).
    feed.addprevious(etree.PI("xml-stylesheet", f'type="text/xsl" href="{site.STYLESHEET}"'))
    _sub(feed, "id", self_url or _uuid_urn(f"feed:{config.site.title}:{output.slug}"))
    _sub(feed, "title", output.title)
    _sub(feed, "subtitle", output.description)
    _sub(feed, "updated", site.rfc3339(max((not_before, *(s.updated for s in chosen)))))
    _sub(_sub(feed, "author"), "name", config.site.title)
    _sub(feed, "generator", "central-asia-aggregator", uri=GENERATOR_URI, version=__version__)
    if self_url and config.site.base_url:
        _sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
        _sub(feed, "link", rel="alternate", type="text/html", href=config.site.base_url)
        if config.site.hub:
            _sub(feed, "link", rel="hub", href=config.site.hub)
    for story in chosen:
        feed.append(_entry(story))
    data: bytes = etree.tostring(
        feed.getroottree(), xml_declaration=True, encoding="UTF-8", pretty_print=True
    )
    return data


def _entry(story: Story) -> etree._Element:
    item = story.representative
    entry = etree.Element(_atom("entry"))
    if language := language_tag(item.language):  # stored before it was checked, maybe
        entry.set(XML_LANG, language)
    _sub(entry, "id", story.uid)
    _sub(entry, "title", item.title, type="text")
    _sub(entry, "updated", site.rfc3339(story.updated))
    _sub(entry, "published", site.rfc3339(item.date))
    _sub(_sub(entry, "author"), "name", item.source_name)
    if item.link:
        _sub(entry, "link", rel="alternate", type="text/html", href=without_tracking(item.link))
    for label in story.labels:
        _sub(entry, "category", term=label, label=LABELS[label], scheme=CATEGORY_SCHEME)
    _sub(entry, "content", entry_html(story), type="html")
    # Attribution (RFC 4287 4.2.11): the outlet's feed, as the outlet names it.
    source = _sub(entry, "source")
    # Without the user information httpx sends as credentials, if the URL has any.
    public = without_credentials(item.source_url)
    _sub(source, "id", public)
    _sub(source, "title", item.source_title or item.source_name)
    # RFC 4287 4.2.11 asks for the feed's id, title and updated: the feed as
    # this version of the item was copied from it (stable between refreshes).
    _sub(source, "updated", site.rfc3339(item.changed))
    if item.source_link:
        _sub(source, "link", rel="alternate", type="text/html", href=item.source_link)
    _sub(source, "link", rel="self", href=public)
    return entry


def _atom(tag: str) -> str:
    return f"{{{ATOM_NS}}}{tag}"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    """Append an Atom element; text and attributes lose XML-illegal characters."""
    element = etree.SubElement(parent, _atom(tag), {k: _xml_safe(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _xml_safe(text)
    return element


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub("", text)


def entry_html(story: Story) -> str:
    """The entry's HTML: the representative's summary, then the other outlets,
    each named once with its first link."""
    item = story.representative
    parts = [item.summary or f"<p>{html.escape(item.title)}</p>"]
    if story.outlets:
        links = []
        for other in story.outlets:
            name = html.escape(other.source_name)
            link = without_tracking(other.link) if other.link else None
            links.append(f'<a href="{html.escape(link)}">{name}</a>' if link else name)
        # The entry's xml:lang (language_tag: "ru_RU" stored before it was checked is "ru-ru").
        language = (language_tag(item.language) or "").partition("-")[0]
        label = ALSO_REPORTED.get(language, ALSO_REPORTED["en"])
        parts.append(f"<p>{label} {', '.join(links)}.</p>")
    return "\n".join(parts)


#: What introduces the other outlets' reports, in the entry's language
#: (English for the others).
ALSO_REPORTED: Mapping[str, str] = {
    "en": "Also reported by:",
    "fr": "Également rapporté par\u00a0:",
    "ru": "Также сообщают:",
}


@cache
def _atom_schema() -> etree.RelaxNG:
    data = resources.files(__package__).joinpath("data/atom.rng").read_bytes()
    return etree.RelaxNG(etree.fromstring(data))


def validate_atom(data: bytes) -> None:
    """Raise ValueError unless ``data`` is valid Atom 1.0 (RFC 4287 schema).

    A failure here is a bug in this module, not bad input: inputs are
    normalized before they are stored.
    """
    schema = _atom_schema()
    if not schema.validate(etree.fromstring(data)):
        raise ValueError(f"invalid Atom document: {schema.error_log.last_error}")


def write_atomic(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data`` atomically; return False if it already held them."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return True


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sweep_temp_files(folder: Path) -> None:
    """Remove temporary files left by a process killed mid-write."""
    for stale in folder.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def _uuid_urn(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, name).urn

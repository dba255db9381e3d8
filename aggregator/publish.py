"""Write the published files from the store alone.

One Atom feed per output (a country, or ``central-asia`` for every item about
the region) and an ``index.html`` listing them. Output is a function of the
stored state: ``updated`` comes from the data, never from the clock, so the
same state gives byte-identical files, and a file whose bytes would not
change is left untouched (its mtime stays, web servers keep answering 304).
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
import os
import re
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

from lxml import etree

from . import __version__
from .classify import LABELS
from .store import Store, StoredItem
from .types import COUNTRIES, REGION, Config, PublishReport

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
    """One published feed."""

    slug: str
    title: str
    #: Labels (country codes, ``region``) an item needs one of to be listed.
    labels: tuple[str, ...]
    description: str


def default_outputs(config: Config) -> tuple[Output, ...]:
    """One feed per country, then ``central-asia`` for everything about the region."""
    prefix = config.site.title
    outputs = [
        Output(
            slug=LABELS[code].lower(),
            title=f"{prefix}: {LABELS[code]}",
            labels=(code,),
            description=f"News about {LABELS[code]}, from the region's outlets.",
        )
        for code in COUNTRIES
    ]
    outputs.append(
        Output(
            slug="central-asia",
            title=f"{prefix}: all of Central Asia",
            labels=(*COUNTRIES, REGION),
            description="Every item about Central Asia or one of its five countries.",
        )
    )
    return tuple(outputs)


@dataclass(frozen=True)
class Story:
    """One published entry: a representative item and the other outlets' copies."""

    uid: str
    representative: StoredItem
    others: tuple[StoredItem, ...]

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
    def updated(self) -> datetime:
        return max(item.changed for item in self.items)


def stories(
    store: Store, output: Output, limit: int, priorities: Mapping[str, int] | None = None
) -> list[Story]:
    """The newest stories of an output, newest first.

    ``priorities`` maps source URLs to their ``priority:``; the highest
    represents a story, then the earliest report.
    """
    ids = store.story_ids(output.labels, limit)
    by_story: dict[int, list[StoredItem]] = {sid: [] for sid in ids}
    for item in store.items_of_stories(ids):
        by_story[item.story_id].append(item)
    return [story_of(members, priorities or {}) for members in by_story.values() if members]


def story_of(members: Sequence[StoredItem], priorities: Mapping[str, int]) -> Story:
    """The story told by ``members``, represented by the highest-priority
    source's item, then the earliest, then the first stored."""
    ordered = sorted(members, key=lambda i: (-priorities.get(i.source_url, 0), i.date, i.id))
    return Story(ordered[0].story_uid, ordered[0], tuple(ordered[1:]))


def publish(store: Store, config: Config) -> PublishReport:
    """Write every output and the index; return what was written or left alone."""
    out_dir = config.output.dir
    out_dir.mkdir(parents=True, exist_ok=True)
    _sweep_temp_files(out_dir)
    written: list[Path] = []
    unchanged: list[Path] = []
    listing: list[tuple[Output, list[Story]]] = []
    priorities = source_priorities(config)
    for output in default_outputs(config):
        chosen = stories(store, output, config.output.max_entries, priorities)
        listing.append((output, chosen))
        path = out_dir / f"{output.slug}.xml"
        data = atom_feed(output, chosen, config)
        validate_atom(data)
        (written if write_atomic(path, data) else unchanged).append(path)
    index = out_dir / "index.html"
    (written if write_atomic(index, index_html(listing, config)) else unchanged).append(index)
    return PublishReport(written=tuple(written), unchanged=tuple(unchanged))


def source_priorities(config: Config) -> dict[str, int]:
    return {source.url: source.priority for source in config.sources}


def feed_url(config: Config, slug: str) -> str | None:
    return f"{config.site.base_url}{slug}.xml" if config.site.base_url else None


def atom_feed(output: Output, chosen: Sequence[Story], config: Config) -> bytes:
    """The Atom document of one output, deterministic for the same stories."""
    self_url = feed_url(config, output.slug)
    feed = etree.Element(_atom("feed"), nsmap={None: ATOM_NS})
    _sub(feed, "id", self_url or _uuid_urn(f"feed:{config.site.title}:{output.slug}"))
    _sub(feed, "title", output.title)
    _sub(feed, "subtitle", output.description)
    _sub(feed, "updated", _rfc3339(max((s.updated for s in chosen), default=EPOCH)))
    _sub(_sub(feed, "author"), "name", config.site.title)
    _sub(feed, "generator", "central-asia-aggregator", uri=GENERATOR_URI, version=__version__)
    if self_url and config.site.base_url:
        _sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
        _sub(feed, "link", rel="alternate", type="text/html", href=config.site.base_url)
    for story in chosen:
        feed.append(_entry(story))
    data: bytes = etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data


def _entry(story: Story) -> etree._Element:
    item = story.representative
    entry = etree.Element(_atom("entry"))
    if item.language:
        entry.set(XML_LANG, item.language)
    _sub(entry, "id", story.uid)
    _sub(entry, "title", item.title, type="text")
    _sub(entry, "updated", _rfc3339(story.updated))
    _sub(entry, "published", _rfc3339(item.published or item.date))
    _sub(_sub(entry, "author"), "name", item.source_name)
    if item.link:
        _sub(entry, "link", rel="alternate", type="text/html", href=item.link)
    for label in story.labels:
        _sub(entry, "category", term=label, label=LABELS[label], scheme=CATEGORY_SCHEME)
    _sub(entry, "content", entry_html(story), type="html")
    # Attribution (RFC 4287 4.2.11): the outlet's feed, as the outlet names it.
    source = _sub(entry, "source")
    _sub(source, "id", item.source_url)
    _sub(source, "title", item.source_title or item.source_name)
    if item.source_link:
        _sub(source, "link", rel="alternate", type="text/html", href=item.source_link)
    _sub(source, "link", rel="self", href=item.source_url)
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


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_html(story: Story) -> str:
    """The entry's HTML: the representative's summary, then the other outlets,
    each named once with its first link."""
    item = story.representative
    parts = [item.summary or f"<p>{html.escape(item.title)}</p>"]
    outlets: dict[str, StoredItem] = {}
    for other in story.others:
        if other.source_url != item.source_url:
            outlets.setdefault(other.source_url, other)
    if outlets:
        links = []
        for other in outlets.values():
            name = html.escape(other.source_name)
            links.append(f'<a href="{html.escape(other.link)}">{name}</a>' if other.link else name)
        parts.append(f"<p>Also reported by: {', '.join(links)}.</p>")
    return "\n".join(parts)


def index_html(listing: Sequence[tuple[Output, Sequence[Story]]], config: Config) -> bytes:
    """A small page listing every feed, with autodiscovery links and latest headlines."""
    title = html.escape(config.site.title)
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
    ]
    body = [f"<h1>{title}</h1>", "<p>Curated news feeds about Central Asia.</p>"]
    for output, chosen in listing:
        href = html.escape(f"{output.slug}.xml")
        name = html.escape(output.title)
        head.append(
            f'<link rel="alternate" type="application/atom+xml" title="{name}" href="{href}">'
        )
        body.append(f'<h2><a href="{href}">{name}</a></h2>')
        body.append(f"<p>{html.escape(output.description)}</p><ul>")
        for story in list(chosen)[:5]:
            item = story.representative
            text = html.escape(item.title)
            link = f'<a href="{html.escape(item.link)}">{text}</a>' if item.link else text
            body.append(f"<li>{link} <small>({html.escape(item.source_name)})</small></li>")
        body.append("</ul>")
    page = [*head, "</head><body>", *body, "</body></html>", ""]
    return "\n".join(page).encode("utf-8")


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

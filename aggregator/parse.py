"""Turn a fetched body into typed entries: the only module that uses feedparser.

Well-formed RSS 2.0 and Atom 1.0 are read by a fast lxml path
(:mod:`.fastparse`); everything else goes to feedparser. Both give the same
dictionary shape, converted here once.

Normalizes once, at the boundary: UTC datetimes, plain-text titles, HTML
sanitized with nh3 (feedparser's own sanitizer is slower and leaves
``javascript:`` links), absolute http(s) links only, control characters
removed, ids falling back to the link, then to a hash of the text.

Before feedparser sees a document, a DTD that declares entities is removed
(feedparser's fallback parser expands internal entities, so a small "billion
laughs" document could take gigabytes). Documents in UTF-16/32 are re-encoded
first so the declaration cannot hide. It does not fetch, store or classify.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import io
import re
import threading
import time
import xml.sax
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import nh3

from .errors import ParseError
from .fastparse import parse_fast
from .types import Entry, FeedInfo, FetchResult, ParsedFeed, language_tag, without_credentials

#: Control characters, and the bidirectional embeddings, overrides and isolates
#: (an unbalanced U+202E draws the rest of a reader's list backwards: spoofing).
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff\ud800-\udfff]"
)
_SPACE = re.compile(r"\s+")
_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*(\[.*?\]\s*)?>", re.DOTALL | re.IGNORECASE)
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
#: How "<" (or "<?") starts a document in each wide encoding without a BOM.
_WIDE_STARTS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)
_XML_DECLARATION = re.compile(r"\s*<\?xml")
_XML_DECLARATION_ENCODING = re.compile(r"(<\?xml[^>]*encoding=[\"'])[^\"']*([\"'])")
_XML_ENCODING = re.compile(rb"^(<\?xml[^>]*encoding=)([\"'])[^\"']*\2", re.IGNORECASE)

#: Links and images may only point to these schemes.
URL_SCHEMES = {"http", "https", "mailto"}


def parse(source_url: str, result: FetchResult, language: str | None = None) -> ParsedFeed:
    """Parse a fetched feed body into entries.

    Args:
        source_url: the configured URL of the source (the entries' owner).
        result: a fetch result with a body.
        language: the source's configured language, used when the feed has none.
    Raises:
        ParseError: the body is not a feed, or declares XML entities that
        cannot be safely removed.
    """
    if result.body is None:
        raise ValueError("parse() needs a body")
    if not result.body.strip():
        raise ParseError(source_url, "an empty body, not a feed")
    body = defuse(source_url, result.body)
    headers = dict(result.headers)
    body, headers = fix_cyrillic_encoding(body, headers)
    # Relative links resolve against where the body came from, without the
    # credentials of a source behind HTTP Basic authentication (never published).
    base = without_credentials(result.url)
    fast = parse_fast(body, headers)
    if fast is not None:
        feed, raws = fast["feed"], fast["entries"]
    else:
        feed, raws = _feedparser(source_url, body, headers, base)
    info = FeedInfo(
        title=_text(feed.get("title")),
        link=_http_url(feed.get("link"), base),
        language=_language(feed.get("language")) or language,
        ttl=_minutes(feed.get("ttl")),
    )
    entries = []
    for raw in raws:
        entry = _entry(source_url, raw, base, info.language)
        if entry is not None:
            entries.append(entry)
    return ParsedFeed(feed=info, entries=tuple(entries))


def _feedparser(
    source_url: str, body: bytes, headers: dict[str, str], url: str
) -> tuple[Any, list[Any]]:
    """The universal path: feedparser, for whatever the fast path declines
    (imported on first use: most feeds never need it)."""
    import feedparser

    headers = {**headers, "content-location": headers.get("content-location", url)}
    try:
        parsed = feedparser.parse(
            io.BytesIO(body),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,  # done by nh3, against each article's link
        )
    except Exception as e:  # feedparser's own failure on a hostile body (&#xD800;)
        raise ParseError(
            source_url, f"not a feed: the parser failed ({type(e).__name__}: {e})"
        ) from e
    if not parsed.get("version") and not parsed.get("entries"):
        problem = parsed.get("bozo_exception") or "no RSS or Atom content found"
        looks_html = b"<html" in body[:2048].lower()
        reason = "an HTML page, not a feed" if looks_html else f"not a feed ({problem})"
        raise ParseError(source_url, reason)
    if isinstance(parsed.get("bozo_exception"), xml.sax.SAXException) and not parsed.entries:
        # Ill-formed and nothing recovered: say so rather than "0 items".
        raise ParseError(source_url, f"not a feed: malformed XML ({parsed.get('bozo_exception')})")
    return parsed.feed, list(parsed.entries)


def defuse(source_url: str, body: bytes) -> bytes:
    """Remove a DTD that declares entities, so no parser can expand them.

    UTF-16 and UTF-32 documents, with or without a byte order mark, are
    re-encoded as UTF-8 first, so a declaration cannot hide from the byte search.

    Raises:
        ParseError: an entity declaration remains after removing the DTD.
    """
    encoding, skip = _wide_encoding(body)
    if encoding:
        try:
            text = body[skip:].decode(encoding)
        except UnicodeDecodeError as e:
            raise ParseError(source_url, f"invalid {encoding} text") from e
        body = _XML_ENCODING.sub(rb"\1\2utf-8\2", text.encode("utf-8"))
    if not _ENTITY_DECL.search(body):
        return body
    body = _DOCTYPE.sub(b"", body, count=1)
    if _ENTITY_DECL.search(body):
        raise ParseError(source_url, "declares XML entities outside a removable DTD; refused")
    return body


def fix_cyrillic_encoding(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """Re-encode as UTF-8 a Russian feed in windows-1251 or KOI8-R that declares
    no encoding or a wrong one (feedparser would show it as Latin-1 gibberish).

    A body that is UTF-8 but for a few stray bytes is UTF-8, the stray bytes
    replaced (:func:`mostly_utf8`). Only bodies that are not mostly UTF-8
    and whose non-ASCII bytes mostly form whole words are considered (French
    accents are single bytes between ASCII letters); windows-1251 and KOI8-R
    are told apart by where their lowercase letters lie. A correct
    declaration is left to feedparser.
    """
    try:
        body.decode("utf-8")
        return body, headers
    except UnicodeDecodeError:
        pass
    if (repaired := mostly_utf8(body)) is not None:
        if _XML_DECLARATION.match(repaired):
            repaired = _XML_DECLARATION_ENCODING.sub(r"\1utf-8\2", repaired, count=1)
        fixed = dict(headers)
        fixed["content-type"] = "application/xml; charset=utf-8"
        return repaired.encode("utf-8"), fixed
    guess = _sniff_cyrillic(body)
    if guess is None or _declared_encoding(body, headers) == guess:
        return body, headers
    text = body.decode(guess, errors="replace")
    if _XML_DECLARATION.match(text):
        text = _XML_DECLARATION_ENCODING.sub(r"\1utf-8\2", text, count=1)
    fixed = dict(headers)
    fixed["content-type"] = "application/xml; charset=utf-8"
    return text.encode("utf-8"), fixed


def mostly_utf8(body: bytes) -> str | None:
    """The text of a UTF-8 document with a few stray bytes (a windows-1252
    dash pasted into one summary), each replaced by U+FFFD; None when the
    bytes are not mostly UTF-8. Guessing another encoding for the whole
    document would garble every other item: read as KOI8-R, UTF-8 Cyrillic
    looks like Russian words, and read as windows-1252, "é" becomes "Ã©"."""
    text = body.decode("utf-8", errors="replace")
    stray = text.count("\ufffd")
    decoded = sum(not character.isascii() for character in text) - stray
    return text if decoded >= STRAY_BYTES_RATIO * stray else None


#: :func:`mostly_utf8`: characters decoded as UTF-8 beyond ASCII per stray byte.
STRAY_BYTES_RATIO = 10


def _sniff_cyrillic(body: bytes) -> str | None:
    """windows-1251, koi8-r, or None when the bytes do not look like Russian words."""
    high = in_words = run = 0
    for byte in body:
        if byte >= 0x80:
            high += 1
            run += 1
            if run == 3:
                in_words += 3
            elif run > 3:
                in_words += 1
        else:
            run = 0
    if high < 16 or in_words < high / 2:
        return None
    cp1251_lower = sum(1 for byte in body if byte >= 0xE0)  # а..я in windows-1251
    koi8_lower = sum(1 for byte in body if 0xC0 <= byte < 0xE0)  # а..я in KOI8-R
    return "windows-1251" if cp1251_lower >= koi8_lower else "koi8-r"


_CODECS = {"cp1251": "windows-1251", "windows-1251": "windows-1251", "koi8-r": "koi8-r",
           "koi8_r": "koi8-r"}  # fmt: skip


def _declared_encoding(body: bytes, headers: dict[str, str]) -> str | None:
    """The encoding the HTTP header or the XML declaration claims, normalized."""
    declared = None
    if match := re.search(r"charset=[\"']?([\w.:-]+)", headers.get("content-type", ""), re.I):
        declared = match.group(1)
    elif found := re.match(rb"<\?xml[^>]*encoding=[\"']([\w.:-]+)", body.lstrip()[:200]):
        declared = found.group(1).decode("ascii")
    if declared is None:
        return None
    return _CODECS.get(declared.lower(), declared.lower())


def _wide_encoding(body: bytes) -> tuple[str | None, int]:
    """The UTF-16/32 encoding of a document (by BOM, else by the NUL bytes
    around its first ``<``) and the length of its BOM; (None, 0) otherwise."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return encoding, len(bom)
    for pattern, encoding in _WIDE_STARTS:
        if body.startswith(pattern):
            return encoding, 0
    return None, 0


def _entry(source_url: str, raw: Any, base: str, feed_language: str | None) -> Entry | None:
    link = _http_url(raw.get("link"), base)
    # The outlet's own summary, not its full text: entries link to the article,
    # and agency copies repeat the summary, so fingerprints can match. Relative
    # links in it are relative to the article.
    article = link or base
    summary = _summary(raw, article)
    title = _text(raw.get("title"))
    if not title and summary:
        title = _shorten(_text(summary) or "")
    if not title:
        return None  # nothing a reader could recognise
    title = _shorten(title, TITLE_LIMIT)
    guid = _clean(raw.get("id")) or link or _hash(title, summary)
    detail = raw.get("title_detail") or {}
    # dict.get: FeedParserDict.get would fall back to published_parsed (with a
    # DeprecationWarning) when the entry has no updated date of its own.
    updated = _datetime(dict.get(raw, "updated_parsed"))
    return Entry(
        source_url=source_url,
        guid=guid,
        link=link,
        title=title,
        summary=summary,
        # An Atom entry need not give <published>: its <updated> dates it then
        # (else weeks-old news would be dated as of the first fetch).
        published=_datetime(raw.get("published_parsed")) or updated,
        updated=updated,
        author=_clean(raw.get("author")),
        categories=tuple(
            dict.fromkeys(
                c for t in raw.get("tags", ()) if (c := _clean(t.get("term") or t.get("label")))
            )
        ),
        language=_language(detail.get("language")) or feed_language,
    )


def _summary(raw: Any, base: str) -> str | None:
    """The entry's summary as sanitized HTML, else its first content's.

    A text the feed declares plain (Atom's default ``type="text"``) is
    escaped, its blank lines made paragraphs and its line breaks kept: its
    ``<`` and ``&`` are characters, not markup. Unless it holds HTML tags:
    then the feed mislabelled its HTML, and it is read as HTML (as feed
    readers do).
    """
    # dict.get: FeedParserDict.get("summary") falls back to the content, as
    # plain as it may be; "summary_detail" is there only for a summary element.
    detail = dict.get(raw, "summary_detail")
    if detail and (summary := _html_of(detail.get("value"), detail.get("type"), base)):
        return summary
    for content in raw.get("content") or ():
        if text := _html_of(content.get("value"), content.get("type"), base):
            return text
    return None


def _html_of(value: object, kind: str | None, base: str) -> str | None:
    """:func:`_html` of a text construct of media type ``kind``."""
    if kind == "text/plain" and isinstance(value, str) and not _LOOKS_LIKE_HTML.search(value):
        return _html(plain_html(value), base)
    return _html(value, base)


#: A closing tag, or a line break, image or paragraph tag: HTML, whatever the
#: feed declares (feedparser guesses the same way for RSS).
_LOOKS_LIKE_HTML = re.compile(r"</[a-zA-Z][a-zA-Z0-9]*\s*>|<(?:br|img|p|hr)\b[^>]*>", re.IGNORECASE)


def plain_html(text: str) -> str:
    """Plain text as HTML: escaped, a paragraph per run of blank lines, line
    breaks kept within a paragraph."""
    paragraphs = (p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")))
    return "".join(
        f"<p>{html.escape(p, quote=False).replace(chr(10), '<br>')}</p>" for p in paragraphs if p
    )


def _clean(value: object) -> str | None:
    """Plain string without control characters and runs of spaces, or None."""
    if not isinstance(value, str):
        return None
    if value.isprintable() and "  " not in value:
        # The usual case, checked in C: printable text has no control
        # characters and no whitespace but single ASCII spaces.
        return value.strip() or None
    text = _SPACE.sub(" ", _CONTROL.sub("", value)).strip()
    return text or None


def _text(value: object) -> str | None:
    """Plain text from a field that may hold HTML: tags are removed whatever
    type the feed declares, since many readers render titles as HTML anyway
    (and scripts and styles with their content)."""
    text = _clean(value)
    if text is None:
        return None
    if "<" in text or "&" in text:
        text = html.unescape(nh3.clean(text, tags=set()))
    return _clean(text)


def _html(value: object, base: str) -> str | None:
    """Sanitized HTML with absolute links, or None when nothing visible remains."""
    if not isinstance(value, str):
        return None
    _BASE.url = base
    cleaned = _SANITIZER.clean(_CONTROL.sub("", value)).strip()
    if "&#" in value:  # again: the sanitizer decodes character references ("&#x202E;")
        cleaned = _CONTROL.sub("", cleaned)
    if len(cleaned) < _SHORT_HTML and not _visible(cleaned):
        return None  # "<p>&nbsp;</p>", an emptied link: the title stands in
    return cleaned or None


#: HTML shorter than this is checked for visible content (longer HTML has some).
_SHORT_HTML = 512
_TAG = re.compile(r"<(?!img\b|video\b|audio\b|iframe\b)[^>]*>")


def _visible(markup: str) -> bool:
    """True when sanitized HTML shows something: text or an image."""
    return bool(html.unescape(_TAG.sub("", markup)).strip())


#: The URL relative links are resolved against, per thread: parsing runs in
#: several threads of a refresh, and the sanitizer is built once for all.
_BASE = threading.local()


def _absolute_here(tag: str, attribute: str, value: str) -> str | None:
    return _absolute(_BASE.url, tag, attribute, value)


_SANITIZER = nh3.Cleaner(
    url_schemes=URL_SCHEMES,
    link_rel="noopener noreferrer nofollow",
    attribute_filter=_absolute_here,
)


def _absolute(base: str, tag: str, attribute: str, value: str) -> str | None:
    """nh3 attribute filter: URLs made absolute against ``base``; others kept."""
    if attribute not in ("href", "src", "cite"):
        return value
    value = value.strip()
    if _PLAIN_URL.fullmatch(value):
        return value  # what urljoin would give back, with an allowed scheme
    url = urljoin(base, value)
    return _encoded(url) if urlsplit(url).scheme in URL_SCHEMES else None


#: Characters that a URL (an IRI, in Atom) cannot hold as they are, though
#: pages and feeds write them: spaces, quotes, angle brackets...
_UNSAFE_IN_URL = re.compile(r'[\s"<>\\^`{|}]')


def _encoded(url: str) -> str:
    """``url`` with the characters it cannot hold percent-encoded (non-ASCII
    letters are kept: an IRI may hold them)."""
    return _UNSAFE_IN_URL.sub(lambda m: quote(m.group(), safe=""), url)


#: An absolute http(s) URL with a plain host and path, and no query,
#: fragment or parameters: ``urljoin`` gives it back unchanged whatever the
#: base, and it has a scheme and a host name. Most links are such; the check
#: costs a tenth of ``urljoin``.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~!$&'()*+,=:@%/-]*)?")


def _http_url(value: object, base: str) -> str | None:
    text = _clean(value)
    if text is None:
        return None
    if _PLAIN_URL.fullmatch(text):
        return text
    url = urljoin(base, text)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return _encoded(url)


def _datetime(value: object) -> datetime | None:
    """feedparser's UTC struct_time (or the fast path's datetime) as an aware datetime."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _minutes(value: object) -> float | None:
    """A positive number of minutes (RSS ``<ttl>``), or None."""
    try:
        minutes = float(str(value).strip())
    except ValueError:
        return None
    return minutes if 0 < minutes < 1e6 else None


def _language(value: object) -> str | None:
    return language_tag(_clean(value))


#: Characters of a title kept: a feed that puts a whole article (or 64 kB)
#: in a title would fill a reader's list with it.
TITLE_LIMIT = 300


def _shorten(text: str, limit: int = 100) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters and "…"."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


#: How the ids made of an entry's title and summary (no guid, no link) begin.
HASHED_ID = "sha1:"


def _hash(*parts: str | None) -> str:
    digest = hashlib.sha1("\n".join(p or "" for p in parts).encode()).hexdigest()
    return f"{HASHED_ID}{digest}"

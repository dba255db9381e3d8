"""HTML pages without a feed -> entries, found by an editor's CSS selectors.

The counterpart of ``parse.py`` for ``type: html`` sources: the same Entry
records (plain-text titles, summaries sanitized by ``parse._html``, absolute
http(s) links, aware UTC dates, ids falling back to the link, then to a hash
of the title). Dates are read from a ``datetime`` attribute or from the text,
in English, French or Russian (``parse_date``).

It does not fetch anything (not even the page's resources), run scripts,
store or classify.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

import soupsieve
from bs4 import BeautifulSoup, Tag

from .config import deprecated_selectors_allowed, selector_problem
from .dedupe import link_id
from .errors import ParseError
from .parse import (
    TITLE_LIMIT,
    _clean,
    _hash,
    _html,
    _http_url,
    _language,
    _shorten,
    _sniff_cyrillic,
    mostly_utf8,
)
from .types import Entry, FeedInfo, FetchResult, ParsedFeed, Selectors, without_credentials

#: Dates later than this after ``now`` are a misread (or a scheduled event): dropped.
FUTURE_SLACK = timedelta(days=1)

_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]+charset", re.IGNORECASE)
_LOOKS_LIKE_HTML = re.compile(rb"<[^ +]html", re.IGNORECASE)  # bs4's own test


def scrape(
    source_url: str,
    result: FetchResult,
    selectors: Selectors,
    language: str | None = None,
    *,
    now: datetime | None = None,
    zone: tzinfo = UTC,
) -> ParsedFeed:
    """Find the items of an HTML page and turn them into entries.

    Args:
        source_url: the configured URL of the source (the entries' owner).
        result: a fetch result with a body; relative links resolve against its URL.
        selectors: where the items and their fields are.
        language: the source's configured language; else the page's ``<html lang>``.
        now: the clock, for relative and future dates; default: the current time.
        zone: the time zone of the page's dates that do not give one.
    Returns:
        The page's title, URL and language, and one entry per item that has a
        title, in page order; an item with the same guid as an earlier one (the
        same link, or no link and the same title) is left out. Its note counts
        the items left out for want of a title.
    Raises:
        ParseError: the body is not an HTML page, a selector is invalid, no
        element matches the item selector, or no item has a title.
    """
    if result.body is None:
        raise ValueError("scrape() needs a body")
    now = now or datetime.now(UTC)
    soup = _soup(source_url, result.body, result.headers)
    items = _select(source_url, soup, selectors.item)
    if not items:
        raise ParseError(source_url, f"no item matches the selector {selectors.item!r}")
    root = soup.find("html")
    page_language = _language(root.get("lang")) if isinstance(root, Tag) else None
    # The page's address, without the credentials of a page behind HTTP Basic
    # authentication (never published).
    page = without_credentials(result.url)
    info = FeedInfo(
        title=_clean(soup.title.get_text()) if soup.title else None,
        link=page,
        language=language or page_language,
    )
    # Links are relative to the page's <base href>, if it has one.
    base = page
    if isinstance(tag := soup.find("base", href=True), Tag) and isinstance(tag["href"], str):
        base = _http_url(tag["href"], page) or base
    entries: dict[str, Entry] = {}
    linked = dated = 0  # items in which the link and date selectors found an element
    untitled = 0
    for item in items:
        found = _entry(source_url, item, selectors, base, page, info.language, now, zone)
        if found is None:
            untitled += 1
        else:
            entry, has_link, has_date = found
            entries.setdefault(entry.guid, entry)
            linked += has_link
            dated += has_date
    if not entries:
        raise ParseError(
            source_url,
            f"{len(items)} items match {selectors.item!r}, "
            f"but none has a title matching {selectors.title!r}",
        )
    # A selector that finds nothing in any item: the page changed. Its items
    # would be stored without their links, or dated as of today (and old ones
    # published as news): the source fails, and says why.
    for name, selector, count in (
        ("link", selectors.link, linked),
        ("date", selectors.date, dated),
    ):
        if selector is not None and not count:
            raise ParseError(
                source_url,
                f"the {name} selector {selector!r} finds nothing in any of the"
                f" {len(entries)} items: check it (the page may have changed)",
            )
    # Items without a title are left out: say so, the title selector may need
    # widening (or the item selector narrowing: a sponsored block, say).
    note = (
        f"{untitled} of {len(items)} items matching {selectors.item!r} have no title"
        f" matching {selectors.title!r}: left out (if they are not news, narrow the"
        " item selector)"
        if untitled
        else None
    )
    return ParsedFeed(feed=info, entries=tuple(entries.values()), note=note)


def _soup(source_url: str, body: bytes, headers: dict[str, str]) -> BeautifulSoup:
    """The parsed page. Refuses what is not HTML (which is also what would make
    BeautifulSoup warn: a feed, or a bare URL)."""
    if b"<" not in body:
        raise ParseError(source_url, "not an HTML page")
    head = body[:500]
    if head.startswith(b"<?xml") and not _LOOKS_LIKE_HTML.search(head):
        raise ParseError(source_url, "an XML document (a feed?), not an HTML page")
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            # UTF-8 but for a few stray bytes: those replaced, not another
            # encoding guessed for the whole page (as for feeds).
            if (text := mostly_utf8(body)) is not None:
                body = text.encode("utf-8")
    soup = BeautifulSoup(body, "lxml", from_encoding=_encoding(body, headers))
    for fallback in soup.find_all("noscript"):  # "enable JavaScript" notes, not content
        fallback.decompose()
    return soup


def _encoding(body: bytes, headers: dict[str, str]) -> str | None:
    """The encoding to decode with: the Content-Type charset when Python knows
    it; else None when the page has a ``<meta charset>`` (BeautifulSoup reads
    it); else windows-1252, except for undeclared Russian text in windows-1251
    or KOI8-R, which guessing often takes for Latin-1, and UTF-8.

    A declaration the bytes contradict gives way, as for feeds
    (:func:`~aggregator.parse.fix_cyrillic_encoding`): a page in windows-1251
    or KOI8-R served as ISO-8859-1 or UTF-8 (its titles were gibberish, and
    dropped as not about the region), or valid UTF-8 served as anything else.
    """
    declared = None
    if match := _CHARSET.search(headers.get("content-type", "")):
        try:
            declared = codecs.lookup(match.group(1)).name
        except LookupError:
            pass
    if not body.isascii():
        try:
            body.decode("utf-8")
            return "utf-8"  # non-ASCII text that is valid UTF-8 is UTF-8
        except UnicodeDecodeError:
            if (guess := _sniff_cyrillic(body)) is not None:
                return guess
    if declared is not None:
        return declared
    if _META_CHARSET.search(body[:4096]):
        return None  # BeautifulSoup reads it
    # Neither UTF-8 nor Russian, and undeclared: windows-1252, the web's
    # default for such pages (a superset of Latin-1 French); BeautifulSoup's
    # own guess depends on which detector happens to be installed.
    return "utf-8" if body.isascii() else "windows-1252"


def _select(source_url: str, tag: Tag, selector: str) -> list[Tag]:
    try:
        with deprecated_selectors_allowed():
            return list(tag.select(selector))
    except (soupsieve.SelectorSyntaxError, NotImplementedError) as e:
        problem = selector_problem(e)
        raise ParseError(source_url, f"invalid CSS selector {selector!r}: {problem}") from e


def _select_one(source_url: str, tag: Tag, selector: str | None) -> Tag | None:
    if selector is None:
        return None
    found = _select(source_url, tag, selector)
    return found[0] if found else None


def _entry(
    source_url: str,
    item: Tag,
    selectors: Selectors,
    base: str,
    page: str,
    language: str | None,
    now: datetime,
    zone: tzinfo,
) -> tuple[Entry, bool, bool] | None:
    """The entry of one item, and whether its link and date selectors found
    an element; None when it has no title."""
    title_tag = _select_one(source_url, item, selectors.title)
    # Words in nested elements (<span>, <br>) stay apart; a title that is an
    # image is its alt text.
    title = _clean(" ".join(title_tag.get_text(" ").split())) if title_tag else None
    if not title and title_tag is not None:
        image = title_tag if title_tag.name == "img" else title_tag.find("img", alt=True)
        alt = image.get("alt") if isinstance(image, Tag) else None
        title = _clean(alt) if isinstance(alt, str) else None
    if not title:
        return None
    title = _shorten(title, TITLE_LIMIT)
    chosen = _select_one(source_url, item, selectors.link)
    link = _link(chosen, item, base, page) if chosen or not selectors.link else None
    summary_tag = _select_one(source_url, item, selectors.summary)
    # Relative links in a summary are relative to the article, as in parse.py.
    summary = _html(summary_tag.decode_contents(), link or base) if summary_tag else None
    date_tag = _select_one(source_url, item, selectors.date)
    published = _date(date_tag, now, zone)
    # The same article under other tracking parameters or another anchor is the same item.
    guid = link_id(link) if link else _hash(title)
    entry = Entry(
        source_url=source_url,
        guid=guid,
        link=link,
        title=title,
        summary=summary,
        published=published,
        language=language,
    )
    return entry, chosen is not None, date_tag is not None


def _link(chosen: Tag | None, item: Tag, base: str, page: str) -> str | None:
    """The first absolute http(s) URL among: the chosen element's href, its
    first ``<a href>``, the item's own href, the item's first ``<a href>``
    (the last two only without a ``link:`` selector). A link back to the page
    itself (``href="#"``, a script's anchor) is no link."""
    here = page.partition("#")[0]
    for tag in (chosen, item) if chosen is None else (chosen,):
        for element in (tag, tag.find("a", href=True) if tag else None):
            href = element.get("href") if isinstance(element, Tag) else None
            if not isinstance(href, str) or href.strip().startswith("#"):
                continue  # an anchor in the page (href="#", for a script)
            if (url := _http_url(href, base)) and url.partition("#")[0] != here:
                return url
    return None


def _date(tag: Tag | None, now: datetime, zone: tzinfo) -> datetime | None:
    if tag is None:
        return None
    attribute = tag.get("datetime")
    if isinstance(attribute, str) and (parsed := parse_date(attribute, now, zone)):
        return parsed
    return parse_date(tag.get_text(" "), now, zone)


# --- dates ------------------------------------------------------------------

#: Month names and abbreviations; Russian in the genitive ("25 ноября") and nominative.
_MONTH_NAMES = (
    "january jan janvier janv январь января янв",
    "february feb février fevrier févr fevr fév fev февраль февраля фев февр",
    "march mar mars март марта мар",
    "april apr avril avr апрель апреля апр",
    "may mai май мая",
    "june jun juin июнь июня июн",
    "july jul juillet juil июль июля июл",
    "august aug août aout авг август августа",
    "september sep sept septembre сентябрь сентября сен сент",
    "october oct octobre октябрь октября окт",
    "november nov novembre ноябрь ноября ноя нояб",
    "december dec décembre decembre déc декабрь декабря дек",
)
_MONTHS = {name: number for number, names in enumerate(_MONTH_NAMES, 1) for name in names.split()}
#: Days before today that a word names.
_DAYS_AGO = {"today": 0, "сегодня": 0, "aujourd'hui": 0,
             "yesterday": 1, "вчера": 1, "hier": 1, "avant-hier": 2, "позавчера": 2}  # fmt: skip
_NOW_WORDS = re.compile(r"\b(just now|now|только что|à l'instant|a l'instant)\b")
#: "3 hours ago", "il y a 3 heures", "3 часа назад": unit prefixes -> timedelta argument.
_AGO = re.compile(r"(?:il y a\s+(\d+)\s*([^\W\d_]+)|(\d+)\s*([^\W\d_]+)\.?\s+(?:ago|назад))")
_UNITS = (("min", "minutes"), ("mn", "minutes"), ("мин", "minutes"), ("h", "hours"),
          ("ч", "hours"), ("d", "days"), ("j", "days"), ("дн", "days"), ("ден", "days"),
          ("w", "weeks"), ("sem", "weeks"), ("нед", "weeks"),
          ("sec", "seconds"), ("сек", "seconds"))  # fmt: skip
_RELATIVE_DAY = re.compile(
    r"\b(aujourd'hui|avant-hier|hier|today|yesterday|сегодня|вчера|позавчера)\b"
)
_YMD = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_DMY = re.compile(r"(?<!\d)(\d{1,2})[./-](\d{1,2})[./-](\d{4}|\d{2})(?!\d)")
_WORD = r"([^\W\d_]+)\.?"
_YEAR = r"(?:,?\s+(\d{4})(?!\d))?"
_DAY_MONTH = re.compile(rf"(?<!\d)(\d{{1,2}})(?:er|st|nd|rd|th)?\s+(?:de\s+)?{_WORD}{_YEAR}")
_MONTH_DAY = re.compile(rf"{_WORD}\s+(\d{{1,2}})(?:st|nd|rd|th)?(?!\d){_YEAR}")
_TIME = re.compile(
    r"(?<!\d)(\d{1,2})\s?[:h]\s?(\d{2})(?::(\d{2}))?(?!\d)(?:\s*([ap])\.?\s?m\b\.?)?"
)
#: "+05:00", "+0500", "UTC+5", "(GMT+05:00)"; a bare sign needs four digits ("14:30 - 5 comments").
_OFFSET = re.compile(
    r"[\s(]*(?:(?:utc|gmt)\s*([+-])(\d{1,2})(?::?(\d{2}))?|([+-])(\d{2}):?(\d{2}))(?!\d)"
)
_NAMED_OFFSETS = {"мск": 3, "msk": 3}
_NAMED_OFFSET = re.compile(r"[\s(]*(мск|msk)\b")


def parse_date(text: str, now: datetime, zone: tzinfo = UTC) -> datetime | None:
    """The date a news page shows, as an aware UTC datetime, or None.

    Understands ISO 8601; day-first numbers ("25.11.2026", "25/11/2026 14:30",
    month-first only when the first number cannot be a month); month names in
    English, French and Russian, full or abbreviated ("Nov 25, 2026", "mercredi
    25 novembre 2026 à 14h30", "25 нояб. 2026 г."), with the year taken as the
    latest one not in the future when missing; "today", "yesterday", "hier",
    "сегодня, 14:30", "вчера"...; "3 hours ago", "il y a 3 heures", "3 часа назад".

    A time without an offset is in ``zone`` (the source's ``timezone:``;
    UTC by default: a listing page rarely says its zone). A numeric offset
    ("+05:00", "UTC+5") or "МСК" is applied. "Today" is ``now``'s date in
    ``zone``. A date more than a day after ``now`` is dropped (None).
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    value = _iso(text, zone) or _relative(text, now) or _written(text, now, zone)
    if value is None or value > now + FUTURE_SLACK:
        return None
    return value


def _iso(text: str, zone: tzinfo) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return _utc(value, zone)


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower().replace("’", "'").replace("\u2212", "-")
    return " ".join(text.split())


def _relative(text: str, now: datetime) -> datetime | None:
    """'3 hours ago' and its translations; 'just now'."""
    text = _normalize(text)
    if _NOW_WORDS.search(text):
        return now.astimezone(UTC)
    if not (match := _AGO.search(text)):
        return None
    count, unit = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
    for prefix, name in _UNITS:
        if unit.startswith(prefix):
            return (now - timedelta(**{name: int(count)})).astimezone(UTC)
    return None


def _written(text: str, now: datetime, zone: tzinfo) -> datetime | None:
    """A calendar date (or a day word) with an optional time and offset."""
    text = _normalize(text)
    found = _day(text, now, zone)
    if found is None:
        return None
    day, year_given, (start, end) = found
    rest = f"{text[:start]} {text[end:]}"
    try:
        value = datetime.combine(day, _time(rest) or time(), tzinfo=_offset(rest, zone))
        if not year_given and value > now + FUTURE_SLACK:
            value = value.replace(year=value.year - 1)  # "25 Dec" read in January
    except ValueError:  # 31 November, 25:00, 29 February of the year before
        return None
    return value.astimezone(UTC)


def _day(text: str, now: datetime, zone: tzinfo) -> tuple[date, bool, tuple[int, int]] | None:
    """The date in ``text``, whether it gave the year, and where it was."""
    try:
        if match := _RELATIVE_DAY.search(text):
            today = now.astimezone(zone).date()
            return today - timedelta(days=_DAYS_AGO[match.group(1)]), True, match.span()
        if match := _YMD.search(text):
            year, month, day = map(int, match.groups())
            return date(year, month, day), True, match.span()
        if match := _DMY.search(text):
            day, month, year = map(int, match.groups())
            if month > 12 >= day:  # 11/25/2026: month first
                day, month = month, day
            return date(year + 2000 if year < 100 else year, month, day), True, match.span()
        for pattern, day_group, month_group in ((_DAY_MONTH, 1, 2), (_MONTH_DAY, 2, 1)):
            for match in pattern.finditer(text):
                if named := _MONTHS.get(match.group(month_group)):
                    given = match.group(3)
                    found = date(int(given or now.year), named, int(match.group(day_group)))
                    return found, given is not None, match.span()
    except ValueError:  # 31 November
        return None
    return None


def _time(text: str) -> time | None:
    if not (match := _TIME.search(text)):
        return None
    hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    if match.group(4):  # 12-hour clock
        hour = hour % 12 + (12 if match.group(4) == "p" else 0)
    return time(hour, minute, second)


def _offset(text: str, zone: tzinfo) -> tzinfo:
    """The zone right after the time ("+05:00", "UTC+5", "МСК"); else ``zone``."""
    if not (time_match := _TIME.search(text)):
        return zone
    after = text[time_match.end() :]
    if match := _OFFSET.match(after):
        sign, hours, minutes = match.group(1, 2, 3) if match.group(1) else match.group(4, 5, 6)
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        return timezone(-delta if sign == "-" else delta)
    if match := _NAMED_OFFSET.match(after):
        return timezone(timedelta(hours=_NAMED_OFFSETS[match.group(1)]))
    return zone


def _utc(value: datetime, zone: tzinfo = UTC) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)

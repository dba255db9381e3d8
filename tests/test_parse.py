"""aggregator.parse: one sample file per quirk under tests/data/parse/, whole records compared."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.parse import _absolute, _http_url, defuse, parse
from aggregator.types import Entry, FeedInfo, FetchResult, ParsedFeed

DATA = Path(__file__).parent / "data" / "parse"
SOURCE = "https://example.org/feed"
#: Where the fetch ended up; relative links resolve against it.
FETCHED = "https://news.example.org/rss/feed.xml"
E = partial(Entry, source_url=SOURCE)
NEWS = "https://news.example.org/"


def load(name: str, language: str | None = None) -> ParsedFeed:
    body = (DATA / name).read_bytes()
    return parse(SOURCE, FetchResult(url=FETCHED, body=body), language=language)


def feed(title: str, link: str, language: str | None, *entries: Entry) -> ParsedFeed:
    return ParsedFeed(FeedInfo(title=title, link=link, language=language), entries)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


CASES = {
    "rss20_fr_html.xml": feed(
        "Nouvelles d'Asie centrale",
        NEWS,
        "fr",
        E(
            guid="article-1",
            link="https://news.example.org/articles/1",
            title="Le Kazakhstan élit son parlement",
            summary="<p>Les électeurs <b>kazakhs</b> votent à Astana.</p>",
            published=utc(2024, 5, 6, 9, 30),
            updated=None,  # the item has a pubDate only
            author="redaction@example.org (Rédaction)",
            language="fr",
        ),
    ),
    "atom_en_xmllang.xml": feed(
        "Central Asia Wire",
        "https://wire.example.org/",
        "en",
        E(
            guid="urn:example:wire:42",
            link="https://wire.example.org/2024/railway",
            title="Uzbekistan opens a new railway",
            # the summary wins over the full content; plain text (Atom type="text") as HTML
            summary="<p>Short summary.</p>",
            published=utc(2024, 5, 5, 8),
            updated=utc(2024, 5, 6, 10),
            author="Jane Doe",
            language="en",
        ),
    ),
    "atom_content_only.xml": feed(
        "Content Only",
        None,
        None,
        E(
            guid="urn:example:co:1",
            link="https://co.example.org/ski",
            title="Kyrgyzstan opens a ski resort",
            summary="<p>Near <b>Karakol</b>.</p>",  # no summary: the content stands in
            published=utc(2024, 5, 6, 10),  # no <published>: dated by <updated>
            updated=utc(2024, 5, 6, 10),
        ),
    ),
    "rss10_rdf.xml": feed(
        "RDF News",
        "https://rdf.example.org/",
        "en",
        E(
            guid="https://rdf.example.org/a/7",
            link="https://rdf.example.org/a/7",
            title="Tajikistan builds a dam",
            summary="Rogun is rising.",
            published=utc(2024, 5, 6, 12),  # dc:date, read by feedparser as updated
            updated=utc(2024, 5, 6, 12),
            categories=("Energy",),
            language="en",
        ),
    ),
    "rss091.xml": feed(
        "Old News",
        "http://old.example.org/",
        "en-us",
        E(
            guid="http://old.example.org/story/3",
            link="http://old.example.org/story/3",
            title="Turkmenistan holds a horse festival",
            summary="Akhal-Teke horses on parade.",
            language="en-us",
        ),
    ),
    "rss20_ru_cp1251.xml": feed(
        "Новости",
        "https://ru.example.org/",
        "ru",
        E(
            guid="ru-1",
            link="https://ru.example.org/news/1",
            title="Казахстан и Узбекистан подписали соглашение",
            language="ru",
        ),
    ),
    "guid_missing.xml": feed(
        "T",
        NEWS,
        None,
        E(
            guid="https://news.example.org/articles/2",
            link="https://news.example.org/articles/2",
            title="No guid here",
        ),
    ),
    "title_missing.xml": feed(
        "T",
        NEWS,
        None,
        E(
            guid="t-1",
            link=None,
            title="Bishkek hosts a summit.",
            summary="<p>Bishkek <b>hosts</b> a summit.</p>",
        ),
    ),
    "title_and_summary_missing.xml": feed("T", NEWS, None),
    "title_html.xml": feed("T", NEWS, None, E(guid="h-1", link=None, title="Bold title")),
    "control_chars.xml": feed("T", NEWS, None, E(guid="k-1", link=None, title="Control chars")),
    "relative_links.xml": feed(
        "T",
        NEWS,
        None,
        E(guid="r-9", link="https://news.example.org/articles/9", title="Relative link"),
    ),
    "xss.xml": feed(
        "T",
        NEWS,
        None,
        E(
            guid="x-1",
            link=None,  # was javascript:alert(1)
            title="XSS",
            summary='<p>Hello<img src="https://news.example.org/i.png">'
            '<a rel="noopener noreferrer nofollow">link</a></p>',
        ),
    ),
    "date_offset.xml": feed(
        "T",
        NEWS,
        None,
        E(guid="d-1", link=None, title="Tashkent time", published=utc(2024, 5, 6, 10)),
    ),
    "categories_duplicate.xml": feed(
        "T",
        NEWS,
        None,
        E(guid="c-1", link=None, title="Tagged", categories=("Politics", "Economy")),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_parse(name: str) -> None:
    assert load(name) == CASES[name]


def test_dates_are_aware_utc() -> None:
    (entry,) = load("date_offset.xml").entries
    assert entry.published is not None
    assert entry.published.utcoffset() is not None
    assert entry.published.isoformat() == "2024-05-06T10:00:00+00:00"


@pytest.mark.parametrize(
    ("name", "language", "expected"),
    [
        ("language_missing.xml", "ky", "ky"),  # no <language>: the configured one
        ("language_missing.xml", None, None),
        ("rss20_ru_cp1251.xml", "en", "ru"),  # the feed's <language> wins
        ("atom_en_xmllang.xml", "fr", "en"),  # xml:lang wins
    ],
)
def test_language(name: str, language: str | None, expected: str | None) -> None:
    parsed = load(name, language)
    assert parsed.feed.language == expected
    assert [e.language for e in parsed.entries] == [expected]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("ru", "ru"),
        ("en-US", "en-us"),
        ("ru_RU", "ru-ru"),
        (" fr-FR ", "fr-fr"),
        ("Russian", "ru"),
        ("Français", "fr"),
        ("fr, en", "kg-config"),  # not a tag: the configured language
        ("english (US)", "kg-config"),
        ("en_US_POSIX_variant123", "kg-config"),  # a subtag over 8 characters
        ("русский язык", "kg-config"),
        ("", "kg-config"),
    ],
)
def test_a_feed_language_that_is_not_a_tag_gives_way_to_the_configured_one(
    written: str, expected: str
) -> None:
    """xml:lang must be a language tag (the Atom schema checks it): a feed's
    ``ru_RU`` or ``fr, en`` once made every published feed invalid."""
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<language>{written}</language><item><title>Kyrgyzstan</title>"
        f"<link>https://e.example/1</link></item></channel></rss>"
    ).encode()
    parsed = parse("https://e.example/feed", FetchResult("https://e.example/feed", body, {}),
                   "kg-config")  # fmt: skip
    assert parsed.feed.language == expected
    assert [e.language for e in parsed.entries] == [expected]


def test_a_parser_failure_on_a_hostile_body_is_a_parse_error() -> None:
    """lxml rejects an ill-formed character reference, and feedparser then
    raised UnicodeEncodeError: a ParseError now, so only this source fails."""
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>S</title>'
        b"<item><title>Bishkek &#xD800; news</title><link>https://e.example/4</link>"
        b"</item></channel></rss>"
    )
    with pytest.raises(ParseError, match="the parser failed"):
        parse("https://e.example/feed", FetchResult("https://e.example/feed", body, {}))


def test_guid_falls_back_to_a_stable_hash() -> None:
    first, second = load("guid_and_link_missing.xml"), load("guid_and_link_missing.xml")
    assert first == second
    (entry,) = first.entries
    assert entry.guid.startswith("sha1:") and len(entry.guid) == len("sha1:") + 40
    assert entry == E(
        guid=entry.guid, link=None, title="Neither guid nor link", summary="Only text."
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [("html_page.html", "HTML"), ("garbage.bin", "not a feed")],
)
def test_not_a_feed(name: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        load(name)
    assert info.value.url == SOURCE
    assert reason in info.value.reason


def test_no_body() -> None:
    with pytest.raises(ValueError):
        parse(SOURCE, FetchResult(url=FETCHED, body=None))


@pytest.mark.parametrize(
    "name",
    [
        "billion_laughs.xml",
        "quadratic_blowup.xml",  # feedparser alone makes a 1,000,000-character title of it
        "utf16_entities.xml",  # the same, UTF-16LE with a BOM
        "utf16be_entities.xml",  # UTF-16BE with a BOM
        "utf16_nobom_entities.xml",  # UTF-16LE without a BOM (feedparser still detects it)
        "xxe.xml",
    ],
)
def test_entity_attacks_are_defused(name: str) -> None:
    start = time.perf_counter()
    try:
        parsed = load(name)
    except ParseError:
        return  # refusing the document is fine too
    assert time.perf_counter() - start < 2
    fields = [parsed.feed.title]
    for entry in parsed.entries:
        fields += [entry.title, entry.summary, entry.guid, entry.link]
    assert max(len(f or "") for f in fields) < 1000
    assert "root:" not in repr(parsed)  # nothing of /etc/passwd
    assert "A" * 5000 not in repr(parsed)  # the quadratic entity never expands


def test_defuse_reencodes_utf16_before_looking_for_entities() -> None:
    body = defuse(SOURCE, (DATA / "utf16_entities.xml").read_bytes())
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert b"<!ENTITY" not in body
    assert b"<title>Quadratic</title>" in body


@pytest.mark.parametrize(
    "body",
    [
        b"<rss><channel><title>T</title></channel></rss>",
        "<rss><title>Ü</title></rss>".encode("utf-16"),  # no DTD: only re-encoded
    ],
)
def test_defuse_keeps_documents_without_entities(body: bytes) -> None:
    assert b"<!ENTITY" not in defuse(SOURCE, body)
    assert b"<title>" in defuse(SOURCE, body)


def test_defuse_refuses_an_entity_outside_the_dtd() -> None:
    body = b'<rss><!ENTITY a "x"><channel/></rss>'
    with pytest.raises(ParseError, match="entities"):
        defuse(SOURCE, body)


CYRILLIC = DATA / "cyrillic"


@pytest.mark.parametrize(
    ("name", "headers"),
    [
        ("cp1251_undeclared.xml", {}),
        ("cp1251_declared_utf8.xml", {}),
        ("cp1251_declared_latin1.xml", {}),
        ("cp1251_declared.xml", {}),
        ("cp1251_undeclared.xml", {"content-type": "text/xml; charset=iso-8859-1"}),
        ("koi8r_undeclared.xml", {}),
        ("koi8r_declared_cp1251.xml", {}),
        ("koi8r_declared.xml", {}),
    ],
)
def test_russian_in_a_single_byte_encoding_comes_out_right(
    name: str, headers: dict[str, str]
) -> None:
    body = (CYRILLIC / name).read_bytes()
    parsed = parse("https://x.example/feed", FetchResult("https://x.example/feed", body, headers))
    assert parsed.feed.title == "Новости Бишкека"
    assert [e.title for e in parsed.entries] == ["В Бишкеке открыли новый мост через реку Аламедин"]
    assert parsed.entries[0].summary == "Мост построили за два года."


def test_latin1_french_is_not_mistaken_for_cyrillic() -> None:
    body = (CYRILLIC / "latin1_french_not_cyrillic.xml").read_bytes()
    parsed = parse("https://x.example/feed", FetchResult("https://x.example/feed", body, {}))
    assert parsed.feed.title == "Été à Paris"
    assert parsed.entries[0].title == "Le café de l'été, très élégant à côté"


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("В Бишкеке открылся новый терминал аэропорта Манас", "Терминал \x96 крупнейший в стране."),
        ("Le café de l'été — très élégant à Almaty", "Un prix de 5\x80 seulement."),
    ],
    ids=["russian", "french"],
)
def test_a_stray_byte_in_a_utf8_feed_spoils_that_byte_only(title: str, summary: str) -> None:
    """One windows-1252 byte pasted into a summary made the body invalid
    UTF-8: the whole feed was read as KOI8-R (Russian) or windows-1252
    (French), every item garbled, and the Russian ones dropped."""
    item = "<item><title>{}</title><description>{}</description><guid>{}</guid></item>"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Вести</title>'
        + item.format(title, "Второй материал, без ошибок.", "a")
        + item.format(title, "{}", "b")
        + "</channel></rss>"
    ).encode()
    body = body.replace(
        b"{}", summary.encode("utf-8").replace(b"\xc2\x96", b"\x96").replace(b"\xc2\x80", b"\x80")
    )

    parsed = parse("https://x.example/feed", FetchResult("https://x.example/feed", body, {}))

    assert parsed.feed.title == "Вести"
    assert [e.title for e in parsed.entries] == [title, title]
    assert parsed.entries[0].summary == "Второй материал, без ошибок."
    assert parsed.entries[1].summary == summary.replace("\x96", "\ufffd").replace("\x80", "\ufffd")


def rss_item(title: str, description: str) -> ParsedFeed:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>'
        f"<item><title>{title}</title><description>{description}</description>"
        "<guid>g</guid></item></channel></rss>"
    ).encode()
    return parse("https://x.example/feed", FetchResult("https://x.example/feed", body, {}))


@pytest.mark.parametrize(
    "description",
    [
        "&lt;p&gt; &lt;/p&gt;",
        "&lt;p&gt;&amp;nbsp;&lt;/p&gt;",
        '&lt;a href="javascript:alert(1)"&gt;&lt;/a&gt;&lt;br/&gt;',
        "&lt;p&gt;&lt;b&gt;&lt;/b&gt;&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
    ],
)
def test_a_summary_showing_nothing_is_no_summary(description: str) -> None:
    """Published as is, it made a blank entry; without one, the title stands in."""
    (entry,) = rss_item("Kazakhstan opens a new railway", description).entries
    assert entry.summary is None


def test_an_image_alone_is_a_summary() -> None:
    (entry,) = rss_item("Kazakhstan", '&lt;img src="/a.png"&gt;').entries
    assert entry.summary == '<img src="https://x.example/a.png">'


def test_bidirectional_overrides_are_removed_from_titles_and_summaries() -> None:
    """An unbalanced U+202E draws the rest of a reader's list backwards."""
    (entry,) = rss_item("Kazakhstan \u202etxt.exe\u2066 news\u200f", "Text \u202dhere").entries
    assert entry.title == "Kazakhstan txt.exe news\u200f"  # a right-to-left mark is harmless
    assert entry.summary == "Text here"
    # Written as character references, in escaped HTML: decoded by the sanitizer.
    (entry,) = rss_item(
        "Kazakhstan", "&lt;p&gt;Paid by &amp;#x202E;gpj.exe&amp;#1;&lt;/p&gt;"
    ).entries
    assert entry.summary == "<p>Paid by gpj.exe</p>"


def test_relative_links_in_a_summary_are_resolved_against_the_article() -> None:
    (entry,) = load("relative_summary_links.xml").entries
    assert entry.summary == (
        '<p><a href="https://news.example.org/2026/photos/1.html" rel="noopener noreferrer'
        ' nofollow">photos</a> <img src="https://news.example.org/2026/11/img/2.png">'
        ' <a href="https://cdn.example.net/x" rel="noopener noreferrer nofollow">cdn</a></p>'
    )


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        # plain absolute links are kept as they are (a fast path skips urljoin)...
        ("https://s1.example/a/1", "https://s1.example/a/1"),
        ("https://s1.example/./a/../b", "https://s1.example/./a/../b"),
        ("http://s1.example:8080", "http://s1.example:8080"),
        ("https://s1.example/a;p", "https://s1.example/a;p"),
        # ...and every other link is what urljoin makes of it
        ("HTTPS://s1.example/a", "https://s1.example/a"),
        ("https://s1.example/a?", "https://s1.example/a"),
        ("https://s1.example/a#", "https://s1.example/a"),
        ("/rel/path", "https://base.example/rel/path"),
        ("https:///nohost", "https://base.example/nohost"),
        # characters a URL cannot hold are encoded; letters of other scripts kept
        (" https://s1.example/a b ", "https://s1.example/a%20b"),
        ('https://s1.example/"q"/<x>?a=b|c', "https://s1.example/%22q%22/%3Cx%3E?a=b%7Cc"),
        ("https://s1.example/новости/a b", "https://s1.example/новости/a%20b"),
        ("ftp://f.example/x", None),
    ],
)
def test_links_are_made_absolute(link: str, expected: str | None) -> None:
    assert _http_url(link, "https://base.example/feed") == expected
    image = _absolute("https://base.example/a/", "img", "src", link)
    assert image == expected


def test_clean_fast_path_agrees_with_its_definition() -> None:
    """Printable text without double spaces skips the regexes: the same result
    as removing control characters, collapsing whitespace and stripping."""
    import random
    import re

    from aggregator.parse import _CONTROL, _clean

    def reference(text: str) -> str | None:
        return re.sub(r"\s+", " ", _CONTROL.sub("", text)).strip() or None

    alphabet = "a é Ж  \t\n\r\x0b\x0c\x1c\x1f\x00\x7f\x85\x9f\xa0"
    alphabet += "\u2003\u2028\u202f\u3000\ufffe\uffff\u200b·"
    rng = random.Random(7)
    texts = [a + b for a in alphabet for b in alphabet]
    texts += ["".join(rng.choices(alphabet, k=rng.randrange(12))) for _ in range(5000)]
    texts += ["".join(rng.choices("a é Ж· ", k=rng.randrange(12))) for _ in range(2000)]
    for text in texts:
        assert _clean(text) == reference(text), repr(text)


def test_a_huge_title_is_cut_at_a_word() -> None:
    title = "Kazakhstan " + "news " * 20000  # 100 kB
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<item><title>{title}</title><link>https://e.example/1</link></item></channel></rss>"
    ).encode()
    parsed = parse("https://e.example/feed", FetchResult("https://e.example/feed", body, {}))
    [entry] = parsed.entries
    assert len(entry.title) <= 301 and entry.title.endswith("news…")
    assert entry.title.startswith("Kazakhstan news news")


def atom_entry(summary: str = "", content: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>T</title><id>urn:t</id><updated>2026-01-01T00:00:00Z</updated>"
        "<entry><id>urn:t:1</id><title>Tashkent</title><updated>2026-01-01T00:00:00Z</updated>"
        f"{summary}{content}</entry></feed>"
    ).encode()


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "feedparser"])
@pytest.mark.parametrize(
    ("element", "expected"),
    [
        # Atom's default type is text: its "<" and "&" are characters.
        (
            "<summary>Tariffs &lt;KZT&gt; under 5 &lt; 7 &amp; AT&amp;T</summary>",
            "<p>Tariffs &lt;KZT&gt; under 5 &lt; 7 &amp; AT&amp;T</p>",
        ),
        # Its paragraphs and line breaks are kept.
        (
            '<summary type="text">First line\nsecond line\n\n  Next paragraph  </summary>',
            "<p>First line<br>second line</p><p>Next paragraph</p>",
        ),
        # Plain content, when there is no summary.
        (
            '<content type="text">Plain &lt;content&gt; &amp; more</content>',
            "<p>Plain &lt;content&gt; &amp; more</p>",
        ),
        # HTML declared as text (a common mistake) is read as HTML.
        (
            "<summary>&lt;p&gt;Mislabelled &lt;em&gt;HTML&lt;/em&gt;&lt;/p&gt;</summary>",
            "<p>Mislabelled <em>HTML</em></p>",
        ),
        (
            '<summary type="html">&lt;p&gt;Declared &lt;em&gt;HTML&lt;/em&gt;&lt;/p&gt;</summary>',
            "<p>Declared <em>HTML</em></p>",
        ),
    ],
)
def test_plain_text_summaries_are_escaped_not_read_as_markup(
    element: str, expected: str, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator import parse as parse_module

    if not fast:
        monkeypatch.setattr(parse_module, "parse_fast", lambda body, headers: None)
    (entry,) = parse(SOURCE, FetchResult(url=FETCHED, body=atom_entry(element))).entries
    assert entry.summary == expected


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "feedparser"])
def test_relative_links_of_a_feed_behind_basic_authentication_carry_no_credentials(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetched URL holds the credentials httpx sends; links resolved
    against it must not, since they are published."""
    from aggregator import parse as parse_module

    if not fast:
        monkeypatch.setattr(parse_module, "parse_fast", lambda body, headers: None)
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>/</link>'
        b"<item><title>Floods in Batken</title><link>/news/floods</link>"
        b'<description>&lt;a href="/photos/1"&gt;photos&lt;/a&gt;</description></item>'
        b"</channel></rss>"
    )

    parsed = parse(SOURCE, FetchResult(url="https://news:s3cret@feeds.example/rss.xml", body=body))

    (entry,) = parsed.entries
    assert parsed.feed.link == "https://feeds.example/"
    assert entry.link == "https://feeds.example/news/floods"
    assert "https://feeds.example/photos/1" in (entry.summary or "")
    assert "s3cret" not in (entry.summary or "")

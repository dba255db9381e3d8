"""aggregator.scrape: saved listing pages under tests/data/pages/, whole records compared."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aggregator.errors import ParseError
from aggregator.scrape import parse_date, scrape
from aggregator.types import Entry, FeedInfo, FetchResult, ParsedFeed, Selectors

DATA = Path(__file__).parent / "data" / "pages"
SOURCE = "https://example.org/news"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
E = partial(Entry, source_url=SOURCE)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def run(
    body: bytes,
    selectors: Selectors,
    url: str = "https://news.example.org/list/",
    language: str | None = None,
    headers: dict[str, str] | None = None,
) -> ParsedFeed:
    result = FetchResult(url=url, body=body, headers=headers or {})
    return scrape(SOURCE, result, selectors, language, now=NOW)


FR_URL = "https://www.echo-steppes.example/actualites/"
FR = Selectors(item="article.post", title="h2", link="h2 a", date="time", summary="p.excerpt")
FR_PAGE = ParsedFeed(
    FeedInfo(title="Actualités – L'Écho des Steppes", link=FR_URL, language="fr"),
    (
        E(
            guid="https://www.echo-steppes.example/2026/11/25/bichkek-budget-2027/",
            link="https://www.echo-steppes.example/2026/11/25/bichkek-budget-2027/",
            title="Bichkek : le Parlement adopte le budget 2027",
            summary="Après trois jours de débats, le <em>Jogorku Kenesh</em> a voté le budget de "
            'l\'an prochain. <a href="https://www.echo-steppes.example/2026/11/24/budget-debat/"'
            ' rel="noopener noreferrer nofollow">Lire aussi</a>',
            published=utc(2026, 11, 25, 10, 42),  # 16:42+06:00
            language="fr",
        ),
        E(
            guid="https://www.echo-steppes.example/2026/11/25/coton-recolte-record/",
            link="https://www.echo-steppes.example/2026/11/25/coton-recolte-record/",
            title="Ouzbékistan : une récolte de coton record dans la vallée de Ferghana",
            summary="Les coopératives annoncent 3,8&nbsp;millions de tonnes, "
            "un chiffre inédit depuis 2012.",
            published=utc(2026, 11, 25, 4, 5),
            language="fr",
        ),
        # The sponsored <article class="post"> has no <h2>: skipped.
        E(
            guid="https://www.echo-steppes.example/actualites/2026/11/24/festival-almaty/",
            link="https://www.echo-steppes.example/actualites/2026/11/24/festival-almaty/",
            title="Almaty accueille le festival du film Eurasia",
            summary='<img alt="Affiche du festival" src="https://www.echo-steppes.example/'
            'wp-content/uploads/2026/11/affiche.jpg" width="120"> '
            "Quarante films de douze pays en compétition.",
            published=utc(2026, 11, 24),
            language="fr",
        ),
    ),
    # The sponsored block.
    note="1 of 4 items matching 'article.post' have no title matching 'h2': left out"
    " (if they are not news, narrow the item selector)",
)

EN_URL = "https://steppewire.example/news/"
EN = Selectors(item="div.news-item", title="h3", date=".date", summary=".teaser")
EN_PAGE = ParsedFeed(
    FeedInfo(title="Latest news | Steppe Wire", link=EN_URL, language="en-gb"),
    (
        E(
            guid="https://steppewire.example/news/2026/11/25/astana-rail-link",
            link="https://steppewire.example/news/2026/11/25/astana-rail-link",
            title="Astana and Tashkent sign high-speed rail agreement",
            summary="The 1,200&nbsp;km line would cut travel time to <strong>nine hours</strong>.",
            published=utc(2026, 11, 25),
            language="en-gb",
        ),
        E(
            guid="https://steppewire.example/news/2026/11/24/dushanbe-water-summit",
            link="https://steppewire.example/news/2026/11/24/dushanbe-water-summit",
            title="Dushanbe hosts regional water summit",
            summary="Ministers from five countries discussed the Amu Darya basin. "
            '<a href="https://steppewire.example/news/2026/11/reports/amu-darya.pdf"'
            ' rel="noopener noreferrer nofollow">Full report</a>',
            published=utc(2026, 11, 24),
            language="en-gb",
        ),
        E(  # its only link is javascript:, so the id is a hash of the title
            guid="sha1:201acaaabc859dce4b9d1f1208ccdfca499f24b2",
            link=None,
            title="Turkmenistan gas exports: what the new contract means",
            summary="Analysis for subscribers.",
            published=utc(2026, 11, 23),
            language="en-gb",
        ),
    ),
    # The ad slot.
    note="1 of 4 items matching 'div.news-item' have no title matching 'h3': left out"
    " (if they are not news, narrow the item selector)",
)

RU_URL = "https://vesti-stepi.example/novosti/"
RU = Selectors(
    item="li.news__item",
    title=".news__title",
    link="a.news__link",
    date=".news__date",
    summary=".news__lead",
)
RU_PAGE = ParsedFeed(
    FeedInfo(title="Новости — Вести Степи", link=RU_URL, language="ru"),
    (
        E(
            guid="https://vesti-stepi.example/novosti/48213-v-oshe-otkryli-novyj-most.html",
            link="https://vesti-stepi.example/novosti/48213-v-oshe-otkryli-novyj-most.html",
            title="В Оше открыли новый мост через реку Ак-Буура",
            summary="Мост длиной 120&nbsp;метров соединил два района города.",
            published=utc(2026, 11, 25, 9, 15),  # "Сегодня, 09:15"
            language="ru",
        ),
        E(
            guid="https://vesti-stepi.example/novosti/48190-kurs-soma.html",
            link="https://vesti-stepi.example/novosti/48190-kurs-soma.html",
            title="Курс сома к доллару остался стабильным",
            summary="Национальный банк провёл <b>две</b> интервенции за неделю.",
            published=utc(2026, 11, 24, 18, 40),  # "Вчера, 18:40"
            language="ru",
        ),
        E(
            guid="https://vesti-stepi.example/novosti/48177-zima-v-gorah.html",
            link="https://vesti-stepi.example/novosti/48177-zima-v-gorah.html",
            title="В горах Иссык-Куля выпал первый снег",
            published=utc(2026, 11, 24, 11, 5),  # "24 нояб. 2026 г., 11:05"
            language="ru",
        ),
        E(
            guid="https://vesti-stepi.example/novosti/48150-forum-it.html",
            link="https://vesti-stepi.example/novosti/48150-forum-it.html",
            title="В Бишкеке прошёл форум IT-компаний «Digital Steppe»",
            summary='Участники обсудили <a href="https://vesti-stepi.example/tags/it/"'
            ' rel="noopener noreferrer nofollow">цифровизацию</a> и налоги.',
            published=utc(2026, 11, 23, 14, 30),
            language="ru",
        ),
    ),
)
RU_BODY = (DATA / "ru_portal_cp1251.html").read_bytes()


@pytest.mark.parametrize(
    ("name", "url", "selectors", "language", "expected"),
    [
        ("fr_regional.html", FR_URL, FR, None, FR_PAGE),  # <html lang="fr">
        ("en_wire.html", EN_URL, EN, None, EN_PAGE),  # <html lang="en-GB">
        ("ru_portal_cp1251.html", RU_URL, RU, "ru", RU_PAGE),
    ],
)
def test_saved_pages(
    name: str, url: str, selectors: Selectors, language: str | None, expected: ParsedFeed
) -> None:
    assert run((DATA / name).read_bytes(), selectors, url, language) == expected


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (RU_BODY, {"content-type": "text/html; charset=windows-1251"}),
        (RU_BODY, {"content-type": "text/html; charset=no-such-codec"}),  # ignored
        (RU_BODY.replace(b'<meta charset="windows-1251">', b""), {}),  # undeclared
        (RU_BODY.decode("cp1251").encode("utf-8"), {"content-type": "text/html; charset=utf-8"}),
        # declarations the bytes contradict
        (RU_BODY, {"content-type": "text/html; charset=ISO-8859-1"}),
        (RU_BODY, {"content-type": "text/html; charset=utf-8"}),
        (
            RU_BODY.decode("cp1251").encode("utf-8"),
            {"content-type": "text/html; charset=windows-1251"},
        ),
    ],
    ids=[
        "header",
        "unknown-header",
        "undeclared",
        "utf-8",
        "latin-1-header",
        "utf-8-header",
        "cp1251-header-over-utf-8",
    ],
)
def test_russian_page_encodings(body: bytes, headers: dict[str, str]) -> None:
    assert run(body, RU, RU_URL, "ru", headers) == RU_PAGE


def test_a_stray_byte_in_a_utf8_page_spoils_that_byte_only() -> None:
    html = (
        "<li><span class='t'>В Бишкеке открылся терминал</span><p class='s'>Он \x96 новый</p></li>"
    )
    body = f"<html><body><ul>{html}</ul></body></html>".encode().replace(b"\xc2\x96", b"\x96")

    page = run(body, UNDATED)

    assert [(e.title, e.summary) for e in page.entries] == [
        ("В Бишкеке открылся терминал", "Он \ufffd новый")
    ]


def test_configured_language_wins_over_the_page() -> None:
    page = run((DATA / "en_wire.html").read_bytes(), EN, EN_URL, language="en")
    assert page.feed.language == "en"
    assert {e.language for e in page.entries} == {"en"}


LIST = Selectors(item="li", title=".t", date=".d", summary=".s")
UNDATED = Selectors(item="li", title=".t", summary=".s")


@pytest.mark.parametrize(
    ("html", "selectors", "expected"),
    [
        (  # the item is the link; a date in a datetime attribute wins over the text
            '<a class="i" href="/a"><b>A</b><time datetime="2026-11-20T08:00:00Z">hier</time></a>',
            Selectors(item="a.i", title="b", date="time"),
            [E(guid="https://news.example.org/a", link="https://news.example.org/a", title="A",
               published=utc(2026, 11, 20, 8))],
        ),
        (  # no title: skipped; no link: id from the title; future and unreadable dates: None
            '<li><span class="d">25.11.2026</span></li>'
            '<li><span class="t">B</span><span class="d">30.11.2026</span></li>'
            '<li><span class="t">C</span><span class="d">bientôt</span></li>',
            LIST,
            [E(guid="sha1:ae4f281df5a5d0ff3cad6371f76d5c29b6d953ec", link=None, title="B"),
             E(guid="sha1:32096c2e0eff33d844ee6d675407ace18289357d", link=None, title="C")],
        ),
        (  # javascript:, data: and mailto: links are dropped, not replaced by a later link
            '<li><a href="javascript:alert(1)" class="t">D</a><a href="/tag/d">tag</a></li>'
            '<li><a href="data:text/html,x" class="t">E</a></li>'
            '<li><a href="mailto:x@example.org" class="t">F</a></li>',
            UNDATED,
            [E(guid="sha1:50c9e8d5fc98727b4bbc93cf5d64a68db647f04f", link=None, title="D"),
             E(guid="sha1:e0184adedf913b076626646d3f52c3b49c39ad6d", link=None, title="E"),
             E(guid="sha1:e69f20e9f683920d3fb4329abd951e878b1f9372", link=None, title="F")],
        ),
        (  # XSS: scripts, handlers and javascript: URLs removed from summaries and titles
            '<li><a href="/x" class="t">G<script>alert(1)</script></a><div class="s">'
            '<script>alert(2)</script><img src="/i.png" onerror="alert(3)">'
            '<a href="javascript:alert(4)" onclick="alert(5)">x</a>'
            "<style>p{}</style><iframe src=/f></iframe></div></li>",
            UNDATED,
            [E(guid="https://news.example.org/x", link="https://news.example.org/x", title="G",
               summary='<img src="https://news.example.org/i.png"><a rel="noopener noreferrer'
               ' nofollow">x</a>')],
        ),
        (  # the same article listed twice (a "featured" block): kept once
            '<li><a href="/y" class="t">H</a></li><li><a href="/y" class="t"> H </a></li>',
            UNDATED,
            [E(guid="https://news.example.org/y", link="https://news.example.org/y", title="H")],
        ),
    ],
    ids=["item-is-link", "missing-fields", "bad-links", "xss", "duplicates"],
)  # fmt: skip
def test_items(html: str, selectors: Selectors, expected: list[Entry]) -> None:
    page = run(f"<html><body><ul>{html}</ul></body></html>".encode(), selectors)
    assert replace(page, note=None) == ParsedFeed(
        FeedInfo(link="https://news.example.org/list/"), tuple(expected)
    )


def test_items_without_a_title_are_counted_in_a_note() -> None:
    html = '<li><span class="t">A</span></li><li><b>Sponsored</b></li><li><b>Ad</b></li>'
    titled = '<li><span class="t">A</span></li>'

    page = run(f"<html><body><ul>{html}</ul></body></html>".encode(), UNDATED)
    clean = run(f"<html><body><ul>{titled}</ul></body></html>".encode(), UNDATED)

    assert [e.title for e in page.entries] == ["A"]
    assert page.note == (
        "2 of 3 items matching 'li' have no title matching '.t': left out"
        " (if they are not news, narrow the item selector)"
    )
    assert clean.note is None


@pytest.mark.parametrize(
    ("body", "selectors", "message"),
    [
        (
            (DATA / "fr_regional.html").read_bytes(),
            Selectors(item="div.article", title="h2"),
            f"{SOURCE}: no item matches the selector 'div.article'",
        ),
        (
            (DATA / "fr_regional.html").read_bytes(),
            Selectors(item="article.post", title="h3"),
            f"{SOURCE}: 4 items match 'article.post', but none has a title matching 'h3'",
        ),
        (
            b"<html><li>x</li></html>",
            Selectors(item="li[", title="a"),
            f"{SOURCE}: invalid CSS selector 'li[': Malformed attribute selector at position 2",
        ),
        (
            (Path(__file__).parent / "data" / "feeds" / "fr_rss.xml").read_bytes(),
            Selectors(item="item", title="title"),
            f"{SOURCE}: an XML document (a feed?), not an HTML page",
        ),
        (b"https://example.org/", Selectors(item="li", title="a"), f"{SOURCE}: not an HTML page"),
    ],
    ids=["no-item", "no-title", "bad-selector", "a-feed", "not-html"],
)
def test_errors(body: bytes, selectors: Selectors, message: str) -> None:
    with pytest.raises(ParseError) as error:
        run(body, selectors)
    assert str(error.value) == message


DATES = [
    # ISO 8601, with and without an offset
    ("2026-11-25T14:30:00Z", utc(2026, 11, 25, 14, 30)),
    ("2026-11-25T14:30:00+05:00", utc(2026, 11, 25, 9, 30)),
    ("2026-11-25 14:30", utc(2026, 11, 25, 14, 30)),
    ("2026-11-25", utc(2026, 11, 25)),
    # numbers, day first
    ("25.11.2026", utc(2026, 11, 25)),
    ("25.11.2026 14:30", utc(2026, 11, 25, 14, 30)),
    ("25/11/2026", utc(2026, 11, 25)),
    ("11/24/2026", utc(2026, 11, 24)),  # 24 cannot be a month
    ("24.11.26", utc(2026, 11, 24)),
    ("25.11.2026 14:30 +03:00", utc(2026, 11, 25, 11, 30)),
    ("25.11.2026 14:30 МСК", utc(2026, 11, 25, 11, 30)),
    ("25.11.2026 14:30 - 5 comments", utc(2026, 11, 25, 14, 30)),  # not an offset
    # English
    ("November 25, 2026", utc(2026, 11, 25)),
    ("25 Nov 2026 14:30", utc(2026, 11, 25, 14, 30)),
    ("Nov 25, 2026", utc(2026, 11, 25)),
    ("Tuesday, November 24, 2026 at 2:30 PM", utc(2026, 11, 24, 14, 30)),
    ("3rd March 2026", utc(2026, 3, 3)),
    # French
    ("25 novembre 2026", utc(2026, 11, 25)),
    ("25 nov. 2026 à 11h30", utc(2026, 11, 25, 11, 30)),
    ("mercredi 25 novembre 2026", utc(2026, 11, 25)),
    ("1er février 2026", utc(2026, 2, 1)),
    ("Publié le 24 déc. 2025 à 8h05", utc(2025, 12, 24, 8, 5)),
    # Russian, month names in the genitive, also abbreviated
    ("25 ноября 2026", utc(2026, 11, 25)),
    ("25 ноября 2026, 11:30", utc(2026, 11, 25, 11, 30)),
    ("25 ноября 2026 г.", utc(2026, 11, 25)),
    ("25 нояб. 2026", utc(2026, 11, 25)),
    ("3 сент. 2026 г. в 7:45", utc(2026, 9, 3, 7, 45)),
    ("24 ноября 2026 в 14:30 (UTC+6)", utc(2026, 11, 24, 8, 30)),
    # without a year: the latest one not in the future
    ("24 ноября, 10:00", utc(2026, 11, 24, 10)),
    ("25 décembre", utc(2025, 12, 25)),
    # relative to now (2026-11-25 12:00 UTC)
    ("Сегодня, 11:30", utc(2026, 11, 25, 11, 30)),
    ("Вчера, 09:15", utc(2026, 11, 24, 9, 15)),
    ("Aujourd'hui à 11h30", utc(2026, 11, 25, 11, 30)),
    ("Aujourd’hui à 8h00", utc(2026, 11, 25, 8)),
    ("Hier", utc(2026, 11, 24)),
    ("avant-hier à 17h", utc(2026, 11, 23)),  # "17h" alone is not read as a time
    ("Today 11:30", utc(2026, 11, 25, 11, 30)),
    ("Yesterday", utc(2026, 11, 24)),
    ("3 hours ago", utc(2026, 11, 25, 9)),
    ("il y a 20 minutes", utc(2026, 11, 25, 11, 40)),
    ("2 дня назад", utc(2026, 11, 23, 12)),
    # today at a later hour is kept (up to a day ahead: clocks and zones differ)
    ("Today 23:00", utc(2026, 11, 25, 23)),
    # not dates, or in the future
    ("27.11.2026", None),
    ("November 25, 2027", None),
    ("31.11.2026", None),
    ("25.11.2026 25:00", None),
    ("Breaking news", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), DATES)
def test_parse_date(text: str, expected: datetime | None) -> None:
    assert parse_date(text, NOW) == expected


def page(items: str, head: str = "") -> bytes:
    return f"<html><head>{head}</head><body><ul>{items}</ul></body></html>".encode()


@pytest.mark.parametrize(
    ("selectors", "name"),
    [
        (Selectors(item="li", title=".t", date=".date"), "date"),
        (Selectors(item="li", title=".t", link="a.read-more"), "link"),
    ],
)
def test_a_selector_that_finds_nothing_in_any_item_fails_the_source(
    selectors: Selectors, name: str
) -> None:
    """The page changed: its items would be dated as of today (old ones
    published as news) or stored without their links (or with a section's)."""
    body = page('<li><a class="cat" href="/eco/">Eco</a><span class="t">Kazakhstan: budget</span>'
                '<span class="news-date">12 mai 2026</span><a class="more" href="/a/1">…</a></li>'
                '<li><span class="t">Uzbekistan: inflation</span></li>')  # fmt: skip
    with pytest.raises(ParseError) as error:
        run(body, selectors)
    expected = "date" if name == "date" else "link"
    assert str(error.value) == (
        f"{SOURCE}: the {expected} selector {getattr(selectors, name)!r} finds nothing in any"
        " of the 2 items: check it (the page may have changed)"
    )


def test_links_follow_base_href_and_a_link_to_the_page_itself_is_none() -> None:
    body = page(
        '<li><a class="t" href="communique-1.html">Ouzbékistan : accord</a></li>'
        '<li><a class="t" href="#" onclick="go(2)">Kazakhstan : budget</a></li>'
        '<li><a class="t" href="#" onclick="go(3)">Kirghizistan : élections</a></li>',
        head='<base href="https://www.diplomatie.example.fr/fr/actualites/">',
    )
    entries = run(body, UNDATED).entries
    assert [e.link for e in entries] == [
        "https://www.diplomatie.example.fr/fr/actualites/communique-1.html",
        None,
        None,
    ]
    assert len({e.guid for e in entries}) == 3  # each its own item


def test_the_same_article_under_other_tracking_parameters_is_one_item() -> None:
    body = page(
        '<li><a class="t" href="/a/7?utm_source=top">Tashkent opens a metro line</a></li>'
        '<li><a class="t" href="/a/7?utm_source=latest#comments">Tashkent opens a metro line</a>'
        "</li>"
    )
    [entry] = run(body, UNDATED).entries
    assert entry.guid == "https://news.example.org/a/7"


def test_words_of_nested_elements_stay_apart_in_a_title() -> None:
    body = page(
        '<li><h3 class="t"><span>Diplomatie</span><span>Turkménistan : gaz</span></h3></li>'
        '<li><h3 class="t"><a href="/b">Le partage de l’eau<br>avec le Tadjikistan</a></h3></li>'
    )
    titles = [e.title for e in run(body, UNDATED).entries]
    assert titles == ["Diplomatie Turkménistan : gaz", "Le partage de l’eau avec le Tadjikistan"]


def test_a_pseudo_element_is_an_invalid_selector_on_one_line() -> None:
    with pytest.raises(ParseError) as error:
        run(page('<li><h2 class="t">A</h2></li>'), Selectors(item="li", title="h2::text"))
    assert "invalid CSS selector 'h2::text'" in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Сегодня, 02:15", utc(2026, 11, 27, 21, 15)),  # today in Almaty is the 28th
        ("27 ноября 2026, 23:50", utc(2026, 11, 27, 18, 50)),
        ("Вчера, 23:40", utc(2026, 11, 27, 18, 40)),
        ("2026-11-27T23:50", utc(2026, 11, 27, 18, 50)),
        ("27.11.2026 23:50 МСК", utc(2026, 11, 27, 20, 50)),  # a zone given wins
    ],
)
def test_dates_of_a_page_in_its_own_time_zone(text: str, expected: datetime) -> None:
    """At 02:46 in Almaty (21:46 UTC), a page's "today" is already tomorrow
    in UTC terms; with UTC, its newest items sorted below older ones."""
    now = utc(2026, 11, 27, 21, 46)
    assert parse_date(text, now, ZoneInfo("Asia/Almaty")) == expected


def test_a_title_that_is_an_image_is_its_alt_text_and_noscript_is_left_out() -> None:
    body = page(
        '<li><a class="t" href="/a1"><img src="/c.jpg" alt="Uzbekistan cotton harvest"></a></li>'
        '<li><a class="t" href="/a2">Tajikistan: Rogun<noscript>Activez JavaScript</noscript>'
        "</a></li>"
    )
    titles = [e.title for e in run(body, UNDATED).entries]
    assert titles == ["Uzbekistan cotton harvest", "Tajikistan: Rogun"]


def test_an_undeclared_latin_1_french_page_is_not_read_as_utf_8() -> None:
    body = page('<li><a class="t" href="/a">Réforme de l’énergie au Kazakhstan</a></li>')
    body = body.decode("utf-8").replace("’", "'").encode("latin-1")
    assert [e.title for e in run(body, UNDATED).entries] == ["Réforme de l'énergie au Kazakhstan"]


def test_a_page_behind_basic_authentication_gives_links_without_its_credentials() -> None:
    body = page('<li><a class="t" href="/news/1">Ouzbékistan : accord</a></li>')

    parsed = run(body, UNDATED, url="https://news:s3cret@news.example.org/list/")

    assert parsed.feed.link == "https://news.example.org/list/"
    assert [e.link for e in parsed.entries] == ["https://news.example.org/news/1"]

"""aggregator.dedupe: canonical URLs, fingerprints, content hashes, story ids."""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import replace

import pytest

from aggregator.dedupe import (
    _PLAIN_URL,
    MIN_FINGERPRINT_WORDS,
    _canonical_parsed,
    canonical_url,
    content_hash,
    fingerprint,
    normalize_text,
    story_uid,
    without_tracking,
)
from aggregator.types import Entry

ARTICLE = "https://example.com/news/42"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (ARTICLE, ARTICLE),
        (f"{ARTICLE}?utm_source=tw&utm_medium=social&utm_campaign=x", ARTICLE),
        (f"{ARTICLE}?UTM_Source=tw", ARTICLE),
        (f"{ARTICLE}?fbclid=abc", ARTICLE),
        (f"{ARTICLE}?gclid=abc", ARTICLE),
        (f"{ARTICLE}?yclid=abc", ARTICLE),
        (f"{ARTICLE}?mc_cid=abc&mc_eid=def", ARTICLE),
        (f"{ARTICLE}?id=7&utm_source=x", f"{ARTICLE}?id=7"),
        (f"{ARTICLE}?b=2&a=1", f"{ARTICLE}?a=1&b=2"),
        ("HTTPS://Example.COM/news/42", ARTICLE),
        ("https://example.com/News/42", "https://example.com/News/42"),  # path case kept
        ("https://www.example.com/news/42", ARTICLE),
        ("https://m.example.com/news/42", ARTICLE),
        ("https://amp.example.com/news/42", ARTICLE),
        ("https://example.com:443/news/42", ARTICLE),
        ("http://example.com:80/news/42", "http://example.com/news/42"),
        ("https://example.com:8443/news/42", "https://example.com:8443/news/42"),
        (f"{ARTICLE}#comments", ARTICLE),
        (f"{ARTICLE}/", ARTICLE),
        (f"{ARTICLE}/amp", ARTICLE),
        (f"{ARTICLE}/amp/", ARTICLE),
        ("https://example.com/news//42", ARTICLE),
        ("https://example.com", "https://example.com/"),
        ("https://www.example.com/", "https://example.com/"),
        ("https://example.com/camp", "https://example.com/camp"),
        ("http://[::1]:8080/news/42", "http://[::1]:8080/news/42"),  # IPv6 keeps brackets
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_plain_urls_take_a_fast_path_with_the_same_result() -> None:
    """Links with nothing to change but a trailing slash skip parsing: on
    100,000 random URLs built from the parts that matter, the same key as
    the general way, which handles every other kind of URL."""
    rng = random.Random(27)
    plain = {
        "schemes": ["http", "https"],
        "hosts": ["a.example", "b.c.example", "x-y.example."],
        "segments": ["news", "a.html", "a%20b", "~t", "x;y", "!$&'()*+,=:@"],
        "tails": ["", "/"],
    }
    other = {
        "schemes": ["HTTPS", "ftp", "Http"],
        "hosts": [
            "www.a.example",
            "m.a",
            "amp.b.example",
            "mobile.c.d",
            "A.Example",
            "[::1]",
            "user@a.example",
            "a.example:8080",
            "a.example:443",
            "",
        ],
        "segments": ["amp", "", "Ünï", " ", "\\", "..", "<", '"q"'],
        "tails": ["//", "?utm_source=x", "?b=2&a=1", "?", "#frag", "?x=1#f"],
    }

    def part(kind: str) -> str:
        return rng.choice((plain if rng.random() < 0.85 else other)[kind])

    checked = fast = 0
    for _ in range(100_000):
        path = "".join("/" + part("segments") for _ in range(rng.randrange(4)))
        url = f"{part('schemes')}://{part('hosts')}{path}{part('tails')}"
        url = rng.choice(["", " ", "\t"]) + url + rng.choice(["", " "])
        assert canonical_url(url) == _canonical_parsed(url.strip()), repr(url)
        checked += 1
        fast += _PLAIN_URL.fullmatch(url.strip()) is not None
    assert checked == 100_000 and 10_000 < fast < 90_000


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.com/news/42", "https://example.com/news/43"),
        ("https://example.com/news?id=1", "https://example.com/news?id=2"),
        ("https://example.com/news/42", "https://example.org/news/42"),
        ("https://example.com/news/42", "https://example.com:8443/news/42"),
        ("https://example.com/a/b", "https://example.com/a"),
    ],
)
def test_canonical_url_keeps_articles_apart(a: str, b: str) -> None:
    assert canonical_url(a) != canonical_url(b)


def entry(title: str, summary: str | None = None, **kwargs: object) -> Entry:
    fields: dict[str, object] = {
        "source_url": "https://example.org/feed",
        "guid": "g-1",
        "link": ARTICLE,
        **kwargs,
    }
    return Entry(title=title, summary=summary, **fields)  # type: ignore[arg-type]


TITLE = "Le Kazakhstan élit son nouveau parlement après une campagne courte"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (entry(TITLE), entry(TITLE.upper())),
        (entry(TITLE), entry("Le Kazakhstan elit son nouveau parlement apres une campagne courte")),
        (
            entry(TITLE),
            entry("« Le Kazakhstan élit son nouveau parlement, après une campagne courte ! »"),
        ),
        (entry(TITLE, "<p>Le <b>vote</b> a eu lieu.</p>"), entry(TITLE, "Le vote a eu lieu.")),
        (entry(TITLE, "<p>Le&nbsp;vote&nbsp;: oui</p>"), entry(TITLE, "<p>Le vote : oui</p>")),
        (
            entry("Ёлка в Астане и ещё пять слов для отпечатка"),
            entry("ЕЛКА в Астане и еще пять слов для отпечатка"),
        ),
        (entry(TITLE, guid="other", link=None), entry(TITLE)),  # identity is not content
    ],
    ids=["case", "accents", "punctuation", "markup", "nbsp-entity", "yo", "other-ids"],
)
def test_fingerprint_equal(a: Entry, b: Entry) -> None:
    assert fingerprint(a) is not None
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (entry(TITLE), entry(TITLE.replace("nouveau", "premier"))),
        (entry(TITLE, "Le vote a eu lieu."), entry(TITLE, "Le vote est reporté.")),
        (entry(TITLE), entry(" ".join(reversed(TITLE.split())))),
    ],
)
def test_fingerprint_different(a: Entry, b: Entry) -> None:
    assert fingerprint(a) != fingerprint(b)


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("Exchange rates for 12 May", None),
        ("Курс доллара на 12 мая", "<p>&nbsp;</p>"),
        (" ".join(["word"] * (MIN_FINGERPRINT_WORDS - 1)), None),
    ],
)
def test_fingerprint_too_short(title: str, summary: str | None) -> None:
    assert fingerprint(entry(title, summary)) is None


def test_fingerprint_counts_title_and_summary_words() -> None:
    assert fingerprint(entry("four words in title", "four more in summary")) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ouzbékistan : l'été!", "ouzbekistan l ete"),
        ("ЁЛКА  в   Астане", "елка в астане"),
        ("", ""),
        # ASCII text takes a faster path: the same words
        ("  Snake_case, 12.5%\x1cand\ttabs--x ", "snake_case 12 5 and tabs x"),
        ("Cafe\u0301 l'e\u0301te\u0301", "cafe l ete"),  # ASCII once accents are dropped
        ("ﬁn ½ ß", "fin 1 2 ss"),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


def test_normalize_text_ascii_path_agrees_with_the_regex() -> None:
    """Every pair of ASCII characters gives the words ``\\w+`` finds."""
    chars = [chr(n) for n in range(128)]
    for text in (a + b + "x" for a in chars for b in chars):
        assert normalize_text(text) == " ".join(re.findall(r"\w+", text.lower())), repr(text)


@pytest.mark.parametrize("codec", ["latin-1", "cp1251"])
def test_normalize_text_code_page_path_agrees_with_the_regex(codec: str) -> None:
    """Texts of a code page's characters (French, Russian) take a byte
    translation: the same words as ``\\w+`` finds in their fold."""
    from aggregator.dedupe import _fold

    page = [c for c in bytes(range(256)).decode(codec, errors="ignore") if c != "\ufffd"]
    rng = random.Random(codec)
    texts = [a + b + "x" for a in page for b in ("a", " ", "-", "é", "й", "Ё", "ß")]
    texts += ["".join(rng.choices(page, k=rng.randrange(1, 40))) for _ in range(3000)]
    for text in texts:
        assert normalize_text(text) == " ".join(re.findall(r"\w+", _fold(text))), repr(text)


BASE = entry(TITLE, "<p>Le vote.</p>", categories=("Politique",))


@pytest.mark.parametrize(
    "changed",
    [
        replace(BASE, title=TITLE + " anticipé"),
        replace(BASE, summary="<p>Le vote a eu lieu.</p>"),
        replace(BASE, summary=None),
        replace(BASE, link="https://example.com/news/43"),
        replace(BASE, categories=("Politique", "Élections")),
    ],
)
def test_content_hash_changes(changed: Entry) -> None:
    assert content_hash(changed) != content_hash(BASE)


def test_content_hash_ignores_what_a_reader_does_not_see() -> None:
    assert content_hash(replace(BASE, guid="other")) == content_hash(BASE)
    assert content_hash(BASE) == content_hash(
        entry(TITLE, "<p>Le vote.</p>", categories=("Politique",))
    )


def test_story_uid_is_a_stable_urn_uuid() -> None:
    uid = story_uid(BASE)
    assert uid.startswith("urn:uuid:")
    assert uuid.UUID(uid.removeprefix("urn:uuid:")).version == 5
    assert uid == story_uid(replace(BASE, title="Edited title", summary=None))
    assert uid != story_uid(replace(BASE, guid="g-2"))
    assert uid != story_uid(replace(BASE, source_url="https://example.net/feed"))


@pytest.mark.parametrize("guid", ["g-1", "https://example.org/a?b=1#c", "Қазақстан-ёж", ""])
def test_story_uid_is_the_standard_uuid5_of_source_and_guid(guid: str) -> None:
    # Published ids must never change: the fast construction is uuid5 exactly.
    expected = uuid.uuid5(uuid.NAMESPACE_URL, f"{BASE.source_url}\n{guid}").urn
    assert story_uid(replace(BASE, guid=guid)) == expected


@pytest.mark.parametrize(
    ("url", "published"),
    [
        ("https://a.example/x", "https://a.example/x"),
        ("https://a.example/x?utm_source=rss&utm_medium=feed", "https://a.example/x"),
        ("https://a.example/x?id=5&fbclid=abc#top", "https://a.example/x?id=5#top"),
        ("https://a.example/x?q=a%20b&UTM_Campaign=z&p=2", "https://a.example/x?q=a%20b&p=2"),
        ("https://a.example/x?a=1&&b=2", "https://a.example/x?a=1&b=2"),
        ("https://a.example/x#part?utm_source=rss", "https://a.example/x#part?utm_source=rss"),
        ("https://A.example/x/?b=2&a=1", "https://A.example/x/?b=2&a=1"),  # the rest as written
    ],
)
def test_published_links_lose_their_tracking_parameters_only(url: str, published: str) -> None:
    assert without_tracking(url) == published
    assert canonical_url(without_tracking(url)) == canonical_url(url)

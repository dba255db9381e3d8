"""The lxml fast path gives exactly what feedparser gives, or declines.

Run over every sample feed of the project and, where it is present (CI has
it), feedparser's own test corpus of 2,240 feeds beside the project.
"""

from __future__ import annotations

import calendar
import email.utils
import random
from datetime import UTC
from pathlib import Path

import pytest

from aggregator import parse as parse_module
from aggregator.errors import ParseError
from aggregator.fastparse import _rfc822, parse_fast
from aggregator.types import FetchResult, ParsedFeed

ROOT = Path(__file__).parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "feedparser-corpus"
SAMPLES = sorted(
    p
    for pattern in ("tests/data/**/*.xml", "tests/data/**/*.atom", "demo/feeds/*")
    for p in ROOT.glob(pattern)
)
CORPUS_FILES = sorted(CORPUS.glob("**/*.xml")) if CORPUS.is_dir() else []


def outcome(body: bytes, fast: bool, monkeypatch: pytest.MonkeyPatch) -> ParsedFeed | str:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(parse_module, "parse_fast", lambda body, headers: None)
        try:
            return parse_module.parse("s", FetchResult("https://feed.example/f", body, {}))
        except ParseError as e:
            return f"ParseError: {e.reason}"


def test_the_fast_path_serves_most_samples() -> None:
    used = [p for p in SAMPLES if parse_fast(parse_module.defuse("s", p.read_bytes()), {})]
    assert len(used) >= len(SAMPLES) // 2


@pytest.mark.parametrize("path", SAMPLES + CORPUS_FILES, ids=lambda p: p.name)
def test_fast_and_universal_paths_agree(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = path.read_bytes()
    assert outcome(body, True, monkeypatch) == outcome(body, False, monkeypatch)


def test_the_usual_rss_dates_read_as_email_utils_reads_them() -> None:
    """The short path for "Fri, 27 Nov 2026 10:00:00 +0100" agrees with
    email.utils on generated dates, impossible ones included."""
    rng = random.Random(7)
    days, months = "Mon Tue Wed Thu Fri Sat Sun".split(), [*calendar.month_abbr[1:], "Foo"]
    zones = ["GMT", "UT", "UTC", "Z", "+0000", "-0000", "+0530", "-1100", "EST", "+0960"]
    read = 0
    for _ in range(20_000):
        day = rng.randint(0, 32)
        value = (
            f"{rng.choice(days) + ', ' if rng.random() < 0.8 else ''}{day:02d} "
            if rng.random() < 0.5
            else f"{day} "
        ) + (
            f"{rng.choice(months)} {rng.randint(1990, 2030)} {rng.randint(0, 24):02d}:"
            f"{rng.randint(0, 60):02d}:{rng.randint(0, 61):02d} {rng.choice(zones)}"
        )
        fast = _rfc822(value)
        if fast is None:
            continue
        read += 1
        expected = email.utils.parsedate_to_datetime(value)
        assert fast == (expected.replace(tzinfo=UTC) if expected.tzinfo is None else expected)
    assert read > 10_000


def test_links_relative_to_an_xml_base_are_resolved_against_it() -> None:
    """The fast path does not read xml:base: such documents go to feedparser,
    so a link resolves as the feed means it, not against the fetched URL."""
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://steppe.example/">
  <title>Steppe</title><id>tag:steppe.example,2026:feed</id><updated>2026-11-27T10:00:00Z</updated>
  <entry xml:base="https://other.example/articles/">
    <title>Sommet au Kazakhstan</title><id>tag:steppe.example,2026:1</id>
    <updated>2026-11-27T10:00:00Z</updated><link href="kz-sommet"/>
  </entry>
</feed>"""
    assert parse_fast(body, {}) is None
    fetched = FetchResult("http://127.0.0.1:8765/feed.atom", body, {})
    parsed = parse_module.parse("http://127.0.0.1:8765/feed.atom", fetched)
    assert [e.link for e in parsed.entries] == ["https://other.example/articles/kz-sommet"]

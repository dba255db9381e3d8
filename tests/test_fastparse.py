"""The lxml fast path gives exactly what feedparser gives, or declines.

Run over every sample feed of the project and, where it is present (CI has
it), feedparser's own test corpus of 2,240 feeds beside the project.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator import parse as parse_module
from aggregator.errors import ParseError
from aggregator.fastparse import parse_fast
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

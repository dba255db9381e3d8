"""Known XSS payloads through the whole pipeline: none survives in any published file."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

from lxml import etree

from .support import ATOM, DATA, FeedServer, write_config

DANGEROUS = re.compile(
    r"<\s*(script|style|iframe|object|embed|form|meta|svg|math|base)\b"
    r"|\bon[a-z]+\s*="
    r"|(java|vb)\s*script\s*:"
    r"|\bdata\s*:"
    r"|expression\s*\(",
    re.IGNORECASE,
)


def assert_safe(text: str, where: str) -> None:
    """No dangerous markup, raw or once unescaped (what a reader renders)."""
    for candidate in (text, html.unescape(text)):
        match = DANGEROUS.search(candidate)
        found = match.group() if match else ""
        assert match is None, f"{where}: {found!r} in {candidate[:300]!r}"


def test_no_payload_survives_in_any_output(server: FeedServer, tmp_path: Path) -> None:
    feeds = DATA / "feeds"
    sources = [
        {"name": "Evil RSS", "url": server.serve("/rss", (feeds / "xss_rss.xml").read_bytes())},
        {"name": "Evil Atom", "url": server.serve("/atom", (feeds / "xss_atom.xml").read_bytes())},
    ]
    config = write_config(tmp_path, sources, output={"dir": "output", "json_feed": True})

    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "refresh", "--config", str(config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    out = tmp_path / "output"
    kazakhstan = etree.parse(str(out / "kazakhstan.xml")).getroot()
    uzbekistan = etree.parse(str(out / "uzbekistan.xml")).getroot()
    assert len(kazakhstan.findall("a:entry", ATOM)) == 1  # the payloads were published...
    assert len(uzbekistan.findall("a:entry", ATOM)) == 1
    for path in out.iterdir():
        if path.suffix == ".xml":
            root = etree.parse(str(path)).getroot()
            for element in root.iter():
                for value in [element.text or "", *element.attrib.values()]:
                    assert_safe(value, f"{path.name} <{element.tag}>")
        elif path.suffix == ".json":
            for item in json.loads(path.read_text(encoding="utf-8"))["items"]:
                for value in item.values():
                    assert_safe(json.dumps(value, ensure_ascii=False), f"{path.name} item")
        elif path.suffix == ".html":  # our own <head> has meta and style: check the body
            page = path.read_text(encoding="utf-8")
            assert "<script" not in page.lower()
            assert_safe(page.split("<body>", 1)[1], path.name)
        elif path.suffix == ".opml":
            assert_safe(path.read_text(encoding="utf-8"), path.name)
    # ...as plain-text titles and clean HTML, with what was harmless kept.
    entry = kazakhstan.find("a:entry", ATOM)
    assert entry is not None
    assert entry.findtext("a:title", namespaces=ATOM) == "Kazakhstan votes"
    assert "Astana" in (entry.findtext("a:content", namespaces=ATOM) or "")
    assert entry.find("a:link", ATOM) is None  # the javascript: link is gone

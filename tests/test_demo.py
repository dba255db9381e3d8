"""`make demo`'s entry point, on the bundled samples, checked against demo/expected.json."""

from __future__ import annotations

import html
import json
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from aggregator.dedupe import without_tracking

from .support import entries

ROOT = Path(__file__).parent.parent
EXPECTED = json.loads((ROOT / "demo" / "expected.json").read_text(encoding="utf-8"))["items"]
SLUGS = {
    "kz": "kazakhstan",
    "kg": "kyrgyzstan",
    "tj": "tajikistan",
    "tm": "turkmenistan",
    "uz": "uzbekistan",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    output = tmp_path_factory.mktemp("demo") / "demo-output"
    result = subprocess.run(
        [sys.executable, "-m", "aggregator.demo", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return output, result.stdout


def test_samples_are_many_and_marked_as_samples() -> None:
    assert len(EXPECTED) >= 60
    for feed in (ROOT / "demo" / "feeds").iterdir():
        head = feed.read_bytes()[:1500].decode("utf-8", "replace")
        assert "SAMPLE" in head.upper() or "образец" in head or "exemple" in head


def test_every_item_lands_in_its_country_feeds_and_nowhere_else(demo: tuple[Path, str]) -> None:
    """An item lands in a feed as an entry of its own, or as an "Also reported
    by" link of the story it repeats; either way only in its countries' feeds."""
    output, _ = demo
    for slug in (*SLUGS.values(), "central-asia"):
        feed = entries(output / f"{slug}.xml")
        titles = Counter(str(e["title"]) for e in feed)
        contents = " ".join(str(e["content"]) for e in feed)
        for item in EXPECTED:
            labels = set(item["expected"])
            wanted = labels != {"drop"} if slug == "central-asia" else slug_code(slug) in labels
            landed = item["title"] in titles or f'href="{html.escape(item["link"])}"' in contents
            assert landed == wanted, (slug, item["title"])


def slug_code(slug: str) -> str:
    return next(code for code, name in SLUGS.items() if name == slug)


def test_copies_are_one_entry_that_names_the_other_outlet(demo: tuple[Path, str]) -> None:
    output, _ = demo
    feed = entries(output / "central-asia.xml")
    copies = [i for i in EXPECTED if i["duplicate_kind"] in ("agency_copy", "tracking_url")]
    assert len(copies) == 6
    for copy in copies:
        same = [e for e in feed if e["title"] == copy["title"]]
        assert len(same) <= 1, copy["title"]  # a copy with the original's title: one entry
        original = next(e for e in feed if e["link"] == copy["duplicate_of"])
        assert "Also reported by" in str(original["content"])
        assert "Caspian Agency (sample)" in str(original["content"])
        # the copy's link, without its tracking parameters
        assert f'href="{html.escape(without_tracking(copy["link"]))}"' in str(original["content"])


def test_demo_prints_the_tour_and_its_explain_command_works(demo: tuple[Path, str]) -> None:
    output, stdout = demo
    assert "5 sources: 5 updated, 0 unchanged, 0 failed" in stdout
    assert "also reported by" in stdout
    assert f"Open {output / 'index.html'} in a browser." in stdout
    index = (output / "index.html").read_text(encoding="utf-8")
    assert index.count('type="application/atom+xml"') == 6
    line = next(x for x in stdout.splitlines() if "aggregator explain" in x)
    args = shlex.split(line)[2:]  # after ".venv/bin/aggregator explain"
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "explain", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "story:   urn:uuid:" in result.stdout
    assert "outcome: published" in result.stdout

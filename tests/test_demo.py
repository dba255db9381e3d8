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
    output, _ = demo
    published = {
        slug: entries(output / f"{slug}.xml") for slug in (*SLUGS.values(), "central-asia")
    }
    titles = {slug: Counter(str(e["title"]) for e in feed) for slug, feed in published.items()}
    for item in EXPECTED:
        if item["duplicate_kind"] in ("agency_copy", "tracking_url"):
            continue  # merged into the original's entry: see the next test
        labels = set(item["expected"])
        for code, slug in SLUGS.items():
            assert (item["title"] in titles[slug]) == (code in labels), (slug, item["title"])
        assert (item["title"] in titles["central-asia"]) == (labels != {"drop"}), item["title"]


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
        assert f'href="{html.escape(copy["link"])}"' in str(original["content"])


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

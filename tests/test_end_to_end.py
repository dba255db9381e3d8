"""The whole pipeline through the command line, against a real loopback server,
on each backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .support import DATA, FeedServer, Route, assert_valid_atom, entries, write_config

FEEDS = DATA / "feeds"
SLUGS = ("kazakhstan", "kyrgyzstan", "tajikistan", "turkmenistan", "uzbekistan", "central-asia")


def aggregator(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture
def farm(server: FeedServer, tmp_path: Path, storage: str | None) -> Path:
    """Three outlets, an agency repeating them, a broken source, a refused one."""
    sources = [
        {"name": "Courrier", "url": server.serve("/fr.xml", (FEEDS / "fr_rss.xml").read_bytes())},
        {"name": "Wire", "url": server.serve("/en.atom", (FEEDS / "en_atom.xml").read_bytes())},
        {
            "name": "Vesti",
            "url": server.serve("/ru.xml", (FEEDS / "ru_rss.xml").read_bytes()),
            "language": "ru",
        },
        {"name": "Agence",
         "url": server.serve("/agency.xml", (FEEDS / "fr_agency.xml").read_bytes())},
        {"name": "Broken", "url": server.serve("/500.xml", b"oops", status=500)},
        {"name": "Not a feed", "url": server.serve("/page", b"<html><body>Hi</body></html>",
                                                   content_type="text/html")},
        {"name": "Refused", "url": "http://127.0.0.1:9/feed.xml"},
    ]  # fmt: skip
    return write_config(tmp_path, sources, **({"storage": storage} if storage else {}))


def titles(path: Path) -> set[str]:
    return {str(e["title"]) for e in entries(path)}


def test_refresh_publishes_each_item_in_its_country_feeds(farm: Path) -> None:
    result = aggregator("refresh", "--config", str(farm))

    assert result.returncode == 0, result.stderr
    out = farm.parent / "output"
    for slug in SLUGS:
        assert_valid_atom(out / f"{slug}.xml")
    assert titles(out / "kazakhstan.xml") == {
        "Kazakhstan : inondations dans la région de Kostanaï",
        "À Astana, les dirigeants d'Asie centrale réunis pour un sommet",
        "Наводнение в Казахстане: эвакуированы тысячи жителей",
    }
    assert titles(out / "kyrgyzstan.xml") == {
        "Le Kirghizistan adopte une nouvelle loi sur les médias",
        "Tajikistan and Kyrgyzstan sign border agreement",
    }
    assert titles(out / "tajikistan.xml") == {
        "Tajikistan and Kyrgyzstan sign border agreement",
        "В Таджикистане запустили новую ГЭС",
    }
    assert titles(out / "turkmenistan.xml") == {
        "Turkmenistan boosts gas exports to China",
        "Туркменистан увеличил поставки газа",
    }
    assert titles(out / "uzbekistan.xml") == {
        "Ouzbékistan : un nouveau terminal à l'aéroport de Tachkent",
        "Uzbekistan opens a new terminal at Tashkent airport",
    }
    everything = titles(out / "central-asia.xml")
    assert "Central Asian states discuss water sharing" in everything
    assert len(everything) == 11
    for dropped in (
        "Géorgie : manifestations massives à Tbilissi",
        "Average salary in Mongolia reaches 2 million tugriks",
        "Землетрясение магнитудой 6,1 произошло в Японии",
        "Ошибка пилота стала причиной крушения самолёта в Непале",
    ):
        assert dropped not in everything


def test_refresh_reports_failed_sources_and_still_publishes(farm: Path) -> None:
    result = aggregator("refresh", "--config", str(farm))

    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line}
    assert "HTTP 500" in lines["Broken"]
    assert "HTML page" in lines["Not"]
    assert "error" in lines["Refused"]
    assert "ok" in lines["Courrier"]
    assert "7 sources: 4 updated, 0 unchanged, 3 failed" in result.stdout


def test_quiet_refresh_prints_the_failed_sources_only(farm: Path) -> None:
    """From cron (``-q``), the failures are the output, on stderr: it is mailed."""
    result = aggregator("-q", "refresh", "--config", str(farm))

    assert result.returncode == 0
    assert result.stdout == ""
    failed = sorted(line.split(":")[1].strip() for line in result.stderr.splitlines())
    assert failed == ["Broken", "Not a feed", "Refused"]
    assert all(line.startswith("error: ") for line in result.stderr.splitlines())
    assert "error: Broken: HTTP 500" in result.stderr

    again = aggregator("-q", "refresh", "--config", str(farm))  # failed ones are not due yet
    assert (again.stdout, again.stderr) == ("", "")


def test_entries_carry_link_author_categories_and_stable_ids(farm: Path) -> None:
    aggregator("refresh", "--config", str(farm))

    feed = {e["title"]: e for e in entries(farm.parent / "output" / "central-asia.xml")}
    border = feed["Tajikistan and Kyrgyzstan sign border agreement"]
    assert border["link"] == "https://wire.test.example/2026/11/border-deal"
    assert border["author"] == "Wire"
    assert border["categories"] == ["kg", "tj"]
    assert str(border["id"]).startswith("urn:uuid:")
    summit = feed["À Astana, les dirigeants d'Asie centrale réunis pour un sommet"]
    assert summit["categories"] == ["kz", "region"]


def test_tracking_url_and_agency_copy_are_one_entry(farm: Path) -> None:
    aggregator("refresh", "--config", str(farm))

    out = farm.parent / "output"
    kz = [e for e in entries(out / "kazakhstan.xml") if "Kostana" in str(e["title"])]
    assert len(kz) == 1
    assert kz[0]["link"] == "https://courrier.test.example/2026/11/inondations-kostanai"
    assert "Agence" in str(kz[0]["content"])  # "Également rapporté par : Agence"
    kg = [e for e in entries(out / "kyrgyzstan.xml") if "médias" in str(e["title"])]
    assert len(kg) == 1
    assert kg[0]["author"] == "Courrier"
    assert "Également rapporté par" in str(kg[0]["content"])  # a French entry
    assert "agence.test.example/depeches" in str(kg[0]["content"])


def test_second_refresh_publishes_no_duplicate_and_rewrites_nothing(
    farm: Path, server: FeedServer
) -> None:
    aggregator("refresh", "--config", str(farm))
    out = farm.parent / "output"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}

    result = aggregator("refresh", "--force", "--config", str(farm))

    assert result.returncode == 0
    assert "0 new items" in result.stdout
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert after == before
    # The second request of each good source was conditional and answered 304.
    assert server.hits("/fr.xml")[-1].get("If-None-Match")


def test_changed_feed_adds_new_items_and_updates_changed_ones(
    farm: Path, server: FeedServer
) -> None:
    aggregator("refresh", "--config", str(farm))
    body = (FEEDS / "fr_rss.xml").read_text(encoding="utf-8")
    body = body.replace("huit millions", "dix millions")  # the text of item 103 changes
    server.routes["/fr.xml"] = Route(body=body.encode())

    result = aggregator("-v", "refresh", "--force", "--config", str(farm))

    assert "new=0 changed=1" in result.stderr
    uz = entries(farm.parent / "output" / "uzbekistan.xml")
    terminal = [e for e in uz if "Ouzbékistan" in str(e["title"])]
    assert len(terminal) == 1
    assert "dix millions" in str(terminal[0]["content"])


def test_paths_are_relative_to_the_config_not_the_working_directory(
    farm: Path, tmp_path: Path, storage: str | None
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = aggregator("refresh", "--config", str(farm), cwd=elsewhere)

    assert result.returncode == 0
    assert (farm.parent / "output" / "kazakhstan.xml").exists()
    assert (farm.parent / "aggregator.sqlite").exists() == (storage is None)
    assert list(elsewhere.iterdir()) == []


def test_explain_names_the_story_its_members_and_how_they_joined(farm: Path) -> None:
    aggregator("refresh", "--config", str(farm))
    link = "https://agence.test.example/depeches/2026-11-23-kirghizistan-medias"

    result = aggregator("explain", "--config", str(farm), link)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("  story:   urn:uuid:") and "2 report(s)" in line for line in lines)
    first, second = [line for line in lines if line.startswith(("   *", "    "))][-2:]
    # The earliest report represents the story; the two sources are refreshed
    # concurrently, so either may have been stored first.
    assert "Courrier: Le Kirghizistan adopte" in first
    assert second.startswith("   * Agence:")  # the item explained
    joins = {first.rsplit("  [", 1)[1], second.rsplit("  [", 1)[1]}
    assert joins in (
        {"started the story]", "same text as Courrier's item]"},
        {"started the story]", "same text as Agence's item]"},
    )


def test_a_page_without_a_feed_is_scraped_into_the_feeds(
    server: FeedServer, tmp_path: Path
) -> None:
    page = (DATA / "pages" / "fr_regional.html").read_bytes()
    url = server.serve("/actualites", page, content_type="text/html; charset=utf-8")
    config = write_config(
        tmp_path,
        [
            {
                "name": "Page régionale",
                "url": url,
                "type": "html",
                "language": "fr",
                "selectors": {
                    "item": "article.post",
                    "title": "h2",
                    "link": "h2 a",
                    "date": "time",
                    "summary": "p.excerpt",
                },
            }
        ],
    )

    result = aggregator("refresh", "--config", str(config))

    assert result.returncode == 0, result.stderr
    assert " ok " in result.stdout
    # The page's sponsored block has no title: the editor is told.
    assert "note: 1 of 4 items matching 'article.post' have no title matching 'h2'" in (
        result.stdout
    )
    published = entries(tmp_path / "output" / "central-asia.xml")
    assert published
    assert {e["author"] for e in published} == {"Page régionale"}
    for e in published:
        assert str(e["link"]).startswith("http")


def test_a_changed_configuration_republishes_even_with_nothing_new(farm: Path) -> None:
    aggregator("refresh", "--config", str(farm))
    quiet = aggregator("refresh", "--force", "--config", str(farm))
    text = farm.read_text(encoding="utf-8").replace(
        "output:", "site:\n  title: Steppe News\noutput:", 1
    )
    farm.write_text(text, encoding="utf-8")

    renamed = aggregator("refresh", "--force", "--config", str(farm))

    assert "0 files written" in quiet.stdout
    assert "0 new items" in renamed.stdout and "0 files written" not in renamed.stdout
    feed = (farm.parent / "output" / "kazakhstan.xml").read_text(encoding="utf-8")
    assert "<title>Steppe News: Kazakhstan</title>" in feed


def test_an_output_taken_out_of_the_configuration_is_removed(farm: Path) -> None:
    text = farm.read_text(encoding="utf-8")
    farm.write_text(
        text.replace("output:", "outputs:\n  - {slug: extra, countries: [kg]}\noutput:", 1).replace(
            "output:\n", "output:\n  json_feed: true\n", 1
        ),
        encoding="utf-8",
    )
    assert aggregator("refresh", "--config", str(farm)).returncode == 0
    out = farm.parent / "output"
    assert {"extra.xml", "extra.json", "kazakhstan.json"} <= {p.name for p in out.iterdir()}
    (out / "kyrgyzstan.json").write_text("{}")  # replaced by hand: no longer ours
    farm.write_text(text, encoding="utf-8")

    result = aggregator("refresh", "--config", str(farm))

    assert result.returncode == 0, result.stderr
    assert "(7 removed)" in result.stdout  # extra.xml, extra.json, 5 of the 6 other JSON feeds
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert names == {
        "kazakhstan.xml", "kyrgyzstan.xml", "tajikistan.xml", "turkmenistan.xml",
        "uzbekistan.xml", "central-asia.xml", "index.html", "feeds.opml", "feed.xsl",
        "kyrgyzstan.json",
    }  # fmt: skip
    assert "extra" not in (out / "index.html").read_text(encoding="utf-8")


def test_a_renamed_outlet_is_published_under_its_new_name(farm: Path) -> None:
    aggregator("refresh", "--config", str(farm))
    farm.write_text(farm.read_text(encoding="utf-8").replace("Courrier", "Le Courrier"))

    # No source is due yet: only the name changed.
    renamed = aggregator("refresh", "--config", str(farm))

    assert renamed.returncode == 0, renamed.stderr
    authors = {e["author"] for e in entries(farm.parent / "output" / "central-asia.xml")}
    assert "Le Courrier" in authors and "Courrier" not in authors


def rss(*items: tuple[str, str, str, str]) -> bytes:
    """An RSS 2.0 feed of (link, title, description, pubDate) items, without guids."""
    body = "".join(
        f"<item><title>{title}</title><link>{link}</link><description>{text}</description>"
        f"<pubDate>{date}</pubDate></item>"
        for link, title, text, date in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Kabar</title>'
        f"<link>https://kabar.example/</link>{body}</channel></rss>"
    ).encode()


FLOOD_TEXT = (
    "Heavy rains flooded twelve villages of the Batken region overnight; the emergency "
    "ministry evacuated 340 residents and opened two shelters in the district centre."
)
STORM_TEXT = (
    "A storm damaged power lines across the Chui valley; electricity was restored in most "
    "districts by the evening, the national grid operator said."
)


def test_an_item_without_guid_moved_to_a_new_link_is_not_published_twice(
    server: FeedServer, tmp_path: Path, storage: str | None
) -> None:
    """RSS without <guid>: items are known by their links. Fixing a headline
    often changes the slug of the link too, and the item comes back as new."""
    first = ("https://kabar.example/news/flods-in-batken", "Flods in Batken region of Kyrgyzstan",
             FLOOD_TEXT, "Fri, 27 Nov 2026 06:00:00 GMT")  # fmt: skip
    storm = ("https://kabar.example/news/storm-chui", "Storm cuts power in Chui valley, Kyrgyzstan",
             STORM_TEXT, "Fri, 27 Nov 2026 07:00:00 GMT")  # fmt: skip
    url = server.serve("/kabar.xml", rss(first, storm))
    config = write_config(tmp_path, [{"name": "Kabar", "url": url}],
                          **({"storage": storage} if storage else {}))  # fmt: skip
    assert aggregator("refresh", "--config", str(config)).returncode == 0

    fixed = ("https://kabar.example/news/floods-in-batken", "Floods in Batken region of Kyrgyzstan",
             FLOOD_TEXT, "Fri, 27 Nov 2026 06:00:00 GMT")  # fmt: skip
    server.routes["/kabar.xml"] = Route(body=rss(fixed, storm))
    result = aggregator("-v", "refresh", "--force", "--config", str(config))

    assert "new=1" in result.stderr  # the moved item is stored...
    published = entries(tmp_path / "output" / "kyrgyzstan.xml")
    floods = [e for e in published if "Batken" in str(e["title"])]
    assert len(floods) == 1  # ...as a report of the story it repeats, which it represents:
    assert (floods[0]["title"], floods[0]["link"]) == (fixed[1], fixed[0])
    assert len(published) == 2  # the storm, another story of the source, stays apart
    explained = aggregator("explain", "--config", str(config), fixed[0])
    assert "moved to this link" in explained.stdout, explained.stdout


def test_items_without_an_id_of_their_own_are_told_from_items_with_a_guid() -> None:
    from aggregator.parse import parse
    from aggregator.pipeline import without_own_id
    from aggregator.types import FetchResult

    body = (
        b'<rss version="2.0"><channel><title>T</title>'
        b"<item><title>A</title><link>https://x.example/news/a?utm_source=rss</link></item>"
        b"<item><title>B</title><link>/news/b c</link></item>"
        b"<item><title>C</title><guid>urn:x:1</guid><link>/news/c</link></item>"
        b"<item><title>D</title><guid>https://x.example/news/d</guid></item>"
        b"<item><title>E</title><description>No link, no guid.</description></item>"
        b"<item><title>F</title><guid>urn:x:2</guid></item>"
        b"</channel></rss>"
    )

    entries = parse("s", FetchResult("https://x.example/rss", body)).entries

    assert [without_own_id(e) for e in entries] == [True, True, False, True, True, False]

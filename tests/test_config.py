"""feeds.yaml: the contract, defaults, and errors that name file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.errors import ConfigError
from aggregator.types import PostgresURL, Source


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_issue_contract_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
output:
  dir: output          # relative to this file
  max_entries: 100     # per published feed (optional)
sources:
  - name: Some outlet
    url: https://example.org/rss
    language: fr       # optional
""",
    )

    config = load_config(path)

    assert config.output.dir == tmp_path / "output"
    assert config.output.max_entries == 100
    assert config.storage == tmp_path / "aggregator.sqlite"
    assert config.sources == (Source("Some outlet", "https://example.org/rss", "fr"),)
    assert config.interval_minutes == 30


def test_classify_rules_and_source_country(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
classify:
  kg:
    add: [Ala-Archa, Ала-Арча]
  kz:
    exclude: Astana Motors
  region:
    add: [Silk Road]
sources:
  - url: https://24.kg/rss/
    country: KG
""",
    )

    config = load_config(path)

    assert config.classify.add == {"kg": ("Ala-Archa", "Ала-Арча"), "region": ("Silk Road",)}
    assert config.classify.exclude == {"kz": ("Astana Motors",)}
    assert config.sources[0].country == "kg"
    assert config.sources[0].priority == 0
    assert config.retention_days == 30


def test_defaults_and_every_optional_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
storage: data/store.db
site: {base_url: "https://news.example.org/feeds", title: Steppe News}
schedule: {interval_minutes: 15}
fetch: {concurrency: 4, per_host: 1, timeout: 10, max_bytes: 1000, contact: "ops@example.org"}
sources:
  - url: https://example.org/rss
""",
    )

    config = load_config(path)

    assert config.storage == tmp_path / "data" / "store.db"
    assert config.output.dir == tmp_path / "output"
    assert config.site.base_url == "https://news.example.org/feeds/"
    assert config.site.title == "Steppe News"
    assert config.interval_minutes == 15
    assert (config.fetch.concurrency, config.fetch.per_host) == (4, 1)
    assert (config.fetch.timeout, config.fetch.max_bytes) == (10.0, 1000)
    assert config.fetch.contact == "ops@example.org"
    assert config.sources == (Source("example.org", "https://example.org/rss", None),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("postgresql://news:pw@db.internal/news", PostgresURL("postgresql://news:pw@db.internal/news")),
        ("postgres://db.internal/news", PostgresURL("postgres://db.internal/news")),
        ("state/news.sqlite", "state/news.sqlite"),
    ],
)  # fmt: skip
def test_storage_is_a_file_a_uri_or_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, expected: object
) -> None:
    if isinstance(expected, str):
        expected = tmp_path / expected
    direct = write(tmp_path, f"storage: '{value}'\nsources: []\n")
    assert load_config(direct).storage == expected

    monkeypatch.setenv("AGGREGATOR_DATABASE", value)
    named = write(tmp_path, "storage: {env: AGGREGATOR_DATABASE}\nsources: []\n")
    assert load_config(named).storage == expected


def test_a_postgresql_password_is_hidden_when_shown() -> None:
    url = PostgresURL("postgresql://news:s3cret@db/news?sslmode=require&password=other")
    assert str(url) == "postgresql://news:***@db/news?sslmode=require&password=***"
    assert "s3cret" not in repr(url)


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("sources: []\ncolour: red\n", "colour", "unknown key"),
        ("sources:\n  - name: X\n", "sources[0].url", "missing required key"),
        ("sources:\n  - {url: https://a.example/, lang: fr}\n", "sources[0].lang", "unknown key"),
        ("output: {dir: out, size: 3}\nsources: []\n", "output.size", "unknown key"),
        ("output: {max_entries: 0}\nsources: []\n", "output.max_entries", "positive integer"),
        ("output: {max_entries: many}\nsources: []\n", "output.max_entries", "positive integer"),
        ("sources:\n  - {url: ftp://a.example/}\n", "sources[0].url", "http:// or https://"),
        ("sources:\n  - {url: not a url}\n", "sources[0].url", "http:// or https://"),
        ("sources:\n  - {url: 42}\n", "sources[0].url", "non-empty string"),
        ("output: {dir: ''}\nsources: []\n", "output.dir",
         "must be a non-empty string, not an empty string"),
        ("sources: {url: https://a.example/}\n", "sources", "must be a list"),
        ("sources:\n  - https://a.example/\n", "sources[0]", "must be a mapping"),
        ("output: {}\n", "sources", "missing required key"),
        (
            "sources:\n  - {url: 'https://a.example/'}\n  - {url: 'https://a.example/'}\n",
            "sources[1].url",
            "duplicate of sources[0].url",
        ),
        (
            "sources:\n  - {name: Kun, url: 'https://a.example/'}\n"
            "  - {name: Kun, url: 'https://b.example/'}\n",
            "sources[1].name",
            "duplicate of sources[0].name: Kun",
        ),
        # A name given to one source that another has as its host's, in any case.
        (
            "sources:\n  - {url: 'https://a.example/'}\n"
            "  - {name: A.Example, url: 'https://b.example/'}\n",
            "sources[1].name",
            "A.Example is the host of sources[0], its name",
        ),
        (
            "sources:\n  - {name: Kabar, url: 'https://a.example/'}\n"
            "  - {name: kabar, url: 'https://b.example/'}\n",
            "sources[1].name",
            "duplicate of sources[0].name: kabar",
        ),
        (
            "sources:\n  - {name: a.example, url: 'https://b.example/'}\n"
            "  - {url: 'https://a.example/'}\n",
            "sources[1]",
            "needs a name: its host's, a.example, is sources[0].name",
        ),
        # The same feed: scheme and host in another case, the default port, no path.
        (
            "sources:\n  - {url: 'https://a.example/'}\n  - {url: 'HTTPS://A.Example:443'}\n",
            "sources[1].url",
            "duplicate of sources[0].url",
        ),
        ("schedule: {interval_minutes: -5}\nsources: []\n", "schedule.interval_minutes",
         "positive"),
        ("retention_days: 0\nsources: []\n", "retention_days", "positive number"),
        ("fetch: {proxy: 'socks5://proxy.lan:1080'}\nsources: []\n", "fetch.proxy",
         "http:// or https://"),
        ("sources:\n  - {url: 'https://a.example/', interval_minutes: 0}\n",
         "sources[0].interval_minutes", "positive number"),
        ("sources:\n  - {url: 'https://a.example/', priority: high}\n", "sources[0].priority",
         "integer"),
        ("sources:\n  - {url: 'https://a.example/', language: 'français!'}\n",
         "sources[0].language", "language tag"),
        ("outputs: [{slug: x, languages: [fr, 'en, ru']}]\nsources: []\n",
         "outputs[0].languages[1]", "language tag"),
        ("sources:\n  - {url: 'https://a.example/', country: mn}\n",
         "sources[0].country", "must be one of kz, kg, tj, tm, uz"),
        ("classify: {af: {add: [Kabul]}}\nsources: []\n", "classify.af", "unknown key"),
        ("classify: {kz: {remove: [x]}}\nsources: []\n", "classify.kz.remove", "unknown key"),
        ("classify: {kz: {add: [ok, 3]}}\nsources: []\n", "classify.kz.add[1]", "non-empty string"),
        ("classify: {kz: {add: {a: b}}}\nsources: []\n", "classify.kz.add", "list of strings"),
        ("sources:\n  - {url: 'https://a.example/', type: html,"
         " selectors: {item: 'article[', title: h2}}\n", "sources[0].selectors.item",
         "must be a CSS selector, not 'article[' (Malformed attribute selector at position 7)"),
        ("sources:\n  - {url: 'https://a.example/', type: html,"
         " selectors: {item: li, title: 'h2::text'}}\n", "sources[0].selectors.title",
         "must be a CSS selector"),
        ("sources:\n  - {url: 'https://a.example/', type: html, timezone: Asia/Almati,"
         " selectors: {item: li, title: h2}}\n", "sources[0].timezone",
         "must be a time zone such as Asia/Almaty, not 'Asia/Almati'"),
        ("sources:\n  - {url: 'https://a.example/', timezone: Asia/Almaty}\n",
         "sources[0].timezone", "only for a source with type: html"),
        # values that passed, then broke a refresh with a traceback
        ("sources:\n  - {url: 'http://127.0.0.1:99999/x.xml'}\n", "sources[0].url",
         "Port out of range"),
        ("sources:\n  - {url: 'http://a.example:abc/'}\n", "sources[0].url", "Port could not"),
        ("sources:\n  - {url: 'http://[::1/x'}\n", "sources[0].url", "Invalid IPv6 URL"),
        ("sources:\n  - {url: \"http://a.example/\\0x\"}\n", "sources[0].url",
         "control characters"),
        ("retention_days: .inf\nsources: []\n", "retention_days", "up to 36500"),
        ("retention_days: .nan\nsources: []\n", "retention_days", "positive number"),
        ("retention_days: 3000000\nsources: []\n", "retention_days", "up to 36500"),
        ("schedule: {interval_minutes: .inf}\nsources: []\n", "schedule.interval_minutes",
         "up to 525600"),
        ("schedule: {max_interval_minutes: .nan}\nsources: []\n",
         "schedule.max_interval_minutes", "positive number"),
        ("schedule: {min_interval_minutes: 100, max_interval_minutes: 10}\nsources: []\n",
         "schedule.min_interval_minutes", "not be more than schedule.max_interval_minutes"),
        ("fetch: {host_delay: 1e9}\nsources: []\n", "fetch.host_delay", "from 0 to 3600"),
        ("storage: https://db.example/news\nsources: []\n", "storage", "postgresql:// URI"),
        ("storage: [a, b]\nsources: []\n", "storage", "non-empty string"),
        ("storage: {url: x}\nsources: []\n", "storage.url", "unknown key"),
        ("storage: {env: AGGREGATOR_TEST_UNSET}\nsources: []\n", "storage.env",
         "AGGREGATOR_TEST_UNSET is not set"),
    ],
)  # fmt: skip
def test_invalid_values_name_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as info:
        load_config(path)

    assert info.value.key == key
    assert problem in info.value.problem
    assert str(info.value).startswith(f"{path}: {key}: ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("sources: [\n", "not valid YAML"),
        ("sources:\n  - url: https://a.example/\n\tname: tab\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("sources: []\nsources: []\n", "duplicate key 'sources'"),
    ],
)
def test_malformed_files_name_the_file_and_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as info:
        load_config(path)

    assert problem in str(info.value)
    assert str(path) in str(info.value)


def test_yaml_errors_give_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - url: https://a.example/\n    name: [unclosed\n")

    with pytest.raises(ConfigError, match=r"line \d+"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_an_empty_file_says_sources_are_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sources: missing required key"):
        load_config(write(tmp_path, ""))


def test_a_postgresql_store_in_a_schema_of_its_own() -> None:
    plain = PostgresURL("postgresql://news@db/news")
    tuned = PostgresURL("postgresql://news@db/news?sslmode=require")

    assert plain.in_schema("feeds").url == "postgresql://news@db/news?options=-csearch_path%3Dfeeds"
    assert tuned.in_schema("feeds").url.endswith("?sslmode=require&options=-csearch_path%3Dfeeds")


def test_feeds_whose_paths_or_queries_differ_are_different_sources(tmp_path: Path) -> None:
    text = (
        "sources:\n  - {url: 'https://a.example/Feed'}\n  - {url: 'https://a.example/feed'}\n"
        "  - {url: 'https://a.example/feed?lang=fr'}\n  - {url: 'http://a.example:8080/feed'}\n"
    )

    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")

    config = load_config(path)

    assert len(config.sources) == 4


def test_a_proxy_is_read_from_the_fetch_section(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("fetch: {proxy: 'http://proxy.lan:3128'}\nsources: []\n", encoding="utf-8")

    assert load_config(path).fetch.proxy == "http://proxy.lan:3128"

"""The command line: help, exit codes, check, classify, explain, and the daemon."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.classify import Classifier
from aggregator.cli import EXIT_CONFIG, EXIT_NOT_FOUND, EXIT_OUTPUT, EXIT_STORE, cli
from aggregator.parse import parse
from aggregator.store import explanation, explanation_json
from aggregator.types import FetchResult
from benchmarks.farm import build

from .support import DATA, FeedServer, assert_valid_atom, entries, refreshed, write_config

COMMANDS = ("refresh", "run", "check", "classify", "explain", "reclassify", "status")


@pytest.mark.parametrize("command", [(), *((c,) for c in COMMANDS)])
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])

    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert len(result.output.splitlines()) > 3


def test_check_lists_the_sources(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        [
            {"name": "Novastan", "url": "https://novastan.org/fr/feed/", "language": "fr"},
            {"name": "24.kg", "url": "https://24.kg/rss/", "country": "kg"},
        ],
    )

    result = CliRunner().invoke(cli, ["check", "--config", str(config)])

    assert result.exit_code == 0
    assert f"{config}: valid" in result.output
    assert "2 sources" in result.output
    assert "Novastan  fr  --  https://novastan.org/fr/feed/" in result.output
    assert "24.kg     --  kg  https://24.kg/rss/" in result.output


@pytest.mark.parametrize("command", ["refresh", "check", "run"])
def test_invalid_config_exits_non_zero_with_one_line(tmp_path: Path, command: str) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("sources:\n  - name: no url\n", encoding="utf-8")

    result = CliRunner().invoke(cli, [command, "--config", str(config)])

    assert result.exit_code == EXIT_CONFIG
    assert result.output == f"error: {config}: sources[0].url: missing required key\n"


def test_missing_config_exits_non_zero(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["refresh", "--config", str(tmp_path / "none.yaml")])

    assert result.exit_code == EXIT_CONFIG
    assert "file not found" in result.output


@pytest.mark.parametrize("garbage", [b"this is not a database" * 100, None])
def test_unusable_store_exits_non_zero(tmp_path: Path, garbage: bytes | None) -> None:
    store = tmp_path / "aggregator.sqlite"
    if garbage is None:
        store.mkdir()  # a directory where the database should be
    else:
        store.write_bytes(garbage)
    config = write_config(tmp_path, [{"url": "http://127.0.0.1:9/feed"}])

    result = CliRunner().invoke(cli, ["refresh", "--config", str(config)])

    assert result.exit_code == EXIT_STORE
    assert result.output.startswith(f"error: {store}")
    assert len(result.output.splitlines()) == 1


def test_classify_prints_the_decision_and_its_reasons() -> None:
    result = CliRunner().invoke(cli, ["classify", "Наводнение в Казахстане и Кыргызстане"])

    assert result.exit_code == 0
    assert "published: Kazakhstan, Kyrgyzstan" in result.output
    assert "'Казахстане'" in result.output
    assert "title" in result.output


def test_classify_with_a_source_country_and_editor_rules(tmp_path: Path) -> None:
    config = write_config(tmp_path, [], classify={"kg": {"add": ["Kok-Jar"]}})
    runner = CliRunner()

    hinted = runner.invoke(cli, ["classify", "--country", "kg", "Курс доллара на 12 мая"])
    tuned = runner.invoke(cli, ["classify", "--config", str(config), "Protest in Kok-Jar"])

    assert hinted.output.startswith("published: Kyrgyzstan")
    assert "source country" in hinted.output
    assert tuned.output.startswith("published: Kyrgyzstan")
    assert "editor" in tuned.output


def test_reclassify_applies_new_rules_to_stored_items(server: FeedServer, tmp_path: Path) -> None:
    url = server.serve("/fr.xml", (DATA / "feeds" / "fr_rss.xml").read_bytes())
    config = write_config(tmp_path, [{"name": "Courrier", "url": url}])
    runner = CliRunner()
    assert runner.invoke(cli, ["refresh", "--config", str(config)]).exit_code == 0
    tbilisi = "Géorgie : manifestations massives à Tbilissi"
    assert tbilisi not in (tmp_path / "output" / "central-asia.xml").read_text(encoding="utf-8")

    config = write_config(
        tmp_path, [{"name": "Courrier", "url": url}], classify={"kg": {"add": ["Tbilissi"]}}
    )
    result = runner.invoke(cli, ["reclassify", "--config", str(config)])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("5 items classified again, 1 changed;")
    kyrgyzstan = (tmp_path / "output" / "kyrgyzstan.xml").read_text(encoding="utf-8")
    assert tbilisi in kyrgyzstan


def test_classify_says_when_an_item_is_dropped() -> None:
    result = CliRunner().invoke(cli, ["classify", "Géorgie : manifestations à Tbilissi"])

    assert result.exit_code == 0
    assert result.output.startswith("dropped: not about Central Asia")


def test_classify_shows_a_repeated_match_once_with_its_count() -> None:
    text = "Almaty: in Almaty, Astana and Almaty again"
    result = CliRunner().invoke(cli, ["classify", text])

    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "'Almaty'" in line]
    assert len(lines) == 1 and "'Almaty' x3 (term 'Almaty')" in lines[0], result.output
    assert "'Astana' (term" in result.output  # once: no count
    assert "scores:    kz=17\n" in result.output  # 3 x 4 + 5: every mention counts


def test_explanations_store_each_distinct_match_once() -> None:
    from aggregator.store import explanation_json

    classification = Classifier().classify_text("Almaty: in Almaty, Astana and Almaty again")
    stored = json.loads(explanation_json(classification))
    assert [(m["text"], m.get("count", 1)) for m in stored["matches"]] == [
        ("Almaty", 3),
        ("Astana", 1),
    ]
    assert stored["scores"] == classification.scores


def test_explain_shows_the_stored_decision(server: FeedServer, tmp_path: Path) -> None:
    config = refreshed(server, tmp_path)
    runner = CliRunner()

    link = "https://courrier.test.example/2026/11/sommet-astana"
    result = runner.invoke(cli, ["explain", "--config", str(config), link])

    assert result.exit_code == 0, result.output
    assert "outcome: published: Kazakhstan (regional)" in result.output
    assert "'Astana'" in result.output
    assert "story:   urn:uuid:" in result.output
    assert "  dated:   2026-" in result.output and "(published: 2026-" in result.output
    # the id a reader sees in the published entry finds it too
    entry_id = result.output.split("story:   ")[1].split()[0].rstrip(",")
    by_id = runner.invoke(cli, ["explain", "--config", str(config), entry_id])
    assert by_id.exit_code == 0, by_id.output
    assert "outcome: published: Kazakhstan (regional)" in by_id.output
    # so do the link as published or shared: with www., a trailing slash, utm_*
    for variant in (
        "https://www.courrier.test.example/2026/11/sommet-astana/",
        "https://courrier.test.example/2026/11/sommet-astana?utm_source=telegram",
    ):
        shared = runner.invoke(cli, ["explain", "--config", str(config), variant])
        assert shared.exit_code == 0, shared.output
        assert "outcome: published: Kazakhstan (regional)" in shared.output
    dropped = runner.invoke(
        cli, ["explain", "--config", str(config), "https://courrier.test.example/2026/11/tbilissi"]
    )
    assert "outcome: dropped" in dropped.output
    missing = runner.invoke(cli, ["explain", "--config", str(config), "https://nowhere.example/"])
    assert missing.exit_code == EXIT_NOT_FOUND  # not 1: the configuration is fine
    assert "no stored item" in missing.output
    malformed = runner.invoke(cli, ["explain", "--config", str(config), "http://[::1"])
    assert malformed.exit_code == EXIT_NOT_FOUND and "no stored item" in malformed.output


def test_run_refreshes_at_once_and_stops_cleanly_on_sigterm(
    server: FeedServer, tmp_path: Path
) -> None:
    url = server.serve("/fr.xml", (DATA / "feeds" / "fr_rss.xml").read_bytes())
    broken = server.serve("/500.xml", b"oops", status=500)
    config = write_config(
        tmp_path,
        [{"name": "Courrier", "url": url}, {"name": "Broken", "url": broken}],
        schedule={"interval_minutes": 0.01, "min_interval_minutes": 0.001},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        # At least two scheduled refreshes (the second is a conditional GET).
        while len(server.hits("/fr.xml")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(server.hits("/fr.xml")) >= 2
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopping" in stderr
    assert "WARNING aggregator: Broken failed: HTTP 500" in stderr  # which, and why
    assert_valid_atom(tmp_path / "output" / "kazakhstan.xml")


def signal_while_fetching(
    server: FeedServer, command: str, config: Path, signum: int, settle: float = 0.0
) -> tuple[subprocess.Popen[str], str, str, float]:
    """Run ``aggregator COMMAND``, send it ``signum`` once its fetch of
    /hang.xml is in flight (and ``settle`` seconds more); return the process,
    its output and how long it took to end after the signal."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", command, "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not server.hits("/hang.xml") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.hits("/hang.xml")  # the fetch is in flight
        time.sleep(settle)
        started = time.monotonic()
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
        return proc, stdout, stderr, time.monotonic() - started
    finally:
        proc.kill()


def test_sigterm_stops_within_seconds_even_with_a_fetch_hanging(
    server: FeedServer, tmp_path: Path
) -> None:
    url = server.serve("/hang.xml", b"<rss/>", delay=60)
    config = write_config(
        tmp_path, [{"url": url}], fetch={"host_delay": 0, "timeout": 60, "allow_private": True}
    )
    proc, _, stderr, elapsed = signal_while_fetching(server, "run", config, signal.SIGTERM)
    assert proc.returncode == 0, stderr
    assert elapsed < 5
    assert "stopped: 1 sources not refreshed" in stderr


def test_stored_explanations_are_the_json_of_what_explain_shows(tmp_path: Path) -> None:
    """The JSON built from each distinct match's cached JSON is the text
    ``json.dumps`` gives for the whole explanation: on farm items, on a
    source hint, and on quotes, backslashes and scripts in matched text."""
    classifier = Classifier()
    entries = [
        entry
        for path in build(tmp_path, 6, 30)
        for entry in parse(
            "https://x.example/", FetchResult("u", (tmp_path / path).read_bytes(), {})
        ).entries
    ]
    classifications = [classifier.classify(entry) for entry in entries]
    classifications += [
        classifier.classify_text('Алматы "Almaty" \\ Astana\u2028: Almaty'),
        classifier.classify_text("Nothing here at all"),
        classifier.classify_text("Nothing here", "kz"),
    ]
    assert sum(len(c.matches) for c in classifications) > 500
    for c in classifications:
        assert explanation_json(c) == json.dumps(explanation(c), ensure_ascii=False)


def test_an_unusable_output_folder_or_lock_file_is_one_line_and_its_exit_code(
    tmp_path: Path,
) -> None:
    """A file where the output folder should be: the items are stored, then
    publishing fails with one line and exit code 4; a lock file that cannot
    be created is an unusable store (3). Both gave a traceback and 1."""
    (tmp_path / "output").write_text("not a folder")
    config = write_config(tmp_path, [{"url": "http://127.0.0.1:9/feed"}])
    command = [sys.executable, "-m", "aggregator", "refresh", "--config", str(config)]

    result = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert result.returncode == EXIT_OUTPUT, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"error: {tmp_path / 'output'}: cannot write the output folder"
        f" (File exists: {tmp_path / 'output'})"
    )
    assert "Traceback" not in result.stderr
    (tmp_path / "output").unlink()
    (tmp_path / "aggregator.sqlite.lock").unlink()
    (tmp_path / "aggregator.sqlite.lock").mkdir()  # the lock file cannot be opened

    result = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert result.returncode == EXIT_STORE, result.stderr
    assert "cannot create the store's lock file" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_says_a_gone_source_is_never_fetched_again(
    server: FeedServer, tmp_path: Path
) -> None:
    url = server.serve("/gone.xml", b"gone", status=410)
    config = write_config(tmp_path, [{"name": "A", "url": url}])
    runner = CliRunner()
    runner.invoke(cli, ["refresh", "--config", str(config)])

    result = runner.invoke(cli, ["status", "--config", str(config)])

    header, row, gone = result.output.splitlines()[1:4]
    assert header.index("last success") == row.index("never")  # columns aligned
    assert row[header.index("next attempt") :].split()[0] == "never"
    assert "gone: HTTP 410 since" in gone


def test_preview_refuses_a_negative_limit(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"url": "http://127.0.0.1:9/feed"}])
    result = CliRunner().invoke(cli, ["preview", "--config", str(config), "--limit", "-1"])
    assert result.exit_code == 2 and "-1 is not in the range x>=0" in result.output


@pytest.mark.parametrize(
    ("command", "code"),
    [(["status"], 0), (["preview"], 0), (["explain", "https://a.example/"], EXIT_NOT_FOUND)],
)
def test_reading_commands_do_not_create_a_store(
    tmp_path: Path, command: list[str], code: int
) -> None:
    config = write_config(tmp_path, [{"url": "http://127.0.0.1:9/feed"}])
    result = CliRunner().invoke(cli, [command[0], "--config", str(config), *command[1:]])
    assert result.exit_code == code
    assert "no store yet" in result.output
    assert not (tmp_path / "aggregator.sqlite").exists()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_refresh_publishes_what_it_stored(
    server: FeedServer, tmp_path: Path, signum: int, code: int
) -> None:
    """SIGTERM (a service manager's timeout) or Ctrl-C stops a refresh after
    its writes in progress: what it stored is published, the summary says
    what was not refreshed, and the exit code says it was stopped."""
    good = server.serve("/fr.xml", (DATA / "feeds" / "fr_rss.xml").read_bytes())
    hang = server.serve("/hang.xml", b"<rss/>", delay=60)
    fetch = {"host_delay": 0, "timeout": 60, "allow_private": True}
    config = write_config(tmp_path, [{"name": "Courrier", "url": good}, {"url": hang}], fetch=fetch)
    # The good source is stored in the second after the other's fetch began.
    proc, stdout, stderr, elapsed = signal_while_fetching(server, "refresh", config, signum, 1.0)
    assert proc.returncode == code, stderr
    assert elapsed < 5
    assert "stopped: 1 sources not refreshed" in stderr
    assert "Traceback" not in stderr
    assert "2 sources: 1 updated, 0 unchanged, 0 failed, 1 not fetched (stopped);" in stdout
    titles = {e["title"] for e in entries(tmp_path / "output" / "kazakhstan.xml")}
    assert "Kazakhstan : inondations dans la région de Kostanaï" in titles


def test_credentials_in_a_source_url_are_used_but_never_shown_or_published(
    server: FeedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx sends a URL's user information as HTTP Basic credentials: the
    password must not reach the public feeds, the terminal or the logs."""
    server.serve(
        "/private.xml", (DATA / "feeds" / "fr_rss.xml").read_bytes(), credentials="news:s3cret"
    )
    url = server.url("/private.xml").replace("http://", "http://news:s3cret@")
    config = write_config(tmp_path, [{"name": "Courrier", "url": url}])
    runner = CliRunner()
    caplog.set_level(logging.INFO)

    outputs = [
        runner.invoke(cli, ["-v", "refresh", "--config", str(config)]),
        runner.invoke(cli, ["check", "--config", str(config)]),
        runner.invoke(cli, ["status", "--config", str(config)]),
        runner.invoke(
            cli,
            [
                "explain",
                "--config",
                str(config),
                "https://courrier.test.example/2026/11/sommet-astana",
            ],
        ),
    ]

    assert [r.exit_code for r in outputs] == [0, 0, 0, 0], [r.output for r in outputs]
    assert "http://***@127.0.0.1" in outputs[1].output
    for result in outputs:
        assert "s3cret" not in result.output
    assert "source=http://***@127.0.0.1" in caplog.text and "s3cret" not in caplog.text
    published = tmp_path / "output" / "kazakhstan.xml"
    assert entries(published)  # fetched with the credentials (else a 401)
    for path in (tmp_path / "output").iterdir():
        assert b"s3cret" not in path.read_bytes(), path.name
    assert f'<link rel="self" href="{server.url("/private.xml")}"/>' in published.read_text()


def test_credentials_never_reach_the_logs_even_of_the_http_library(
    server: FeedServer, tmp_path: Path
) -> None:
    """With -vv, httpx logs every request's URL as sent, credentials included."""
    server.serve(
        "/private.xml", (DATA / "feeds" / "fr_rss.xml").read_bytes(), credentials="news:s3cret"
    )
    url = server.url("/private.xml").replace("http://", "http://news:s3cret@")
    config = write_config(tmp_path, [{"name": "Courrier", "url": url}])

    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "-vv", "refresh", "--config", str(config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "httpx: HTTP Request: GET http://***@127.0.0.1" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_the_log_filter_redacts_exceptions_and_lets_logging_report_a_bad_call() -> None:
    from aggregator.cli import _redact

    try:
        raise ValueError("GET https://news:s3cret@feeds.example/rss failed")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", None, sys.exc_info())
    malformed = logging.LogRecord("x", logging.WARNING, "f", 1, "value %d", ("x",), None)

    assert _redact(failed) and _redact(malformed)  # no exception from the filter
    assert failed.exc_text is not None and "s3cret" not in failed.exc_text
    assert "https://***@feeds.example/rss" in failed.exc_text
    with pytest.raises(TypeError):
        malformed.getMessage()  # left for logging to report, as without the filter


def test_a_url_error_in_the_configuration_hides_its_credentials(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"url": "https://news:s3cret@feeds.example/a b"}])

    result = CliRunner().invoke(cli, ["check", "--config", str(config)])

    assert result.exit_code == EXIT_CONFIG
    assert "https://***@feeds.example/a b" in result.output and "s3cret" not in result.output

    # A password with an unencoded "/": urlsplit reads part of it as the port.
    config = write_config(tmp_path, [{"url": "https://bob:s3/cret@feeds.example/feed"}])
    result = CliRunner().invoke(cli, ["check", "--config", str(config)])
    assert result.exit_code == EXIT_CONFIG
    assert "https://***@feeds.example/feed" in result.output
    assert "s3" not in result.output.replace(str(config), "")


def test_status_counts_each_sources_items_and_asks_about_a_stale_one(
    server: FeedServer, tmp_path: Path
) -> None:
    config = refreshed(server, tmp_path)
    runner = CliRunner()

    fresh = runner.invoke(cli, ["status", "--config", str(config)])
    # Its items were all first seen a month ago: the feed has stopped.
    with sqlite3.connect(tmp_path / "aggregator.sqlite") as db:
        db.execute("UPDATE items SET first_seen = '2000-01-01T00:00:00+00:00'")
    stale = runner.invoke(cli, ["status", "--config", str(config)])

    header, row = fresh.output.splitlines()[1:3]
    body = (DATA / "feeds" / "fr_rss.xml").read_bytes()
    items = len(parse("s", FetchResult("https://courrier.test.example/rss", body)).entries)
    assert row[header.index("items") - 1 :].split()[0] == str(items)
    assert row[header.index("newest item") :].startswith(f"{datetime.now(UTC):%Y-%m-%d}")
    assert "nothing new" not in fresh.output
    assert "2000-01-01 00:00" in stale.output
    assert "nothing new for " in stale.output and "has its feed moved" in stale.output
    # Once pruned (retention_days), nothing is left to date: it still asks.
    with sqlite3.connect(tmp_path / "aggregator.sqlite") as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DELETE FROM items")
    pruned = runner.invoke(cli, ["status", "--config", str(config)])
    assert "nothing stored though it answers" in pruned.output
    assert pruned.output.splitlines()[2].split()[-1] == "none"

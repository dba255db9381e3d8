"""Polite polling through the pipeline: schedule, backoff, 410, redirects (real server)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.pipeline import refresh
from aggregator.publish import ALSO_REPORTED
from aggregator.store import Store, open_store
from aggregator.types import Config, RunReport, Status

from .support import DATA, FeedServer, Route, entries, write_config

T0 = datetime(2026, 11, 27, 12, tzinfo=UTC)
FEED = (DATA / "feeds" / "fr_rss.xml").read_bytes()
TTL_FEED = FEED.replace(b"<language>fr</language>", b"<language>fr</language><ttl>120</ttl>")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


Setup = Callable[..., tuple[Config, Store]]


@pytest.fixture
def setup(tmp_path: Path, storage: str | None) -> Iterator[Setup]:
    """Configure one source at ``url`` (with extra keys) and open its store,
    on each backend; the stores are closed after the test."""
    opened: list[Store] = []

    def make(url: str, **extra: object) -> tuple[Config, Store]:
        more = {"storage": storage} if storage else {}
        source = {"name": "Outlet", "url": url, **extra}
        config = load_config(write_config(tmp_path, [source], **more))
        opened.append(open_store(config.storage))
        return config, opened[-1]

    yield make
    for store in opened:
        store.close()


def run(config: Config, store: Store, clock: Clock, force: bool = False) -> RunReport:
    return refresh(config, store, clock=clock, force=force)


def test_a_source_is_fetched_again_only_when_due(
    server: FeedServer, setup: Setup, clock: Clock
) -> None:
    config, store = setup(server.serve("/feed", FEED))

    first = run(config, store, clock)
    clock.now += timedelta(minutes=10)
    early = run(config, store, clock)
    clock.now += timedelta(minutes=20)
    due = run(config, store, clock)

    assert [r.sources[0].status for r in (first, early, due)] == [
        Status.OK,
        Status.NOT_DUE,
        Status.NOT_MODIFIED,
    ]
    assert str(early.sources[0].error).startswith("next attempt at 2026-11-27 12:3")
    assert len(server.hits("/feed")) == 2


@pytest.mark.parametrize(
    ("route", "next_attempt"),
    [
        (Route(body=TTL_FEED), T0 + timedelta(hours=2)),  # <ttl>120</ttl>
        (Route(body=FEED, headers={"Cache-Control": "max-age=10800"}), T0 + timedelta(hours=3)),
        (Route(body=FEED), T0 + timedelta(minutes=30)),  # the configured interval
    ],
)
def test_ttl_and_max_age_are_respected(
    server: FeedServer, setup: Setup, clock: Clock, route: Route, next_attempt: datetime
) -> None:
    server.routes["/feed"] = route
    config, store = setup(server.url("/feed"))

    run(config, store, clock)

    state = store.source(server.url("/feed"))
    assert state is not None and state.next_attempt is not None
    assert next_attempt <= state.next_attempt <= T0 + (next_attempt - T0) * 1.05


def test_failures_back_off_and_a_success_resets_them(
    server: FeedServer, setup: Setup, clock: Clock
) -> None:
    url = server.serve("/flaky", b"down", status=500)
    config, store = setup(url)
    delays = []
    for _ in range(4):
        run(config, store, clock)
        state = store.source(url)
        assert state is not None and state.next_attempt is not None
        delays.append(state.next_attempt - clock.now)
        clock.now = state.next_attempt

    server.routes["/flaky"] = Route(body=FEED)
    run(config, store, clock)

    assert [d > previous for previous, d in zip(delays, delays[1:], strict=False)] == [True] * 3
    assert timedelta(minutes=5 * 0.75) <= delays[0] <= timedelta(minutes=5 * 1.25)
    state = store.source(url)
    assert state is not None and (state.failures, state.last_error) == (0, None)


def test_retry_after_on_503_delays_the_next_attempt(
    server: FeedServer, setup: Setup, clock: Clock
) -> None:
    url = server.serve("/busy", b"busy", status=503, headers={"Retry-After": "7200"})
    config, store = setup(url)

    report = run(config, store, clock)
    clock.now += timedelta(hours=1)
    later = run(config, store, clock)

    assert report.sources[0].status is Status.ERROR
    assert later.sources[0].status is Status.NOT_DUE
    state = store.source(url)
    assert state is not None and state.next_attempt == T0 + timedelta(hours=2)


def test_410_gone_stops_polling_until_a_forced_refresh_finds_it_back(
    server: FeedServer, setup: Setup, clock: Clock
) -> None:
    url = server.serve("/gone", b"gone", status=410)
    config, store = setup(url)

    first = run(config, store, clock)
    clock.now += timedelta(days=2)
    second = run(config, store, clock)
    forced = run(config, store, clock, force=True)  # still gone
    forced_state = store.source(url)
    server.routes["/gone"] = Route(body=FEED)  # back
    clock.now += timedelta(days=2)
    third = run(config, store, clock)
    back = run(config, store, clock, force=True)
    after = run(config, store, clock)

    assert first.sources[0].note == "gone: remove it from feeds.yaml"
    assert second.sources[0].status is Status.GONE
    assert forced.sources[0].status is Status.ERROR
    assert third.sources[0].status is Status.GONE
    assert back.sources[0].status is Status.OK
    assert forced_state is not None and forced_state.gone == T0  # since the first 410
    assert after.sources[0].status is Status.NOT_DUE  # polled again, on schedule
    assert len(server.hits("/gone")) == 3
    state = store.source(url)
    assert state is not None and state.gone is None


def moved(server: FeedServer, setup: Setup) -> tuple[str, str, Config, Store]:
    """A source whose feeds.yaml URL (/old) redirects permanently to /new."""
    new = server.serve("/new", FEED)
    old = server.serve("/old", b"", status=301, headers={"Location": "/new"})
    return new, old, *setup(old)


def test_a_permanent_redirect_is_followed_from_then_on_and_reported(
    server: FeedServer, setup: Setup, clock: Clock
) -> None:
    new, old, config, store = moved(server, setup)

    first = run(config, store, clock)
    second = run(config, store, clock, force=True)

    assert first.sources[0].note == f"moved permanently to {new}: update feeds.yaml"
    assert second.sources[0].status is Status.NOT_MODIFIED
    assert (len(server.hits("/old")), len(server.hits("/new"))) == (1, 2)
    state = store.source(old)
    assert state is not None and state.moved_to == new
    assert "moved permanently" not in (config.path.read_text())  # feeds.yaml untouched


@pytest.mark.parametrize(
    "broken",
    [
        Route(body=b"not found", status=404),  # the new address went away
        Route(body=b"<html><body>Welcome to our new site</body></html>"),  # not a feed
    ],
)
def test_a_permanent_redirect_that_stops_working_is_forgotten(
    server: FeedServer, setup: Setup, clock: Clock, broken: Route
) -> None:
    """A 301 was followed for ever, even once its target failed (a parked
    domain, a site's new home page): the source failed until an editor
    changed feeds.yaml, and no command could reset it. Where the move fails,
    feeds.yaml's URL is tried again, and the move forgotten if it works."""
    _, old, config, store = moved(server, setup)
    run(config, store, clock)
    server.routes["/new"] = broken
    server.routes["/old"] = Route(body=FEED)  # feeds.yaml's URL works again

    clock.now += timedelta(days=1)
    report = run(config, store, clock)

    (source,) = report.sources
    assert source.status in (Status.OK, Status.NOT_MODIFIED), source.error
    assert source.note is not None and source.note.startswith("the address it had moved to failed")
    state = store.source(old)
    assert state is not None and state.moved_to is None and state.failures == 0
    clock.now += timedelta(days=1)
    run(config, store, clock)
    assert (len(server.hits("/old")), len(server.hits("/new"))) == (3, 2)  # not /new again


def test_a_permanent_redirect_whose_target_fails_still_fails_if_feeds_yaml_url_redirects_there(
    server: FeedServer, setup: Setup, clock: Clock
) -> None:
    new, old, config, store = moved(server, setup)
    run(config, store, clock)
    server.routes["/new"] = Route(body=b"", status=503)

    clock.now += timedelta(days=1)
    report = run(config, store, clock)

    assert report.sources[0].status is Status.ERROR
    assert "503" in (report.sources[0].error or "")
    state = store.source(old)
    assert state is not None and state.moved_to == new and state.failures == 1
    assert len(server.hits("/old")) == 2  # feeds.yaml's URL tried again, once

    # A server that asks to wait is not a broken move: waited for, not bypassed.
    server.routes["/new"] = Route(body=b"", status=429, headers={"Retry-After": "600"})
    clock.now += timedelta(days=1)
    assert run(config, store, clock).sources[0].status is Status.ERROR
    assert len(server.hits("/old")) == 2


def test_a_temporary_redirect_changes_nothing(
    server: FeedServer, setup: Setup, clock: Clock
) -> None:
    server.serve("/new", FEED)
    old = server.serve("/old", b"", status=302, headers={"Location": "/new"})
    config, store = setup(old)

    run(config, store, clock)
    run(config, store, clock, force=True)

    assert len(server.hits("/old")) == 2
    state = store.source(old)
    assert state is not None and state.moved_to is None


def test_a_source_can_have_its_own_interval(server: FeedServer, setup: Setup, clock: Clock) -> None:
    url = server.serve("/feed", FEED)
    config, store = setup(url, interval_minutes=180)

    run(config, store, clock)

    state = store.source(url)
    assert state is not None and state.next_attempt is not None
    assert T0 + timedelta(hours=3) <= state.next_attempt <= T0 + timedelta(hours=3.15)


@pytest.mark.parametrize("name", ["Outlet", "Renamed outlet"])
def test_following_the_advice_to_update_feeds_yaml_keeps_the_items(
    server: FeedServer, setup: Setup, clock: Clock, tmp_path: Path, name: str
) -> None:
    """After "moved permanently to NEW: update feeds.yaml", the source under
    its new URL takes over the stored one (found by its redirect, or by its
    name): its items are not stored again, so no entry is duplicated or
    looks updated, and they are not credited to their own outlet twice."""
    new, old, config, store = moved(server, setup)
    run(config, store, clock)
    before = [(item.guid, item.changed) for item in store.all_items()]
    published = [(e["id"], e["updated"]) for e in entries(config.output.dir / "kazakhstan.xml")]

    clock.now += timedelta(hours=1)
    edited = config.path.read_text(encoding="utf-8").replace(old, new)
    config.path.write_text(edited.replace("name: Outlet", f"name: {name}"), encoding="utf-8")
    config = load_config(config.path)
    report = run(config, store, clock)

    assert [(r.source.url, r.new, r.changed) for r in report.sources] == [(new, 0, 0)]
    assert [(item.guid, item.changed) for item in store.all_items()] == before
    assert {item.source_url for item in store.all_items()} == {new}
    assert [state.url for state in store.sources()] == [new]
    kazakhstan = entries(config.output.dir / "kazakhstan.xml")
    assert [(e["id"], e["updated"]) for e in kazakhstan] == published
    assert published and not any(
        label in str(e["content"]) for e in kazakhstan for label in ALSO_REPORTED.values()
    )


def test_a_new_source_with_another_name_and_no_redirect_is_a_new_outlet(
    server: FeedServer, setup: Setup, clock: Clock
) -> None:
    first = server.serve("/first", FEED)
    second = server.serve("/second", FEED)
    config, store = setup(first)
    run(config, store, clock)
    edited = config.path.read_text(encoding="utf-8").replace(first, second)
    config.path.write_text(edited.replace("name: Outlet", "name: Another"), encoding="utf-8")

    report = run(load_config(config.path), store, clock)

    assert report.sources[0].new > 0
    assert {state.url for state in store.sources()} == {first, second}

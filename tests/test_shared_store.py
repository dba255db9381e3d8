"""Several workers sharing one PostgreSQL store: claims, item and publishing
locks, and a worker killed midway (real processes, a real server on 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.errors import StoreError
from aggregator.store import Store, open_store
from aggregator.types import Config, PostgresURL

from . import postgres
from .support import FeedServer, assert_valid_atom, entries, write_config

SOURCES = 20  # below POOL_FROM: no worker processes of their own
SHARED_LINK = "https://news.example/kz/railway-to-china"


def feed(n: int) -> str:
    """Source ``n``: two items of its own about Kazakhstan, and one article
    every source repeats (with its own tracking parameter)."""
    home = f"https://outlet{n}.example"
    items = [
        (f"s{n}-a", f"{home}/a", f"Kazakhstan: outlet {n} reports on Astana's budget {n}01"),
        (f"s{n}-b", f"{home}/b", f"Almaty mayor {n} opens school number {n}02 in Kazakhstan"),
        (f"s{n}-shared", f"{SHARED_LINK}?utm_source=outlet{n}",
         "Kazakhstan opens a new railway line to China"),
    ]  # fmt: skip
    body = "".join(
        f"<item><guid>{guid}</guid><link>{link}</link><title>{title}</title>"
        f"<description>{title}. The details of the report.</description>"
        "<pubDate>Fri, 27 Nov 2026 08:00:00 GMT</pubDate></item>"
        for guid, link, title in items
    )
    channel = f"<channel><title>Outlet {n}</title>{body}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'


@pytest.fixture
def shared(server: FeedServer, tmp_path: Path, postgres_server: str) -> Iterator[Config]:
    """A farm of slow sources and a configuration on a fresh PostgreSQL schema."""
    sources = [
        {"name": f"Outlet {n}", "url": server.serve(f"/{n}.xml", feed(n), delay=0.8)}
        for n in range(SOURCES)
    ]
    path = write_config(
        tmp_path,
        sources,
        storage=postgres.fresh_schema(postgres_server),
        fetch={"host_delay": 0, "allow_private": True, "concurrency": 2, "per_host": 8},
    )
    yield load_config(path)


def worker(config: Config) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "-v", "refresh", "--config", str(config.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def refreshed(store: Store) -> int:
    return sum(s.last_success is not None for s in store.sources())


def test_workers_share_the_sources_and_survive_one_killed(
    shared: Config, server: FeedServer
) -> None:
    with open_store(shared.storage) as store:
        workers = [worker(shared) for _ in range(3)]
        deadline = time.monotonic() + 60
        while refreshed(store) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(workers[0].pid, signal.SIGKILL)
        # The server goes on answering the killed worker's requests; another
        # worker may then fetch those sources again, and only those.
        orphaned = server.in_flight()
        outcomes = [w.communicate(timeout=120) for w in workers]

        assert workers[0].returncode == -signal.SIGKILL
        assert [w.returncode for w in workers[1:]] == [0, 0], outcomes
        # The survivors shared the work.
        assert all("status=ok" in stderr for _, stderr in outcomes[1:]), outcomes
        # Every source refreshed, none fetched by two live workers at once.
        assert refreshed(store) == SOURCES
        assert {path for path, most in server.most_at_once.items() if most > 1} <= orphaned
        # Every item stored once; the repeated article is one story.
        items = list(store.all_items())
        assert sorted(i.guid for i in items) == sorted(
            f"s{n}-{k}" for n in range(SOURCES) for k in ("a", "b", "shared")
        )
        assert len({i.story_id for i in items if i.guid.endswith("-shared")}) == 1
        stories = store.story_ids(["kz"], shared.output.max_entries)

    # The last publisher published the final state: every story, valid Atom.
    kazakhstan = shared.output.dir / "kazakhstan.xml"
    assert_valid_atom(kazakhstan)
    assert len(entries(kazakhstan)) == len(stories)
    before = {p.name: p.read_bytes() for p in shared.output.dir.iterdir()}

    # Nothing changed since: another worker neither fetches nor publishes anything.
    again = subprocess.run(
        [sys.executable, "-m", "aggregator", "refresh", "--config", str(shared.path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "0 files written" in again.stdout
    assert {p.name: p.read_bytes() for p in shared.output.dir.iterdir()} == before


def test_a_claimed_source_is_not_claimed_twice_until_released(postgres_server: str) -> None:
    url = PostgresURL(postgres.fresh_schema(postgres_server))
    with open_store(url) as one, open_store(url) as two:
        assert one.claim("https://a.example/rss")
        assert not two.claim("https://a.example/rss")
        assert two.claim("https://b.example/rss")
        one.release("https://a.example/rss")
        assert two.claim("https://a.example/rss")
    with open_store(url) as three:  # the claims ended with their connections
        assert three.claim("https://a.example/rss")
        assert three.claim("https://b.example/rss")


def test_item_writers_take_turns(postgres_server: str) -> None:
    url = PostgresURL(postgres.fresh_schema(postgres_server))
    order: list[str] = []
    with open_store(url) as one, open_store(url) as two:
        with one.transaction():
            one.lock_items()
            waiting = threading.Thread(target=_write_after_lock, args=(two, order))
            waiting.start()
            time.sleep(0.5)
            order.append("first commits")
        waiting.join(timeout=10)
    assert order == ["first commits", "second writes"]


def _write_after_lock(store: Store, order: list[str]) -> None:
    with store.transaction():
        store.lock_items()
        order.append("second writes")


def test_a_snapshot_does_not_see_later_commits(postgres_server: str) -> None:
    url = PostgresURL(postgres.fresh_schema(postgres_server))
    with open_store(url) as reader, open_store(url) as writer:
        with reader.snapshot():
            before = reader.generation()
            with writer.transaction():
                writer.bump_generation()
            assert reader.generation() == before
        assert reader.generation() == before + 1


def test_workers_starting_together_migrate_once(postgres_server: str) -> None:
    url = PostgresURL(postgres.fresh_schema(postgres_server))
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_store(url).close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with open_store(url) as store:
        assert store.generation() == 0


def test_a_newer_schema_is_refused(postgres_server: str) -> None:
    url = PostgresURL(postgres.fresh_schema(postgres_server))
    open_store(url).close()
    import psycopg

    with psycopg.connect(url.url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = 99")

    with pytest.raises(StoreError, match="newer than this program"):
        open_store(url)


def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    with socket_closed() as port:
        url = PostgresURL(f"postgresql://editor:s3cret@127.0.0.1:{port}/news")
        with pytest.raises(StoreError, match="cannot connect") as caught:
            open_store(url)
    assert "s3cret" not in str(caught.value)
    assert "editor:***@127.0.0.1" in str(caught.value)


@contextmanager
def socket_closed() -> Iterator[int]:
    """A local port nothing listens on (bound, so nothing else takes it)."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield int(bound.getsockname()[1])

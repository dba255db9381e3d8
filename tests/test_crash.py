"""Killing the worker with SIGKILL at any moment loses nothing and breaks nothing.

A refresh of many sources is killed at random points, again and again, then
run to the end: the store passes SQLite's integrity check and holds every item
once, every published file is valid Atom, and no temporary file is left.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.cli import EXIT_WORKERS
from benchmarks.farm import build, write_config

from .support import assert_valid_atom

SOURCES, ITEMS = 40, 20
ROOT = Path(__file__).parent.parent


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Path]:
    build(tmp_path, SOURCES, ITEMS)
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.farm", "serve", "--dir", str(tmp_path), "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    port = int(server.stdout.readline().split()[1])
    yield write_config(tmp_path, port, SOURCES)
    server.terminate()
    server.wait(timeout=10)
    server.stdout.close()


def refresh(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "-q", "refresh", "--force", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def test_sigkill_at_random_points_then_a_rerun_loses_nothing(farm: Path) -> None:
    rng = random.Random(20261127)
    kills = attempts = 0
    while kills < 5 and attempts < 20:  # kill five runs mid-way, however fast they are
        attempts += 1
        process = refresh(farm)
        time.sleep(rng.uniform(0.2, 1.2))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)

    final = refresh(farm)
    assert final.wait(timeout=300) == 0

    assert kills == 5  # the kills did land mid-run
    store = farm.parent / "bench.sqlite"
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        count, unique = db.execute(
            "SELECT count(*), count(DISTINCT source_url || ' ' || guid) FROM items"
        ).fetchone()
    db.close()
    assert count == unique == SOURCES * ITEMS
    output = farm.parent / "output"
    feeds = list(output.glob("*.xml"))
    assert len(feeds) >= 6
    for feed in feeds:
        assert_valid_atom(feed)
    assert list(output.glob(".*.tmp")) == []
    time.sleep(1.5)  # workers notice within half a second that their refresh died
    assert orphaned_workers() == []


def orphaned_workers() -> list[int]:
    """Pool workers whose refresh is gone (re-parented to init)."""
    orphans = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes()
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if (b"spawn_main" in command or b"forkserver" in command) and parent == 1:
            orphans.append(int(proc.name))
    return orphans


def workers_of(pid: int) -> list[int]:
    """The pool workers of a refresh: the children of its forkserver."""

    def children(parent: int) -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if (
                    proc.name.isdigit()
                    and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent
                ):
                    found.append(int(proc.name))
            except (OSError, ValueError, IndexError):
                continue
        return found

    return [worker for child in children(pid) for worker in children(child)]


def test_a_worker_killed_mid_refresh_ends_it_in_one_line_and_frees_the_lock(farm: Path) -> None:
    """A worker killed (out of memory, say) while sending a result could leave
    CPython's pool waiting forever, holding the store's lock: every later cron
    run then exited "locked" and nothing was published again."""
    command = [sys.executable, "-m", "aggregator", "refresh", "--force", "--config", str(farm)]
    for _ in range(10):  # until a kill lands while the workers are at work
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)  # fmt: skip
        deadline = time.monotonic() + 10
        while not (workers := workers_of(process.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for worker in workers:
            try:
                os.kill(worker, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, stderr = process.communicate(timeout=60)  # no hang
        if process.returncode != 0:
            break
    assert process.returncode == EXIT_WORKERS, stderr
    # multiprocessing's resource tracker may warn of the dead pool's semaphores
    # after it, at exit (the worker was killed): not ours to print.
    ours = [line for line in stderr.strip().splitlines() if "resource_tracker" not in line]
    last = ours[-1]
    assert last.startswith("error: ") and "(out of memory?): the refresh stopped" in last
    assert "Traceback" not in stderr

    final = refresh(farm)  # the lock is free, and nothing is lost
    assert final.wait(timeout=300) == 0
    with sqlite3.connect(farm.parent / "bench.sqlite") as db:
        count, unique = db.execute(
            "SELECT count(*), count(DISTINCT source_url || ' ' || guid) FROM items"
        ).fetchone()
    db.close()
    assert count == unique == SOURCES * ITEMS


def test_workers_end_with_a_killed_refresh_not_yet_reaped(farm: Path) -> None:
    """A refresh killed by a parent that has not reaped it yet is a zombie:
    its pid still answers signal 0, and its workers used to wait for it."""
    process = refresh(farm)
    deadline = time.monotonic() + 10
    while not (workers := workers_of(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers, "the refresh started no workers"
    process.send_signal(signal.SIGKILL)
    time.sleep(0.2)  # not reaped: a zombie
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [w for w in workers if Path(f"/proc/{w}").exists()]
    process.wait(timeout=10)
    assert alive == []

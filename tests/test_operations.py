"""Operating the worker: one refresh at a time, dry runs."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli import EXIT_LOCKED, cli
from aggregator.lock import Locked, exclusive, holder, lock_path

from .support import DATA, FeedServer, write_config

HOLD_LOCK = """
import sys, time
from pathlib import Path
from aggregator.lock import exclusive
with exclusive(Path(sys.argv[1]), command=sys.argv[2] if len(sys.argv) > 2 else ""):
    print("locked", flush=True)
    time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 60)
"""


def hold_lock(lock: Path, command: str = "", seconds: float = 60) -> subprocess.Popen[str]:
    """A process holding ``lock`` as ``command`` for ``seconds``, once it has it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock), command, str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def refresh(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "refresh", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_second_refresh_exits_at_once_while_one_runs(server: FeedServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"url": server.serve("/f", b"<rss/>")}])
    lock = lock_path(tmp_path / "aggregator.sqlite")

    with exclusive(lock):
        started = time.monotonic()
        second = refresh(config)
        elapsed = time.monotonic() - started

    assert second.returncode == EXIT_LOCKED
    assert "another aggregator (pid " in second.stderr and "is running" in second.stderr
    assert elapsed < 10
    assert not (tmp_path / "output").exists()
    assert refresh(config).returncode == 0  # the lock is free again


def test_a_lock_left_by_a_killed_process_is_recovered(server: FeedServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"url": server.serve("/f", b"<rss/>")}])
    lock = lock_path(tmp_path / "aggregator.sqlite")
    holder = hold_lock(lock, "refresh")
    assert refresh(config).returncode == EXIT_LOCKED

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert holder.stdout is not None
    holder.stdout.close()

    assert lock.exists()  # the file stays; the lock went with the process
    assert refresh(config).returncode == 0


def test_status_during_a_refresh_answers_at_once_with_what_is_stored(
    server: FeedServer, tmp_path: Path
) -> None:
    """A refresh commits the sources it has stored every half second
    (``Store.grouped``), holding SQLite's write lock in between: ``status``
    from another process neither waits for it nor misses a finished source."""
    fast = server.serve("/fast.xml", (DATA / "feeds" / "fr_rss.xml").read_bytes())
    slow = server.serve("/slow.xml", (DATA / "feeds" / "en_atom.xml").read_bytes(), delay=6)
    config = write_config(tmp_path, [{"name": "Fast", "url": fast}, {"name": "Slow", "url": slow}])
    running = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "-q", "refresh", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not server.hits("/fast.xml") or "/slow.xml" not in server.in_flight():
            assert time.monotonic() < deadline, "the refresh did not start"
            time.sleep(0.05)
        time.sleep(1.5)  # the fast source is stored and committed; the slow one waits
        started = time.monotonic()
        status = subprocess.run(
            [sys.executable, "-m", "aggregator", "status", "--config", str(config)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        still_running = running.poll() is None
    finally:
        running.wait(timeout=60)

    assert status.returncode == 0, status.stderr
    assert still_running and elapsed < 4
    fast_line, slow_line = (
        next(line for line in status.stdout.splitlines() if line.startswith(name))
        for name in ("Fast", "Slow")
    )
    assert "never" not in fast_line and "never fetched" in slow_line
    assert running.returncode == 0


def test_preview_shows_what_would_be_published_and_writes_nothing(
    server: FeedServer, tmp_path: Path
) -> None:
    url = server.serve("/fr.xml", (DATA / "feeds" / "fr_rss.xml").read_bytes())
    config = write_config(tmp_path, [{"name": "Courrier", "url": url}])
    runner = CliRunner()
    assert runner.invoke(cli, ["refresh", "--config", str(config)]).exit_code == 0
    out = tmp_path / "output"
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    store_before = (tmp_path / "aggregator.sqlite").read_bytes()
    tuned = write_config(
        tmp_path,
        [{"name": "Courrier", "url": url}],
        classify={"kg": {"add": ["Tbilissi"]}},
        outputs=[{"slug": "kirghizstan-fr", "countries": ["kg"], "languages": ["fr"]}],
    )

    result = runner.invoke(cli, ["preview", "--config", str(tuned)])

    assert result.exit_code == 0, result.output
    assert "5 stored items; 1 would change country with these rules" in result.output
    section = result.output.split("kirghizstan-fr.xml")[1].split("\n\n")[0]
    assert "Géorgie : manifestations massives à Tbilissi — Courrier" in section
    assert "Le Kirghizistan adopte une nouvelle loi sur les médias" in section
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert not (out / "kirghizstan-fr.xml").exists()
    assert (tmp_path / "aggregator.sqlite").read_bytes() == store_before


def test_preview_waits_for_the_refresh_in_progress(server: FeedServer, tmp_path: Path) -> None:
    """preview writes (then rolls back): during a refresh, SQLite refused it
    ("database is locked", as if the store were unusable). It waits its turn."""
    url = server.serve("/fr.xml", (DATA / "feeds" / "fr_rss.xml").read_bytes())
    config = write_config(tmp_path, [{"name": "Courrier", "url": url}])
    assert refresh(config).returncode == 0
    lock = lock_path(tmp_path / "aggregator.sqlite")
    holder = hold_lock(lock, "refresh")
    preview = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "preview", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert preview.stderr is not None
        waiting = preview.stderr.readline()
        assert f"another aggregator (pid {holder.pid}, refresh) is running: waiting" in waiting
        assert preview.poll() is None
    finally:
        holder.kill()  # the refresh ends
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()
    out, _ = preview.communicate(timeout=60)

    assert preview.returncode == 0
    assert "5 stored items" in out


@pytest.mark.parametrize("quiet", [False, True])
def test_a_refresh_waits_for_a_preview_or_reclassify_but_not_for_a_refresh(
    server: FeedServer, tmp_path: Path, quiet: bool
) -> None:
    """An editor's preview used to make the cron refresh exit 75 ("locked"),
    which cron mails: a refresh now waits for the commands run by hand, and
    with -q says nothing while it waits."""
    url = server.serve("/fr.xml", (DATA / "feeds" / "fr_rss.xml").read_bytes())
    config = write_config(tmp_path, [{"name": "Courrier", "url": url}])
    lock = lock_path(tmp_path / "aggregator.sqlite")
    command = [sys.executable, "-m", "aggregator", *(["-q"] if quiet else []), "refresh"]

    holder = hold_lock(lock, "preview", seconds=1.5)
    started = time.monotonic()
    waited = subprocess.run(
        [*command, "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    elapsed = time.monotonic() - started
    holder.wait(timeout=10)
    assert holder.stdout is not None
    holder.stdout.close()

    assert waited.returncode == 0, waited.stderr
    assert elapsed >= 1  # it waited for the preview to end
    assert (tmp_path / "output" / "kyrgyzstan.xml").exists()
    if quiet:
        assert waited.stderr == ""
    else:
        assert f"(pid {holder.pid}, preview) is running: waiting for it" in waited.stderr

    holder = hold_lock(lock, "refresh")
    try:
        started = time.monotonic()
        second = subprocess.run(
            [*command, "--config", str(config)], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == EXIT_LOCKED
        assert time.monotonic() - started < 10
        assert f"another aggregator (pid {holder.pid}, refresh) is running" in second.stderr
    finally:
        holder.kill()
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()


def test_a_wait_for_a_preview_ends_when_a_refresh_takes_over_or_on_stop(tmp_path: Path) -> None:
    """The daemon's check waits for an editor's preview, but neither for a
    refresh that took the lock after it, nor past SIGTERM (systemd would
    kill it)."""
    lock = tmp_path / "aggregator.sqlite.lock"
    seen: list[str] = []

    def wait(command: str) -> float:
        seen.append(command)
        return 300 if command == "preview" else 0

    with exclusive(lock, command="preview"):
        fd = os.open(lock, os.O_RDWR)
        started = time.monotonic()
        # (As a holder writes it: the old line cut, then the new one.)
        timer = threading.Timer(
            0.5, lambda: (os.ftruncate(fd, 0), os.pwrite(fd, b"999 refresh\n", 0))
        )
        timer.start()
        with pytest.raises(Locked, match=r"pid 999, refresh"):
            with exclusive(lock, wait, command="run"):
                pass
        timer.join()
        assert seen == ["preview", "refresh"] and time.monotonic() - started < 10

        os.ftruncate(fd, 0)
        os.pwrite(fd, b"998 preview\n", 0)
        os.close(fd)
        stop = threading.Event()
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        with pytest.raises(Locked, match=r"pid 998, preview"):
            with exclusive(lock, wait, command="run", stop=stop):
                pass
        assert 0.4 < time.monotonic() - started < 10  # it waited, until stopped


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"1234 preview\n", ("1234", "preview")),
        (b"1234\n", ("1234", "")),  # written by an older version
        (b"", ("?", "")),  # cut, not yet written again
        (b"999 refresh\nw\n", ("999", "refresh")),  # a longer line's end left behind
    ],
)
def test_the_lock_file_names_its_holder(
    tmp_path: Path, content: bytes, expected: tuple[str, str]
) -> None:
    path = tmp_path / "lock"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert holder(fd) == expected
    finally:
        os.close(fd)


def test_a_progress_bar_on_a_terminal_for_many_sources(server: FeedServer, tmp_path: Path) -> None:
    sources = [{"url": server.serve(f"/f{i}", b"<rss/>")} for i in range(12)]
    config = write_config(tmp_path, sources)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "refresh", "--config", str(config)],
        stdin=slave, stdout=slave, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = output.decode("utf-8", "replace")
    assert "refreshing" in text and "12/12" in text
    assert "12 sources: " in text  # the summary still follows

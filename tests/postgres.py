"""A private PostgreSQL server for the tests, from the machine's own binaries.

The session starts one server (initdb into a temporary folder, listening on
127.0.0.1 at a free port, fsync off) and stops it at the end; each test gets
a schema of its own in it. ``AGGREGATOR_TEST_POSTGRES`` set to a
``postgresql://`` URI uses that server instead of starting one.

The binaries come from Debian's ``postgresql`` package (``make test``
installs it when they are missing); ``PG_BINDIR`` may point elsewhere.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from aggregator.types import PostgresURL

ENV_URL = "AGGREGATOR_TEST_POSTGRES"


def _bindir() -> Path:
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL's server binaries are missing: `make test` installs them"
            " (Debian package postgresql), or set AGGREGATOR_TEST_POSTGRES to a server's URI"
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server() -> Iterator[str]:
    """A running server's URI (its ``postgres`` database), stopped at the end."""
    if os.environ.get(ENV_URL):
        yield os.environ[ENV_URL]
        return
    bindir = _bindir()
    folder = Path(tempfile.mkdtemp(prefix="aggregator-pg-"))
    # The server refuses to run as root: run it as Debian's postgres user then.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if prefix:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
    options = f"-F -p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=50"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
        "-w", "start")  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def fresh_schema(url: str) -> str:
    """A new, empty schema on the server at ``url``; returns a URI whose
    connections use it."""
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return PostgresURL(url).in_schema(name).url

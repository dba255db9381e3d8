"""Speed and memory of whole refreshes against a local farm of N feeds.

    python -m benchmarks.refresh [--sizes 100,200,500,1000] [--items 50] [--reader] [--keep]
                                 [--postgresql URI] [--repeat K] [--floor]

For each N, builds a farm of N sources x M items (``benchmarks/farm.py``:
RSS and Atom, French, English and Russian, ~2 kB of HTML per item, one item
in ten an agency copy), serves it on 127.0.0.1 from another process (ETag and
Last-Modified, keep-alive) and measures, each phase as a whole process (so
interpreter start-up and imports count; the child reports its own peak RSS
and CPU time):

Columns: wall time; ``CPU s``, the measured process's own CPU time; ``all
CPU``, the whole machine's busy CPU time during the run (from /proc/stat:
with the worker processes that prepare items in a cold refresh, and the farm
server, which serves reader alike); items per second; ``peak MB``, the
measured process's peak RSS; ``all MB``, the peak of its RSS and its
descendants' (worker processes and the server they are forked from) summed,
sampled every 0.1 s (shared pages count in each process, so it is an upper
bound).

a) ``cold``: ``aggregator refresh --force`` into an empty store;
b) ``warm``: the same again, every source answering 304;
c) ``changed``: again after 10% of the sources got 5 new items each;
d) ``publish``: ``publish()`` alone, after deleting ``output/`` so that every
   file is written.

With ``--reader`` (``pip install -e '.[bench]'``), lemon24/reader updates the
same farm (16 workers) cold and warm, also each as a whole process, after its
feeds were added in a process that is not timed; the ratios ours/reader are
printed. The server shares the machine with the process measured.

With ``--repeat K``, the cold and warm phases run K times each, ours and
reader's alternated, each cold one from an empty store; the run of median
wall time is shown, with the range. This machine's speed drifts by a third
from one quarter of an hour to the next: medians of alternated runs are
steadier than one run.

With ``--floor``, a first phase ``floor`` is a cold refresh with no
language work: every item stored as not about the region, unclassified,
unsigned and without fingerprint (``benchmarks/floor.py``); fetching,
parsing, sanitizing, storing and publishing run as in a real refresh. It is
the least time this design can take, however fast classification and
clustering became.

With ``--postgresql URI`` (a server's database, e.g.
``postgresql://postgres@127.0.0.1:5432/postgres``), our store is a fresh
schema ``bench_<N>`` of that database instead of a SQLite file.

Targets: cold 200x50 at least 10x faster than reader, warm no slower than
reader, cold 1000x50 under 20 s and 400 MB, and time(2N) <= 2.2 x time(N).
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from aggregator.config import load_config
from aggregator.store import open_store
from aggregator.types import PostgresURL
from benchmarks import farm

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 16
CHANGED_FRACTION = 0.1
NEW_PER_CHANGED = 5

#: Run first in every measured process: report its own peak RSS and CPU at
#: exit. The peak is Linux's VmHWM: ``ru_maxrss`` would not do, since at exec
#: Linux folds the replaced memory's peak into it, and subprocess starts the
#: child with vfork, whose memory is this (benchmark) process's, farm and all.
PRELUDE = """\
import atexit, resource, sys
def _probe_report():
    u = resource.getrusage(resource.RUSAGE_SELF)
    peak = u.ru_maxrss
    try:
        with open("/proc/self/status") as status:
            peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        pass
    sys.stderr.write(f"\\nPROBE maxrss_kb={peak} cpu_s={u.ru_utime + u.ru_stime:.3f}\\n")
    sys.stderr.flush()
atexit.register(_probe_report)
"""

REFRESH = """
from aggregator.cli import cli
cli.main(sys.argv[1:], prog_name="aggregator", standalone_mode=False)
"""

#: :data:`REFRESH` with no language work (``benchmarks/floor.py``).
FLOOR = "import benchmarks.floor\n" + REFRESH

PUBLISH = """
from aggregator.config import load_config
from aggregator.publish import publish
from aggregator.store import open_store
from aggregator.types import PostgresURL
config = load_config(sys.argv[1])
store = open_store(config.storage)
try:
    report = publish(store, config)
finally:
    store.close()
print(f"{len(report.written)} files written, {len(report.unchanged)} unchanged")
"""

READER_SETUP = """
from pathlib import Path
from reader import make_reader
r = make_reader(sys.argv[1])
for url in Path(sys.argv[2]).read_text().split():
    r.add_feed(url, exist_ok=True)
r.close()
"""

READER_UPDATE = """
import inspect
from reader import make_reader
r = make_reader(sys.argv[1])
kwargs = {"workers": int(sys.argv[2])}
if "scheduled" in inspect.signature(r.update_feeds).parameters:
    kwargs["scheduled"] = False  # every feed, like refresh --force
r.update_feeds(**kwargs)
print(f"entries={r.get_entry_counts().total} broken={r.get_feed_counts(broken=True).total}")
r.close()
"""

SUMMARY = re.compile(
    r"(\d+) sources: (\d+) updated, (\d+) unchanged, (\d+) failed.*?; (\d+) new items"
)
ABOUT_REGION = re.compile(r"new items \((\d+) about the region\)")


@dataclass
class Run:
    wall: float
    #: The measured process's own CPU time.
    cpu: float
    peak_mb: float
    stdout: str
    #: CPU time of the whole machine during the run (None where /proc/stat
    #: is missing): the measured process, its worker processes, and the farm
    #: server, which serves ours and reader alike.
    machine_cpu: float | None = None
    #: Peak of the memory of the process and its descendants together,
    #: sampled (None where /proc is missing).
    all_mb: float | None = None


@dataclass
class Row:
    n: int
    phase: str
    items: int
    run: Run
    #: What went wrong: unexpected counts, failures.
    notes: list[str] = field(default_factory=list)
    #: What to know: the spread of repeated runs.
    remarks: list[str] = field(default_factory=list)


class ProbeError(RuntimeError):
    pass


def probe(code: str, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``code`` in a new interpreter (with ``env`` added to the
    environment); its wall time, CPU time and peak RSS, and the peak of the
    memory of it and its worker processes together."""
    busy = machine_busy()
    tree_peak_kb: int | None = 0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", PRELUDE + code, *args],
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            stdout=out,
            stderr=err,
            text=True,
        )
        while True:
            rss = tree_rss_kb(process.pid)
            tree_peak_kb = None if rss is None or tree_peak_kb is None else max(tree_peak_kb, rss)
            try:
                process.wait(timeout=SAMPLE_EVERY)  # returns as soon as it exits
                break
            except subprocess.TimeoutExpired:
                if time.perf_counter() - started > 3600:
                    process.kill()
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    after = machine_busy()
    machine_cpu = after - busy if busy is not None and after is not None else None
    reports = re.findall(r"PROBE maxrss_kb=(\d+) cpu_s=([\d.]+)", stderr)
    if process.returncode != 0 or not reports:
        raise ProbeError(f"exit {process.returncode}: {stderr.strip()[-2000:]}\n{stdout[-2000:]}")
    rss_kb, cpu = reports[-1]
    own_mb = int(rss_kb) / 1024
    # Sampled, so it can miss the very top of a short peak: never below the process's own.
    all_mb = max(own_mb, tree_peak_kb / 1024) if tree_peak_kb else None
    return Run(wall, float(cpu), own_mb, stdout, machine_cpu, all_mb)


#: Seconds between two samples of the measured processes' memory.
SAMPLE_EVERY = 0.1


def tree_rss_kb(root: int) -> int | None:
    """Resident memory of a process and its descendants (the worker processes
    of a cold refresh, and the server they are forked from) summed, from
    Linux's /proc; None where that is missing. Pages that processes share
    count once in each."""
    total, todo = 0, [root]
    try:
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/status", encoding="ascii") as status:
                    total += next(
                        (int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0
                    )
                for task in os.scandir(f"/proc/{pid}/task"):
                    with open(f"{task.path}/children", encoding="ascii") as children:
                        todo.extend(int(child) for child in children.read().split())
            except (FileNotFoundError, ProcessLookupError):
                continue  # it ended meanwhile
    except OSError:
        return None
    return total


def machine_busy() -> float | None:
    """Seconds of CPU the machine has spent busy since boot, all cores and
    processes together (Linux's /proc/stat), or None elsewhere. The worker
    processes of a cold refresh are not children the measured process waits
    for, so its own CPU time leaves them out; this does not."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = sum(fields[3:5])  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def stored_items(config: Path) -> int:
    with open_store(load_config(config).storage) as store:
        return store.count_items()


def fresh_schema(url: str, n: int) -> str:
    """The URI of an empty schema ``bench_<n>`` in the database at ``url``."""
    import psycopg

    name = f"bench_{n}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        conn.execute(f"CREATE SCHEMA {name}")
    return PostgresURL(url).in_schema(name).url


def check_refresh(run: Run, n: int, updated: int, unchanged: int, new: int) -> list[str]:
    """What differs from the expected summary line of ``refresh``."""
    found = SUMMARY.search(run.stdout)
    if found is None:
        return ["no summary line in the output of refresh"]
    got = tuple(int(g) for g in found.groups())
    want = (n, updated, unchanged, 0, new)
    if got == want:
        return []
    names = ("sources", "updated", "unchanged", "failed", "new items")
    return [
        f"{name} {g} (expected {w})" for name, g, w in zip(names, got, want, strict=True) if g != w
    ]


class Table:
    HEADER = (
        f"{'N':>5} {'M':>4}  {'phase':<14} {'items':>7} {'wall s':>7} {'CPU s':>7}"
        f" {'all CPU':>7} {'items/s':>8} {'peak MB':>8} {'all MB':>7}"
    )

    def __init__(self) -> None:
        self.rows: list[Row] = []
        print(self.HEADER, flush=True)

    def add(self, row: Row, m: int) -> None:
        self.rows.append(row)
        rate = f"{row.items / row.run.wall:,.0f}" if row.items else "-"
        machine = "-" if row.run.machine_cpu is None else f"{row.run.machine_cpu:.2f}"
        together = "-" if row.run.all_mb is None else f"{row.run.all_mb:.0f}"
        print(
            f"{row.n:>5} {m:>4}  {row.phase:<14} {row.items:>7} {row.run.wall:>7.2f}"
            f" {row.run.cpu:>7.2f} {machine:>7} {rate:>8} {row.run.peak_mb:>8.0f} {together:>7}",
            flush=True,
        )
        for note in row.notes:
            print(f"{'':>12}  ! {note}", flush=True)
        for remark in row.remarks:
            print(f"{'':>12}    ({remark})", flush=True)

    def get(self, n: int, phase: str) -> Run | None:
        for row in self.rows:
            if row.n == n and row.phase == phase:
                return row.run
        return None


class Server:
    """``python -m benchmarks.farm serve`` in a child process."""

    def __init__(self, folder: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.farm", "serve", "--dir", str(folder), "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the farm server did not start: {line!r}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def reader_available() -> str | None:
    """The installed reader's version, or None."""
    try:
        import reader
    except ImportError:
        return None
    return str(getattr(reader, "__version__", "?"))


def measure(
    n: int,
    m: int,
    folder: Path,
    table: Table,
    with_reader: bool,
    seed: int,
    postgresql: str | None,
    repeat: int = 1,
    floor: bool = False,
) -> None:
    started = time.perf_counter()
    farm.build(folder, n, m, seed=seed)
    size = sum(p.stat().st_size for p in (folder / "feeds").iterdir()) / 1e6
    print(
        f"{'':>12}  (farm of {n} x {m} built in {time.perf_counter() - started:.1f} s,"
        f" {size:.1f} MB, in {folder})",
        flush=True,
    )
    server = Server(folder)
    try:
        storage = fresh_schema(postgresql, n) if postgresql else "bench.sqlite"
        config = farm.write_config(folder, server.port, n, storage)
        refresh = [str(config), "--force"]
        if floor:
            table.add(measure_floor(n, m, folder, refresh), m)
            forget(folder, postgresql, n)
        # Cold and warm, ours then reader's, ``repeat`` times over: each time
        # from an empty store, so that a spell of the machine weighs on both.
        runs: dict[str, list[Row]] = {}
        for round_ in range(repeat):
            if round_:
                forget(folder, postgresql, n)
            run = probe(REFRESH, ["refresh", "--config", *refresh], folder)
            notes = check_refresh(run, n, n, 0, n * m)
            if (count := stored_items(config)) != n * m:
                notes.append(f"{count} items in the store (expected {n * m})")
            runs.setdefault("cold", []).append(Row(n, "cold", n * m, run, notes))
            run = probe(REFRESH, ["refresh", "--config", *refresh], folder)
            warm = Row(n, "warm", 0, run, check_refresh(run, n, 0, n, 0))
            runs.setdefault("warm", []).append(warm)
            if with_reader:
                for row in measure_reader(n, m, folder, server.port):
                    runs.setdefault(row.phase, []).append(row)
        for rows in runs.values():
            table.add(median(rows), m)

        changed = len(farm.mutate(folder, CHANGED_FRACTION, seed=seed + 1))
        new = changed * NEW_PER_CHANGED
        run = probe(REFRESH, ["refresh", "--config", *refresh], folder)
        notes = check_refresh(run, n, changed, n - changed, new)
        if (count := stored_items(config)) != n * m + new:
            notes.append(f"{count} items in the store (expected {n * m + new})")
        table.add(Row(n, f"changed {changed}", new, run, notes), m)

        shutil.rmtree(folder / "output", ignore_errors=True)
        run = probe(PUBLISH, [str(config)], folder)
        table.add(Row(n, "publish", stored_items(config), run), m)
    finally:
        server.stop()


def measure_floor(n: int, m: int, folder: Path, refresh: list[str]) -> Row:
    """A cold refresh with no language work (``benchmarks/floor.py``)."""
    # The server the workers are forked from imports the stand-in by name.
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    run = probe(FLOOR, ["refresh", "--config", *refresh], folder, {"PYTHONPATH": path})
    notes = check_refresh(run, n, n, 0, n * m)
    found = ABOUT_REGION.search(run.stdout)
    if found is None or found[1] != "0":
        notes.append("items were classified: the stand-in did not reach every process")
    return Row(n, "floor", n * m, run, notes)


def forget(folder: Path, postgresql: str | None, n: int) -> None:
    """Empty our store and output, for another cold refresh."""
    if postgresql:
        fresh_schema(postgresql, n)
    else:
        for path in folder.glob("bench.sqlite*"):
            path.unlink()
    shutil.rmtree(folder / "output", ignore_errors=True)


def median(rows: list[Row]) -> Row:
    """The run of median wall time, noting the others' range and every run's notes."""
    ordered = sorted(rows, key=lambda row: row.run.wall)
    middle = ordered[(len(ordered) - 1) // 2]
    notes = list(dict.fromkeys(note for row in rows for note in row.notes))
    remarks = []
    if len(rows) > 1:
        walls = f"{ordered[0].run.wall:.2f}-{ordered[-1].run.wall:.2f}"
        remarks.append(f"median of {len(rows)} runs; wall {walls} s")
    return Row(middle.n, middle.phase, middle.items, middle.run, notes, remarks)


def measure_reader(n: int, m: int, folder: Path, port: int) -> list[Row]:
    """reader's cold and warm updates of the farm, from a new database."""
    db = folder / "reader.sqlite"
    for path in folder.glob("reader.sqlite*"):
        path.unlink()
    urls = folder / "reader-urls.txt"
    urls.write_text("".join(f"http://127.0.0.1:{port}/{farm.feed_path(i)}\n" for i in range(n)))
    probe(READER_SETUP, [str(db), str(urls)], folder)  # not timed
    rows = []
    for phase, expected in (("reader cold", n * m), ("reader warm", 0)):
        run = probe(READER_UPDATE, [str(db), str(WORKERS)], folder)
        notes = []
        found = re.search(r"entries=(\d+) broken=(\d+)", run.stdout)
        if found is None:
            notes.append("no counts printed")
        else:
            entries, broken = int(found[1]), int(found[2])
            if entries != n * m:
                notes.append(f"{entries} entries stored (expected {n * m})")
            if broken:
                notes.append(f"{broken} feeds failed")
        rows.append(Row(n, phase, expected, run, notes))
    return rows


def verdict(ok: bool) -> str:
    return "holds" if ok else "MISSES"


def report_targets(table: Table, sizes: list[int], m: int, with_reader: bool) -> None:
    print("\nours / reader (wall time; below 1 means we are faster):")
    for n in sizes:
        for phase in ("cold", "warm"):
            ours, theirs = table.get(n, phase), table.get(n, f"reader {phase}")
            if ours and theirs:
                print(
                    f"  N={n:<5} {phase}: {ours.wall / theirs.wall:.3f}"
                    f"  (reader takes {theirs.wall / ours.wall:.1f}x our time)"
                )
    for n in sizes:
        floor, theirs = table.get(n, "floor"), table.get(n, "reader cold")
        if floor and theirs:
            print(
                f"  N={n:<5} floor: {floor.wall / theirs.wall:.3f}"
                f"  (reader takes {theirs.wall / floor.wall:.1f}x the time of a cold refresh"
                " with no language work: the most faster classification and clustering could give)"
            )
    if not with_reader:
        print("  reader not measured")

    print("\ntargets:")
    ours, theirs = table.get(200, "cold"), table.get(200, "reader cold")
    if m == 50 and ours and theirs:
        ratio = theirs.wall / ours.wall
        print(
            f"  cold 200x50 at least 10x faster than reader: {verdict(ratio >= 10)}"
            f" (reader/ours = {ratio:.1f}x)"
        )
    else:
        print("  cold 200x50 at least 10x faster than reader: not measured")
    warm = [(n, table.get(n, "warm"), table.get(n, "reader warm")) for n in sizes]
    pairs = [(n, a, b) for n, a, b in warm if a and b]
    if pairs:
        for n, a, b in pairs:
            print(
                f"  warm {n}x{m} no slower than reader: {verdict(a.wall <= b.wall)}"
                f" ({a.wall:.2f} s vs {b.wall:.2f} s)"
            )
    else:
        print("  warm unchanged no slower than reader: not measured")
    big = table.get(1000, "cold")
    if m == 50 and big:
        memory = big.all_mb or big.peak_mb  # the workers' memory too, where measured
        ok = big.wall < 20 and memory < 400
        print(
            f"  cold 1000x50 under 20 s and 400 MB: {verdict(ok)}"
            f" ({big.wall:.1f} s, {memory:.0f} MB with the worker processes,"
            f" {big.peak_mb:.0f} MB the main process)"
        )
    else:
        print("  cold 1000x50 under 20 s and 400 MB: not measured")
    doubles = [(x, y) for x, y in pairwise(sorted(sizes)) if y == 2 * x]
    if not doubles:
        print("  scaling time(2N) <= 2.2 x time(N): not measured (no size doubles the previous)")
    for x, y in doubles:
        for phase in ("cold", "warm", "changed", "publish"):
            small, large = (
                next((r.run for r in table.rows if r.n == n and r.phase.startswith(phase)), None)
                for n in (x, y)
            )
            if small and large:
                factor = large.wall / small.wall
                print(f"  scaling {phase} {x} -> {y}: {verdict(factor <= 2.2)} (x{factor:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="100,200,500,1000", help="numbers of sources")
    parser.add_argument("--items", type=int, default=50, help="items per source")
    parser.add_argument("--reader", action="store_true", help="also measure lemon24/reader")
    parser.add_argument("--keep", action="store_true", help="keep the farms and stores")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgresql", metavar="URI", help="store in this PostgreSQL database")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="cold and warm runs per size, ours and reader's alternated; the median is shown",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also a cold refresh with no classification, clustering or fingerprints",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    with_reader = False
    if args.reader:
        version = reader_available()
        if version is None:
            print(
                "reader is not installed: install the benchmark extras with"
                " `.venv/bin/pip install -e '.[bench]'` (or `make bench`); measuring ours only",
                flush=True,
            )
        else:
            with_reader = True
            print(f"reader {version}, {WORKERS} workers", flush=True)
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs;"
        f" sources x {args.items} items; each phase is a whole process",
        flush=True,
    )
    # As pip does when it installs a package (reader's bytecode is there): a
    # checkout run with PYTHONDONTWRITEBYTECODE would compile every module of
    # ours again in every measured process.
    compileall.compile_dir(ROOT / "aggregator", quiet=1)
    base = Path(tempfile.mkdtemp(prefix="bench-refresh-"))
    table = Table()
    try:
        for n in sizes:
            measure(
                n,
                args.items,
                base / f"n{n}",
                table,
                with_reader,
                args.seed,
                args.postgresql,
                max(1, args.repeat),
                args.floor,
            )
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    report_targets(table, sizes, args.items, with_reader)


if __name__ == "__main__":
    main()

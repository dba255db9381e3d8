"""The ``aggregator`` command line: thin click commands over the library.

Exit codes: 0 the command completed (a refresh completes even when some
sources failed: they are reported); 1 invalid configuration; 3 unusable
store; 4 the output folder cannot be written; 5 a worker process died (out of
memory?); 75 another refresh holds the store's lock; 2 wrong usage (click's own);
143 or 130 a refresh stopped by SIGTERM or Ctrl-C (what it stored is published).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import click

from . import __version__
from .classify import LABELS, Classifier
from .config import load_config
from .errors import ConfigError, OutputError, StoreError, WorkersDied
from .lock import Locked, Wait, refresh_lock
from .pipeline import give_names, publish_if_changed, reclassify_all
from .pipeline import refresh as run_refresh
from .publish import outputs, published_sources, source_priorities, stories, story_of
from .store import Store, StoredItem, explained_matches, open_store
from .types import COUNTRIES, Classification, Config, RunReport, SourceReport, Status, redacted

EXIT_CONFIG = 1
EXIT_STORE = 3
#: The output folder cannot be written (the items are stored).
EXIT_OUTPUT = 4
#: A worker process died (killed, out of memory): the refresh stopped.
EXIT_WORKERS = 5
#: ``explain`` found no stored item by that link or id.
EXIT_NOT_FOUND = 6
#: Another aggregator holds the store's lock (EX_TEMPFAIL: try again later).
EXIT_LOCKED = 75
#: ``status`` asks about a source that answers but has brought nothing new for this long.
STALE = timedelta(days=14)
#: Signals that stop a refresh after its writes in progress (exit 128 + signal).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = logging.getLogger("aggregator")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("feeds.yaml"),
    show_default=True,
    help="The configuration file; relative paths in it are relative to it.",
)


@click.group()
@click.version_option(__version__, prog_name="aggregator")
@click.option("-v", "--verbose", count=True, help="Log more (one line per source with -v).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Curated news feeds about Central Asia.

    Pulls the sources listed in feeds.yaml, drops duplicates, classifies every
    item by country and publishes one Atom feed per country plus the region.
    """
    level = logging.ERROR if quiet else (logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request at INFO: only worth seeing with -vv.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_redact)
    ctx.obj = {"quiet": quiet}


def _redact(record: logging.LogRecord) -> bool:
    """A log filter: URLs in a message, or in its exception, lose their
    credentials (``types.redacted``), whichever library logs them (httpx logs
    each request's URL as sent)."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it, as without the filter
        return True
    if "@" in message and (clean := redacted(message)) != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = redacted(logging.Formatter().formatException(record.exc_info))
    return True


@cli.command()
@config_option
@click.option("--force", is_flag=True, help="Fetch every source now, even those not due yet.")
@click.pass_context
def refresh(ctx: click.Context, config_path: Path, force: bool) -> None:
    """Refresh the sources that are due, publish the feeds, print a summary.

    A source is due when its interval has passed (longer if it asked for it
    with max-age or ttl, or after failures). Exits 0 when the run completed,
    even if some sources failed. SIGTERM or Ctrl-C stops it after the source
    writes in progress, publishes what is stored and exits with 128 + the
    signal's number; a second one stops it at once.
    """
    config = _load(config_path)
    stop = threading.Event()
    stopped_by: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.warning("signal %d: stopping after the writes in progress (again: at once)", signum)
        stopped_by.append(signum)
        stop.set()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    # A preview or reclassify that an editor started is waited for; a signal
    # while waiting stops the refresh as it would before any work.
    with _locked(config, "refresh", wait=_for_hand_commands, quiet=ctx.obj["quiet"]):
        previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
        try:
            with _open(config) as store, _progress(ctx, config) as progress:
                report = run_refresh(config, store, force=force, progress=progress, stop=stop)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    if not ctx.obj["quiet"]:
        _print_report(report, config)
    else:
        # The failures are the errors -q prints: from cron, mailed. A failing
        # source is retried less and less often (failure backoff), and so is
        # its line printed.
        for failed in report.failures:
            click.echo(f"error: {failed.source.name}: {failed.error}", err=True)
    if stopped_by:
        sys.exit(128 + stopped_by[0])


@cli.command()
@config_option
def run(config_path: Path) -> None:
    """Refresh on a schedule until stopped (SIGTERM or Ctrl-C).

    Checks every minute (or every schedule.interval_minutes, if shorter) for
    sources that are due, fetches them and publishes; the first check is at
    once. The configuration is read again before each check: an invalid one
    is reported and the previous one kept.
    """
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    config = _load(config_path)
    with _open(config):
        pass  # fail now, not in the scheduler, if the store is unusable
    current = {"config": config}
    stop = threading.Event()

    def job() -> None:
        if stop.is_set():
            return
        try:
            current["config"] = load_config(config_path)
        except ConfigError as e:
            log.error("keeping the previous configuration: %s", e)
        cfg = current["config"]
        try:
            with (
                # An editor's preview is waited for, but not past SIGTERM.
                refresh_lock(cfg.storage, _for_hand_commands, command="run", stop=stop),
                _store_or_raise(cfg) as store,
            ):
                report = run_refresh(cfg, store, stop=stop)
        except Locked as e:
            log.warning("skipping this check: %s", e)
            return
        except (StoreError, OutputError) as e:
            log.error("refresh failed: %s", e)
            return
        except WorkersDied as e:
            # The dead pool's thread may never end, and would keep the daemon
            # from exiting: exit now (the store is closed, the lock released),
            # and let the service manager start it again.
            log.error("refresh failed: %s; exiting", e)
            _exit_now(EXIT_WORKERS)
        # A check in which no source was due is routine: seen with -v only.
        fetched = any(r.status not in (Status.NOT_DUE, Status.GONE) for r in report.sources)
        log.log(logging.WARNING if fetched else logging.INFO, _summary_line(report, cfg))
        for failed in report.failures:  # which ones, and why: the summary only counts them
            log.warning("%s failed: %s", failed.source.name, failed.error)

    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(
        job,
        IntervalTrigger(minutes=min(config.interval_minutes, 1.0)),
        id="refresh",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.warning("signal %d: stopping (fetches in flight are abandoned)", signum)
        stop.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(
        f"refreshing {len(config.sources)} sources, each every {config.interval_minutes:g} min"
        " by default (due sources are checked every minute); stop with Ctrl-C or SIGTERM",
        err=True,
    )
    scheduler.start()


@cli.command()
@config_option
def check(config_path: Path) -> None:
    """Validate the configuration and list the sources."""
    config = _load(config_path)
    click.echo(f"{config.path}: valid")
    click.echo(f"  store:  {config.storage}")
    click.echo(f"  output: {config.output.dir} (at most {config.output.max_entries} per feed)")
    click.echo(f"  every:  {config.interval_minutes:g} minutes per source by default")
    click.echo(f"{len(config.sources)} sources (name, language, home country, URL):")
    width = max((len(s.name) for s in config.sources), default=0)
    for source in config.sources:
        language, country = source.language or "--", source.country or "--"
        click.echo(f"  {source.name:<{width}}  {language:<3} {country:<3} {redacted(source.url)}")


@cli.command()
@config_option
def status(config_path: Path) -> None:
    """Show each source's state: last success, failures, next attempt, moves."""
    config = _load(config_path)
    _exit_unless_stored(config)
    with _open(config) as store:
        states = {s.url: s for s in store.sources()}
        items = store.count_items()
        per_source = store.items_per_source()
    width = max((len(s.name) for s in config.sources), default=0)
    width = max(width, len("source"))
    click.echo(f"{config.storage}: {items} items stored")
    click.echo(
        f"{'source':<{width}}  {'last success':<17} {'fails':>5}  {'next attempt':<17}"
        f" {'items':>6}  newest item"
    )
    for source in config.sources:
        state = states.get(source.url)
        if state is None:
            click.echo(f"{source.name:<{width}}  never fetched")
            continue
        success = f"{state.last_success:%Y-%m-%d %H:%M}" if state.last_success else "never"
        upcoming = f"{state.next_attempt:%Y-%m-%d %H:%M}" if state.next_attempt else "now"
        if state.gone:
            upcoming = "never"
        stored, newest = per_source.get(source.url, (0, None))
        seen = f"{newest:%Y-%m-%d %H:%M}" if newest else "none"
        click.echo(
            f"{source.name:<{width}}  {success:<17} {state.failures:>5}  {upcoming:<17}"
            f" {stored:>6}  {seen}"
        )
        if newest and state.last_success and state.last_success - newest > STALE:
            days = (state.last_success - newest).days
            click.echo(
                f"{'':<{width}}  nothing new for {days} days though it answers:"
                " has its feed moved, or stopped?"
            )
        elif newest is None and state.last_success:
            # Its items were pruned, or it never listed one young enough to keep.
            click.echo(
                f"{'':<{width}}  nothing stored though it answers: its feed lists no item"
                f" of the last {config.retention_days:g} days"
            )
        if state.gone:
            click.echo(f"{'':<{width}}  gone: HTTP 410 since {state.gone:%Y-%m-%d}")
        elif state.last_error:
            click.echo(f"{'':<{width}}  last error: {state.last_error}")
        if state.moved_to:
            click.echo(f"{'':<{width}}  moved permanently to {redacted(state.moved_to)}")


@cli.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Apply this file's classify: rules [default: feeds.yaml if it exists].",
)
@click.option(
    "--country",
    "hint",
    type=click.Choice(COUNTRIES),
    default=None,
    help="Classify as if from a source with this home country.",
)
@click.argument("text")
def classify(config_path: Path | None, hint: str | None, text: str) -> None:
    """Print the country decision for TEXT, as if it were a headline."""
    if config_path is None and Path("feeds.yaml").exists():
        config_path = Path("feeds.yaml")
    if config_path is None:
        classifier = Classifier()
    else:
        classifier = Classifier.from_config(_load(config_path).classify)
    _print_classification(classifier.classify_text(text, hint))


@cli.command()
@config_option
@click.pass_context
def reclassify(ctx: click.Context, config_path: Path) -> None:
    """Classify every stored item again, with the current gazetteer and
    feeds.yaml rules, and publish. Use after changing classify: rules."""
    config = _load(config_path)
    with _locked(config, "reclassify", wait=HAND_WAIT), _open(config) as store:
        with store.transaction():
            if give_names(store, config.sources):
                store.bump_generation()
            total, changed = reclassify_all(store, config)
        report = publish_if_changed(store, config)
    if not ctx.obj["quiet"]:
        click.echo(
            f"{total} items classified again, {changed} changed;"
            f" {len(report.written)} files written to {config.output.dir}"
            + (f" ({len(report.removed)} removed)" if report.removed else "")
        )


@cli.command()
@config_option
@click.argument("url")
def explain(config_path: Path, url: str) -> None:
    """Print the stored decision for the item whose link (or id) is URL, or
    for each report of the published entry whose id (urn:uuid:...) it is."""
    config = _load(config_path)
    _exit_unless_stored(config, EXIT_NOT_FOUND)
    with _open(config) as store:
        items = store.items_by_link(url)
        if not items:
            click.echo(f"error: no stored item or entry has the link or id {url}", err=True)
            sys.exit(EXIT_NOT_FOUND)
        for item in items:
            _print_item(store, item, source_priorities(config))


@cli.command()
@config_option
@click.option(
    "--limit",
    default=10,
    show_default=True,
    type=click.IntRange(min=0),
    help="Entries shown per feed.",
)
def preview(config_path: Path, limit: int) -> None:
    """Show what the current feeds.yaml would publish from the stored items,
    per feed, without writing anything.

    The stored items are classified again with the current classify: rules
    (in a transaction that is rolled back), then each output's filters are
    applied: try a rule change here before running reclassify.
    """
    config = _load(config_path)
    _exit_unless_stored(config)
    # It writes (then rolls back): after the refresh in progress, if any.
    with _locked(config, "preview", wait=HAND_WAIT), _open(config) as store, store.rolled_back():
        give_names(store, config.sources)
        total, changed = reclassify_all(store, config)
        click.echo(f"{total} stored items; {changed} would change country with these rules")
        priorities = source_priorities(config)
        listed = published_sources(store, config)
        for output in outputs(config):
            chosen = stories(store, output, priorities, listed)
            click.echo(f"\n{output.slug}.xml: {output.title} ({len(chosen)} entries)")
            for story in chosen[:limit]:
                item = story.representative
                more = f" (+{len(story.others)})" if story.others else ""
                day = item.date.strftime("%Y-%m-%d")
                click.echo(f"  {day}  {item.title} — {item.source_name}{more}")
            if len(chosen) > limit:
                click.echo(f"  ... and {len(chosen) - limit} more")


# --- helpers -----------------------------------------------------------------


#: Sources from which a refresh on a terminal shows a progress bar.
PROGRESS_FROM = 10


@contextmanager
def _progress(
    ctx: click.Context, config: Config
) -> Iterator[Callable[[SourceReport], None] | None]:
    """A progress bar on stderr, on a terminal, for refreshes of many sources."""
    if ctx.obj["quiet"] or not sys.stderr.isatty() or len(config.sources) < PROGRESS_FROM:
        yield None
        return
    with click.progressbar(
        length=len(config.sources), label="refreshing", file=sys.stderr, show_pos=True
    ) as bar:
        yield lambda report: bar.update(1)


#: Seconds the commands an editor runs by hand (``preview``, ``reclassify``)
#: wait for the store's lock; and a refresh, or the daemon's check, for them.
#: A refresh does not wait for another refresh: the next run will do its work.
HAND_WAIT = 300
HAND_COMMANDS = frozenset({"preview", "reclassify"})


def _for_hand_commands(holder: str) -> float:
    """How long a refresh waits for the lock held by ``holder``."""
    return HAND_WAIT if holder in HAND_COMMANDS else 0


@contextmanager
def _locked(config: Config, command: str, wait: Wait = 0, quiet: bool = False) -> Iterator[None]:
    """The store's lock, for ``command``, waiting for it as :func:`.lock.exclusive`
    says, or exit with EXIT_LOCKED."""

    def waiting(reason: str) -> None:
        if not quiet:
            click.echo(f"{reason}: waiting for it to end (at most {HAND_WAIT} s)", err=True)

    try:
        with refresh_lock(config.storage, wait, waiting, command):
            yield
    except Locked as e:
        click.echo(f"error: {e}; not starting another", err=True)
        sys.exit(EXIT_LOCKED)
    except StoreError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_STORE)


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_CONFIG)


def _exit_unless_stored(config: Config, status: int = 0) -> None:
    """For a command that only reads: exit with ``status`` and say so when
    the SQLite store does not exist yet, rather than create an empty one."""
    if isinstance(config.storage, Path) and not config.storage.exists():
        click.echo(f"{config.storage}: no store yet (`aggregator refresh` makes it)", err=True)
        sys.exit(status)


@contextmanager
def _open(config: Config) -> Iterator[Store]:
    try:
        with _store_or_raise(config) as store:
            yield store
    except StoreError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_STORE)


@contextmanager
def _store_or_raise(config: Config) -> Iterator[Store]:
    store = open_store(config.storage)
    try:
        yield store
    finally:
        store.close()


def _print_report(report: RunReport, config: Config) -> None:
    width = max((len(r.source.name) for r in report.sources), default=6)
    click.echo(
        f"{'source':<{width}}  {'status':<12} {'items':>5} {'new':>4} {'kept':>4} {'time':>6}"
    )
    for r in report.sources:
        if r.status in (Status.ERROR, Status.GONE):
            status = click.style(f"{r.status.value:<12}", fg="red")
            click.echo(f"{r.source.name:<{width}}  {status} {r.error}")
        elif r.status is Status.NOT_DUE:
            click.echo(f"{r.source.name:<{width}}  {r.status.value:<12} {r.error}")
        else:
            click.echo(
                f"{r.source.name:<{width}}  {r.status.value:<12} {r.entries:>5} {r.new:>4}"
                f" {r.relevant:>4} {r.seconds:>5.1f}s"
            )
        if r.note:
            click.echo(click.style(f"{'':<{width}}  note: {r.note}", fg="yellow"))
    click.echo(_summary_line(report, config))


def _summary_line(report: RunReport, config: Config) -> str:
    by_status = {s: sum(r.status is s for r in report.sources) for s in Status}
    new = sum(r.new for r in report.sources)
    kept = sum(r.relevant for r in report.sources)
    skipped = by_status[Status.NOT_DUE] + by_status[Status.GONE]
    # A refresh stopped (SIGTERM) does not start the sources left.
    stopped = len(config.sources) - len(report.sources)
    return (
        f"{max(len(config.sources), len(report.sources))} sources:"
        f" {by_status[Status.OK]} updated,"
        f" {by_status[Status.NOT_MODIFIED]} unchanged, {by_status[Status.ERROR]} failed"
        f"{f', {skipped} not due' if skipped else ''}"
        f"{f', {stopped} not fetched (stopped)' if stopped > 0 else ''};"
        f" {new} new items ({kept} about the region);"
        f" {len(report.publish.written)} files written to {config.output.dir}"
        + (f" ({len(report.publish.removed)} removed)" if report.publish.removed else "")
        + f" in {report.seconds:.1f}s"
    )


def _print_outcome(countries: tuple[str, ...], regional: bool, prefix: str = "") -> None:
    """Where an item goes: the countries (primary first) and the region, or nowhere."""
    if countries or regional:
        names = ", ".join(LABELS[code] for code in countries) or "no single country"
        click.echo(f"{prefix}published: {names}{' (regional)' if regional else ''}")
        if countries:
            click.echo(f"{' ' * len(prefix)}primary:   {LABELS[countries[0]]}")
    else:
        click.echo(f"{prefix}dropped: not about Central Asia")


def _print_classification(c: Classification) -> None:
    _print_outcome(c.countries, c.regional)
    _print_matches(explained_matches(c.matches), "  ")
    if c.scores:
        scores = ", ".join(f"{k}={v:g}" for k, v in sorted(c.scores.items()))
        click.echo(f"scores:    {scores}")


def _print_matches(matches: list[dict[str, Any]], indent: str) -> None:
    for m in matches:
        text = f" {m['text']!r}" if m["text"] else ""
        times = f" x{m['count']}" if m.get("count", 1) > 1 else ""
        click.echo(
            f"{indent}{m['label']:<7} {m['points']:>4g} pts  {m['field']:<10} {m['kind']:<11}"
            f"{text}{times} (term {m['term']!r})"
        )


def _print_item(store: Store, item: StoredItem, priorities: dict[str, int]) -> None:
    click.echo(f"{item.title}")
    click.echo(f"  source:  {item.source_name} <{redacted(item.source_url)}>")
    click.echo(f"  link:    {item.link}")
    click.echo(f"  seen:    {item.first_seen.isoformat()}")
    published = item.published.isoformat() if item.published else "none given"
    click.echo(f"  dated:   {item.date.isoformat()} (published: {published})")
    expl = item.explanation
    _print_outcome(item.countries, item.regional, "  outcome: ")
    matches = expl.get("matches")
    _print_matches(matches if isinstance(matches, list) else [], "    ")
    scores = expl.get("scores")
    if isinstance(scores, dict) and scores:
        click.echo("  scores:  " + ", ".join(f"{k}={v:g}" for k, v in sorted(scores.items())))
    members = store.items_of_stories([item.story_id])
    if not members:
        click.echo(f"  story:   {item.story_uid} (not published)")
        return
    story = story_of(members, priorities)
    click.echo(
        f"  story:   {item.story_uid}, {len(members)} report(s), the one listed first represents it"
        + (" (* this item):" if len(members) > 1 else ":")
    )
    by_id = {m.id: m for m in members}
    for member in story.items:
        mark = "*" if member.id == item.id else " "
        how = _how_joined(member, by_id)
        click.echo(f"   {mark} {member.source_name}: {member.title} <{member.link}>{how}")


def _how_joined(item: StoredItem, by_id: dict[int, StoredItem]) -> str:
    if item.joined_by is None:
        return "  [started the story]"
    other = by_id.get(item.joined_item or 0)
    whose = f"{other.source_name}'s item" if other else "an earlier item"
    if item.joined_by == "similar" and other and other.source_url == item.source_url:
        # publish.superseded: the same article under a new link, which stands for it
        return f"  [its outlet's earlier item, moved to this link: {item.similarity:.2f}]"
    if item.joined_by == "similar":
        return f"  [similar to {whose}: {item.similarity:.2f}]"
    if item.joined_by == "url":
        return f"  [same article URL as {whose}]"
    return f"  [same text as {whose}]"


def main() -> None:
    try:
        cli(prog_name="aggregator")
    except OutputError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_OUTPUT)
    except WorkersDied as e:
        click.echo(f"error: {e}", err=True)
        _exit_now(EXIT_WORKERS)


def _exit_now(status: int) -> None:
    """Exit without waiting for other threads: a dead worker pool's thread
    may wait forever for the rest of a result (the store is closed and its
    lock released by then)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)

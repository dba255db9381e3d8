"""The offline demo: serve sample feeds on 127.0.0.1 and run the real pipeline on them.

``python -m aggregator.demo`` (what ``make demo`` runs) starts an HTTP server
on a free loopback port over ``demo/feeds/``, writes ``demo/feeds.yaml`` into
the output folder with the server's address, runs ``aggregator refresh`` on
it (every stage, as from the command line), prints what makes the product
different, and stops the server. Nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import shutil
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click
import yaml

from .classify import LABELS
from .cli import cli
from .config import load_config
from .publish import outputs, source_priorities, stories
from .store import open_store

#: The address written in demo/feeds.yaml, replaced by the server's.
TEMPLATE_BASE = "http://127.0.0.1:8808/"
#: Marks a folder this demo made, so it can be emptied safely on the next run.
MARKER = ".aggregator-demo"


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".atom": "application/atom+xml",
        ".xml": "application/xml",
    }

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free port of 127.0.0.1; yield its base URL."""
    handler = functools.partial(_Handler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def prepare(samples: Path, output: Path, base_url: str) -> Path:
    """Empty ``output`` (if the demo made it) and write the demo configuration there."""
    if output.exists():
        if not (output / MARKER).exists() and any(output.iterdir()):
            raise click.ClickException(f"{output} exists and was not made by the demo")
        shutil.rmtree(output)
    output.mkdir(parents=True)
    (output / MARKER).touch()
    data = yaml.safe_load((samples / "feeds.yaml").read_text(encoding="utf-8"))
    for source in data["sources"]:
        source["url"] = source["url"].replace(TEMPLATE_BASE, base_url)
    config = output / "feeds.yaml"
    config.write_text(
        "# Written by the demo from demo/feeds.yaml; the server is gone once it ends.\n"
        + yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return config


def run_demo(samples: Path, output: Path) -> None:
    """Serve the samples, refresh, print the tour."""
    with serve(samples / "feeds") as base_url:
        config_path = prepare(samples, output, base_url)
        click.echo(f"Serving {len(list((samples / 'feeds').iterdir()))} sample feeds at {base_url}")
        cli.main(["refresh", "--config", str(config_path)], "aggregator", standalone_mode=False)
    tour(config_path)


def tour(config_path: Path) -> None:
    """Print the feeds, a story reported by several outlets, and the explain command."""
    config = load_config(config_path)
    out = _shown(config.output.dir)
    click.echo(f"\nPublished to {out}/:")
    with open_store(config.storage) as store:
        shared = None
        for output in outputs(config):
            chosen = stories(store, output, source_priorities(config))
            click.echo(f"  {output.slug + '.xml':<20} {len(chosen):>3} entries")
            shared = shared or next((s for s in chosen if s.others), None)
        dropped = store.dropped_items(limit=3)
    if shared:
        outlets = ", ".join(dict.fromkeys(o.source_name for o in shared.others))
        labels = ", ".join(LABELS[label] for label in shared.labels)
        click.echo(f'\nOne story, one entry: "{shared.representative.title}" ({labels})')
        click.echo(f"  from {shared.representative.source_name}, also reported by {outlets}")
    if dropped:
        click.echo("\nDropped, not about Central Asia, for example:")
        for item in dropped:
            click.echo(f'  "{item.title}" ({item.source_name})')
    if shared and shared.others[0].link:
        click.echo("\nWhy did an item land where it did? Try:")
        click.echo(
            "  .venv/bin/aggregator explain --config"
            f" {shlex.quote(_shown(config_path))} {shlex.quote(shared.others[0].link)}"
        )
        title = shlex.quote(shared.representative.title)
        click.echo(f"  .venv/bin/aggregator classify {title}")
    click.echo(f"\nOpen {_shown(config.output.dir / 'index.html')} in a browser.")


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@click.command()
@click.option(
    "--samples",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Folder with feeds.yaml and feeds/.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Where the demo writes its feeds, site and store (emptied first).",
)
def main(samples: Path, output: Path) -> None:
    """Run the whole pipeline on bundled sample feeds, offline."""
    run_demo(samples.absolute(), output.absolute())


if __name__ == "__main__":
    main(sys.argv[1:], prog_name="python -m aggregator.demo")

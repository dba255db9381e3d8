"""The site around the feeds: ``index.html``, ``feeds.opml``, the XSL stylesheet,
and JSON Feed 1.1 files (pure: bytes from the published stories).

Like the feeds, every file is a function of the stored state (no clock), so
an unchanged state rewrites nothing. Every text that comes from a source is
escaped; HTML from sources appears only in JSON Feed's ``content_html``,
sanitized at parse time.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from .dedupe import without_tracking
from .types import Config, language_tag

if TYPE_CHECKING:
    from .publish import Output, Story

#: The stylesheet that shows a feed as a page in a browser.
STYLESHEET = "feed.xsl"
#: Headlines listed per feed on the index page.
HEADLINES = 5

_CSS = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
h1 { margin-bottom: .25rem; }
section { border-top: 1px solid #ddd; padding: .75rem 0; }
h2 { font-size: 1.15rem; margin: 0; }
.sub { color: #555; margin: .2rem 0 .5rem; }
.feed { font-size: .9rem; }
code { background: #eef; padding: 0 .25rem; border-radius: 3px; word-break: break-all; }
li { margin: .15rem 0; }
small { color: #666; }
a { color: #0b57d0; }
"""


def index_html(listing: Sequence[tuple[Output, Sequence[Story]]], config: Config) -> bytes:
    """A page listing every feed with its subscribe link, description and latest
    headlines, with autodiscovery links for browsers and readers."""
    title = html.escape(config.site.title)
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_CSS}</style>",
    ]
    body = [
        f"<h1>{title}</h1>",
        "<p>Curated news feeds about Kazakhstan, Kyrgyzstan, Tajikistan, Turkmenistan and"
        " Uzbekistan, from the region's outlets, each story once. Subscribe to a feed in any"
        ' feed reader, or to all of them at once with <a href="feeds.opml">feeds.opml</a>.</p>',
    ]
    for output, chosen in listing:
        href = _feed_href(config, output.slug)
        name = html.escape(output.title)
        head.append(
            f'<link rel="alternate" type="application/atom+xml" title="{name}"'
            f' href="{html.escape(href)}">'
        )
        body.append(f'<section id="{html.escape(output.slug)}">')
        body.append(f'<h2><a href="{html.escape(href)}">{name}</a></h2>')
        body.append(f'<p class="sub">{html.escape(output.description)}</p>')
        body.append(f'<p class="feed">Subscribe: <code>{html.escape(href)}</code></p>')
        if chosen:
            body.append("<ul>")
            for story in list(chosen)[:HEADLINES]:
                body.append(f"<li>{_headline(story)}</li>")
            body.append("</ul>")
        else:
            body.append("<p><small>No items yet.</small></p>")
        body.append("</section>")
    page = [*head, "</head><body>", *body, "</body></html>", ""]
    return "\n".join(page).encode("utf-8")


def _headline(story: Story) -> str:
    item = story.representative
    text = html.escape(item.title)
    link = f'<a href="{html.escape(without_tracking(item.link))}">{text}</a>' if item.link else text
    day = item.date.strftime("%Y-%m-%d")
    more = f", +{len(story.others)}" if story.others else ""
    return f"{link} <small>({html.escape(item.source_name)}, {day}{more})</small>"


def opml(listing: Sequence[tuple[Output, Sequence[Story]]], config: Config) -> bytes:
    """An OPML 2.0 file that subscribes a reader to every feed at once."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        f"  <head><title>{html.escape(config.site.title)}</title></head>",
        "  <body>",
    ]
    for output, _ in listing:
        href = _feed_href(config, output.slug)
        lines.append(
            f'    <outline type="rss" text={quoteattr(output.title)}'
            f" title={quoteattr(output.title)} xmlUrl={quoteattr(href)}"
            f" description={quoteattr(output.description)}/>"
        )
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines).encode("utf-8")


def json_feed(output: Output, chosen: Sequence[Story], config: Config) -> bytes:
    """The JSON Feed 1.1 version of an output (https://jsonfeed.org/version/1.1)."""
    from .publish import entry_html  # the one place entry HTML is built

    base = config.site.base_url
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": output.title,
        "description": output.description,
        "authors": [{"name": config.site.title}],
        "items": [],
    }
    if base:
        feed["home_page_url"] = base
        feed["feed_url"] = f"{base}{output.slug}.json"
    for story in chosen:
        item = story.representative
        entry: dict[str, Any] = {
            "id": story.uid,
            "title": item.title,
            "content_html": entry_html(story),
            "date_published": rfc3339(item.date),
            "date_modified": rfc3339(story.updated),
            "authors": [{"name": item.source_name}],
            "tags": list(story.labels),
        }
        if item.link:
            entry["url"] = without_tracking(item.link)
        if language := language_tag(item.language):
            entry["language"] = language
        feed["items"].append(entry)
    return (json.dumps(feed, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def stylesheet() -> bytes:
    """The XSL stylesheet the feeds reference."""
    return resources.files(__package__).joinpath(f"data/{STYLESHEET}").read_bytes()


def _feed_href(config: Config, slug: str) -> str:
    """The feed's public URL, or its name relative to the index when unknown."""
    return f"{config.site.base_url}{slug}.xml" if config.site.base_url else f"{slug}.xml"


def rfc3339(value: datetime) -> str:
    """A UTC time as RFC 3339, to the second (Atom and JSON Feed)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

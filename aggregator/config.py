"""Load ``feeds.yaml`` into a validated :class:`~aggregator.types.Config`.

Every error names the file, the key path and the problem. Relative paths are
resolved against the configuration file's folder, never the working directory.
Unknown keys are errors, so a typo is never silently ignored.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .errors import ConfigError
from .types import (
    COUNTRIES,
    REGION,
    ClassifyConfig,
    Config,
    FetchConfig,
    OutputConfig,
    OutputSpec,
    PostgresURL,
    Selectors,
    SiteConfig,
    Source,
    language_tag,
    redacted,
)

#: The database file used when ``storage:`` is not given.
DEFAULT_STORAGE = "aggregator.sqlite"

T = TypeVar("T")

_TOP_KEYS = {
    "storage", "retention_days", "schedule", "output", "outputs", "site", "fetch", "classify",
    "sources",
}  # fmt: skip
_OUTPUT_KEYS = {
    "slug", "title", "description", "countries", "languages", "sources", "include", "exclude",
    "max_entries",
}  # fmt: skip
#: Bounds of numbers (a year of minutes, a century of days, an hour of
#: seconds): anything larger, or .inf or .nan, is a typing mistake, and made
#: dates overflow during a refresh.
MAX_MINUTES = 365 * 24 * 60.0
MAX_DAYS = 36500.0
MAX_SECONDS = 3600.0
_SOURCE_KEYS = {
    "name", "url", "language", "country", "priority", "type", "selectors", "interval_minutes",
    "timezone",
}  # fmt: skip
_SELECTOR_KEYS = {"item", "title", "link", "date", "summary"}
_LABELS = (*COUNTRIES, REGION)


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that refuses duplicate keys instead of keeping the last.

    libyaml's parser when PyYAML has it (its wheels do): a configuration of
    1,000 sources loads in 16 ms instead of 140, on every run from cron. Its
    messages name the line and column as the pure-Python parser's do.
    """


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return dict(loader.construct_mapping(node))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_yaml(text: str) -> Any:
    """Parse YAML safely, refusing duplicate keys.

    Raises:
        yaml.YAMLError: the text is not YAML, or repeats a key.
    """
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader


def load_config(path: Path | str) -> Config:
    """Read and validate a configuration file.

    Raises:
        ConfigError: the file is missing, unreadable, not YAML, or invalid.
    """
    path = Path(path).absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(path, None, "file not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, None, f"cannot read: {e}") from e
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        raise ConfigError(path, None, f"not valid YAML: {_yaml_problem(e)}") from e
    return parse_config(data, path)


def parse_config(data: object, path: Path) -> Config:
    """Validate already-loaded YAML data; ``path`` anchors relative paths."""
    v = _Validator(path)
    top = v.mapping(data, None, _TOP_KEYS)
    base = path.parent

    output = v.mapping(top.get("output", {}), "output", {"dir", "max_entries", "json_feed"})
    site = v.mapping(top.get("site", {}), "site", {"base_url", "title", "hub"})
    fetch = v.mapping(
        top.get("fetch", {}),
        "fetch",
        {
            "concurrency",
            "per_host",
            "host_delay",
            "timeout",
            "max_bytes",
            "contact",
            "allow_private",
            "proxy",
        },
    )
    schedule = v.mapping(
        top.get("schedule", {}),
        "schedule",
        {"interval_minutes", "min_interval_minutes", "max_interval_minutes"},
    )

    base_url = v.optional(site, "site.base_url", v.url)
    if base_url is not None and not base_url.endswith("/"):
        base_url += "/"

    shortest = v.get(schedule, "schedule.min_interval_minutes", v.positive_number, 5.0)
    longest = v.get(schedule, "schedule.max_interval_minutes", v.positive_number, 24 * 60.0)
    if shortest > longest:
        raise v.error(
            "schedule.min_interval_minutes",
            f"must not be more than schedule.max_interval_minutes ({longest:g}), not {shortest:g}",
        )

    sources = _sources(v, top)
    return Config(
        path=path,
        storage=_storage(v, top.get("storage"), base),
        output=OutputConfig(
            dir=base / v.get(output, "output.dir", v.string, "output"),
            max_entries=v.get(output, "output.max_entries", v.positive_int, 100),
            json_feed=v.get(output, "output.json_feed", v.boolean, False),
        ),
        site=SiteConfig(
            base_url=base_url,
            title=v.get(site, "site.title", v.string, SiteConfig.title),
            hub=v.optional(site, "site.hub", v.url),
        ),
        fetch=FetchConfig(
            concurrency=v.get(fetch, "fetch.concurrency", v.positive_int, 8),
            per_host=v.get(fetch, "fetch.per_host", v.positive_int, 2),
            timeout=v.get(
                fetch, "fetch.timeout", partial(v.positive_number, maximum=MAX_SECONDS), 30.0
            ),  # fmt: skip
            max_bytes=v.get(fetch, "fetch.max_bytes", v.positive_int, 10 * 1024 * 1024),
            contact=v.optional(fetch, "fetch.contact", v.string),
            host_delay=v.get(fetch, "fetch.host_delay", v.non_negative_number, 1.0),
            allow_private=v.get(fetch, "fetch.allow_private", v.boolean, False),
            proxy=v.optional(fetch, "fetch.proxy", v.url),
        ),
        interval_minutes=v.get(schedule, "schedule.interval_minutes", v.positive_number, 30.0),
        sources=sources,
        classify=_classify(v, top.get("classify")),
        outputs=_outputs(v, top.get("outputs"), sources),
        retention_days=v.get(
            top, "retention_days", partial(v.positive_number, maximum=MAX_DAYS), 30.0
        ),  # fmt: skip
        min_interval_minutes=shortest,
        max_interval_minutes=longest,
    )


def _storage(v: _Validator, raw: object, base: Path) -> Path | PostgresURL:
    """``storage:``: a SQLite file (relative to the configuration), a
    ``postgresql://`` URI, or ``{env: NAME}``, an environment variable holding either."""
    key = "storage"
    if raw is None:
        raw = DEFAULT_STORAGE
    if isinstance(raw, dict):
        name = v.string(v.mapping(raw, key, {"env"}).get("env"), "storage.env")
        value = os.environ.get(name)
        if not value:
            raise v.error("storage.env", f"the environment variable {name} is not set")
        key = "storage.env"
    else:
        value = v.string(raw, key)
    if value.startswith(("postgresql://", "postgres://")):
        return PostgresURL(value)
    if "://" in value:
        raise v.error(key, "expected a file path or a postgresql:// URI")
    return base / value


def _outputs(v: _Validator, raw: object, sources: tuple[Source, ...]) -> tuple[OutputSpec, ...]:
    if raw is None:
        return ()
    known = {s.name for s in sources} | {s.url for s in sources}
    specs: list[OutputSpec] = []
    slugs: dict[str, int] = {}
    for i, key, entry in v.entries(raw, "outputs", _OUTPUT_KEYS, "slug"):
        slug = v.string(entry["slug"], f"{key}.slug")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", slug):
            raise v.error(f"{key}.slug", f"must be lower-case letters, digits and -, not {slug!r}")
        if slug in slugs:
            raise v.error(f"{key}.slug", f"duplicate of outputs[{slugs[slug]}].slug: {slug}")
        slugs[slug] = i
        labels = v.optional(entry, f"{key}.countries", v.string_list) or ()
        for n, label in enumerate(labels):
            if label.lower() not in _LABELS:
                raise v.error(
                    f"{key}.countries[{n}]", f"must be one of {', '.join(_LABELS)}, not {label!r}"
                )
        chosen = v.optional(entry, f"{key}.sources", v.string_list) or ()
        for n, name in enumerate(chosen):
            if name not in known:
                raise v.error(f"{key}.sources[{n}]", f"no source has the name or URL {name!r}")
        specs.append(
            OutputSpec(
                slug=slug,
                title=v.optional(entry, f"{key}.title", v.string),
                description=v.optional(entry, f"{key}.description", v.string),
                labels=tuple(label.lower() for label in labels),
                languages=tuple(
                    v.language(language, f"{key}.languages[{n}]")
                    for n, language in enumerate(
                        v.optional(entry, f"{key}.languages", v.string_list) or ()
                    )
                ),
                sources=chosen,
                include=v.optional(entry, f"{key}.include", v.string_list) or (),
                exclude=v.optional(entry, f"{key}.exclude", v.string_list) or (),
                max_entries=v.optional(entry, f"{key}.max_entries", v.positive_int),
            )
        )
    return tuple(specs)


def _classify(v: _Validator, raw: object) -> ClassifyConfig:
    section = v.mapping(raw, "classify", set(_LABELS))
    add: dict[str, tuple[str, ...]] = {}
    exclude: dict[str, tuple[str, ...]] = {}
    for label, value in section.items():
        key = f"classify.{label}"
        rules = v.mapping(value, key, {"add", "exclude"})
        for name, target in (("add", add), ("exclude", exclude)):
            if rules.get(name) is not None:
                target[label] = v.string_list(rules[name], f"{key}.{name}")
    return ClassifyConfig(add=add, exclude=exclude)


def _same_feed(url: str) -> str:
    """``url`` as compared with the other sources': scheme and host in lower
    case, without the scheme's default port, credentials or anchor, an empty
    path as ``/`` (the same feed either way)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != {"http": 80, "https": 443}.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", parts.query, ""))


def _sources(v: _Validator, top: Mapping[str, Any]) -> tuple[Source, ...]:
    if "sources" not in top:
        raise v.error("sources", "missing required key (a list of feeds)")
    sources: list[Source] = []
    seen: dict[str, int] = {}
    names: dict[str, tuple[int, bool]] = {}  # name: (first source, given explicitly)
    for i, key, entry in v.entries(top["sources"], "sources", _SOURCE_KEYS, "url"):
        url = v.url(entry["url"], f"{key}.url")
        if (same := _same_feed(url)) in seen:
            raise v.error(f"{key}.url", f"duplicate of sources[{seen[same]}].url: {redacted(url)}")
        seen[same] = i
        given = v.optional(entry, f"{key}.name", v.string)
        name = given or urlsplit(url).hostname or url
        # Names tell sources apart in status, explain and outputs: a name given
        # twice is a mistake (a block copied and not renamed, say). Unnamed
        # sources of one host share its name; an output naming it takes them all.
        if (other := names.get(name.casefold())) is not None and (given or other[1]):
            first, named = other
            if given and named:
                raise v.error(f"{key}.name", f"duplicate of sources[{first}].name: {name}")
            if given:
                raise v.error(f"{key}.name", f"{name} is the host of sources[{first}], its name")
            raise v.error(f"{key}", f"needs a name: its host's, {name}, is sources[{first}].name")
        names.setdefault(name.casefold(), (i, given is not None))
        language = v.optional(entry, f"{key}.language", v.language)
        country = v.optional(entry, f"{key}.country", v.country)
        priority = v.get(entry, f"{key}.priority", v.integer, 0)
        kind = v.get(entry, f"{key}.type", v.string, "feed")
        if kind not in ("feed", "html"):
            raise v.error(f"{key}.type", f"must be feed or html, not {kind!r}")
        selectors = None
        if kind == "html":
            if entry.get("selectors") is None:
                raise v.error(f"{key}.selectors", "missing required key (type: html needs it)")
            raw = v.mapping(entry["selectors"], f"{key}.selectors", _SELECTOR_KEYS)
            for required in ("item", "title"):
                if raw.get(required) is None:
                    raise v.error(f"{key}.selectors.{required}", "missing required key")
            found = {
                name: v.selector(raw[name], f"{key}.selectors.{name}")
                for name in _SELECTOR_KEYS
                if raw.get(name) is not None
            }
            selectors = Selectors(**found)
        elif entry.get("selectors") is not None:
            raise v.error(f"{key}.selectors", "only for a source with type: html")
        zone = v.optional(entry, f"{key}.timezone", v.timezone)
        if zone is not None and kind != "html":
            raise v.error(f"{key}.timezone", "only for a source with type: html")
        interval = v.optional(entry, f"{key}.interval_minutes", v.positive_number)
        sources.append(Source(name, url, language, country, priority, selectors, interval, zone))
    return tuple(sources)


class _Validator:
    """Type checks that raise :class:`ConfigError` naming the file and key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str | None, problem: str) -> ConfigError:
        return ConfigError(self.path, key, problem)

    def mapping(self, value: object, key: str | None, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.error(key, f"must be a mapping, not {_kind(value)}")
        for name in value:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                expected = ", ".join(sorted(allowed))
                raise self.error(where, f"unknown key (expected one of: {expected})")
        return value

    def entries(
        self, value: object, key: str, allowed: set[str], required: str
    ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """The mappings of a list section, each with its index and key path,
        checked for unknown keys and for the ``required`` one."""
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {_kind(value)}")
        for i, item in enumerate(value):
            path = f"{key}[{i}]"
            entry = self.mapping(item, path, allowed)
            if required not in entry:
                raise self.error(f"{path}.{required}", "missing required key")
            yield i, path, entry

    def get(
        self, section: Mapping[str, Any], key: str, check: Callable[[object, str], T], default: T
    ) -> T:
        name = key.rsplit(".", 1)[-1]
        if section.get(name) is None:
            return default
        return check(section[name], key)

    def optional(
        self, section: Mapping[str, Any], key: str, check: Callable[[object, str], T]
    ) -> T | None:
        name = key.rsplit(".", 1)[-1]
        if section.get(name) is None:
            return None
        return check(section[name], key)

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, not {_kind(value)}")
        return value.strip()

    def url(self, value: object, key: str) -> str:
        text = self.string(value, key)
        problem = None
        try:
            parts = urlsplit(text)
            if parts.port == 0:
                problem = "port 0"
        except ValueError as e:  # a port that is not a number up to 65535, a broken [IPv6]
            problem = str(e)
            if "@" in text:
                # A password with "/" or "#" in it, not encoded: urlsplit read
                # part of it as the port, and quotes it.
                scheme, _, rest = text.partition("://")
                shown = f"{scheme}://***@{rest.rpartition('@')[2]}" if rest else "***"
                raise self.error(
                    key, f"must be a URL, not {shown!r} (encode the credentials: %2F for /)"
                ) from None
        else:
            if not text.isprintable() or " " in text:
                problem = "spaces or control characters"
            elif parts.scheme not in ("http", "https") or not parts.hostname:
                problem = "not http:// or https://"
        if problem is not None:
            raise self.error(
                key, f"must be an http:// or https:// URL, not {redacted(text)!r} ({problem})"
            )
        return text

    def timezone(self, value: object, key: str) -> str:
        text = self.string(value, key)
        try:
            ZoneInfo(text)
        except (ValueError, ZoneInfoNotFoundError):
            raise self.error(
                key, f"must be a time zone such as Asia/Almaty, not {text!r}"
            ) from None
        return text

    def selector(self, value: object, key: str) -> str:
        text = self.string(value, key)
        # Loaded only for pages to scrape, like BeautifulSoup (which requires it).
        import soupsieve

        try:
            with deprecated_selectors_allowed():
                soupsieve.compile(text)
        except (soupsieve.SelectorSyntaxError, NotImplementedError) as e:
            problem = selector_problem(e)
            raise self.error(key, f"must be a CSS selector, not {text!r} ({problem})") from e
        return text

    def language(self, value: object, key: str) -> str:
        text = self.string(value, key)
        if (tag := language_tag(text)) is None:
            raise self.error(key, f"must be a language tag such as fr, en or ru, not {text!r}")
        return tag

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def country(self, value: object, key: str) -> str:
        text = self.string(value, key).lower()
        if text not in COUNTRIES:
            raise self.error(key, f"must be one of {', '.join(COUNTRIES)}, not {value!r}")
        return text

    def string_list(self, value: object, key: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.error(key, f"must be a list of strings, not {_kind(value)}")
        return tuple(self.string(item, f"{key}[{i}]") for i, item in enumerate(value))

    def integer(self, value: object, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, not {value!r}")
        return value

    def positive_int(self, value: object, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(key, f"must be a positive integer, not {value!r}")
        return value

    def non_negative_number(self, value: object, key: str, maximum: float = MAX_SECONDS) -> float:
        number = _finite(value)
        if number is None or not 0 <= number <= maximum:
            raise self.error(key, f"must be a number from 0 to {maximum:g}, not {value!r}")
        return number

    def positive_number(self, value: object, key: str, maximum: float = MAX_MINUTES) -> float:
        number = _finite(value)
        if number is None or not 0 < number <= maximum:
            raise self.error(key, f"must be a positive number up to {maximum:g}, not {value!r}")
        return number


@contextmanager
def deprecated_selectors_allowed() -> Iterator[None]:
    """Without soupsieve's warning that ``:contains()`` is deprecated in favour
    of ``:-soup-contains()``: the same meaning, and editors write the former."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def selector_problem(error: Exception) -> str:
    """soupsieve's reason on one line (it draws the selector and a caret below)."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _finite(value: object) -> float | None:
    """A finite int or float as a float (YAML's .inf and .nan are floats, and
    True is an int), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _kind(value: object) -> str:
    if isinstance(value, str) and not value.strip():
        return "an empty string"
    return {
        type(None): "empty",
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)

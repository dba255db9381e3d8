"""Identity keys for items: canonical URLs and content fingerprints (pure).

Three layers decide that two items are the same:

1. (source, guid): the same item seen again in its own feed; enforced by the store;
2. the canonical article URL: the same article reached through tracking
   parameters, another case of host, a fragment, a trailing slash or an AMP
   or mobile variant;
3. the content fingerprint: the same normalized title and summary, e.g. an
   agency copy published word for word by another outlet.

Items that share a key belong to one story; the store records the story, the
publisher shows it once. Clustering of reworded stories is not done here yet.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from .classify import markup_text
from .classify.text import CodePageFold
from .types import Entry

#: Query parameters that only track the reader, never select the article.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "yclid", "ysclid", "msclkid",
        "mc_cid", "mc_eid", "igshid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok",
        "oly_anon_id", "oly_enc_id", "vero_id", "wt_mc", "at_medium", "at_campaign",
        "ref_src", "cmpid", "amp",
    }
)  # fmt: skip
#: Parameter prefixes that only track the reader.
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "stm_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WORD = re.compile(r"\w+")
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def canonical_url(url: str) -> str:
    """The identity of an article URL.

    Lower-cases scheme and host, drops ``www.``, ``m.`` and ``amp.`` host
    prefixes, default ports, the fragment, tracking parameters, a trailing
    ``/amp`` path segment and a trailing slash; sorts the remaining query.
    Two URLs with the same result are treated as one article. The result is
    a key, not a link to publish: publish the original URL, without its
    tracking parameters (:func:`without_tracking`).
    """
    url = url.strip()
    if (plain := _PLAIN_URL.fullmatch(url)) is not None:
        # Most links: nothing to change but a trailing slash (four times faster).
        scheme, host, path = plain.groups()
        if not host.startswith(_HOST_PREFIXES) and not path.endswith(("/amp", "/amp/")):
            return f"{scheme}://{host}{path.rstrip('/') or '/'}"
    return _canonical_parsed(url)


def _canonical_parsed(url: str) -> str:
    """:func:`canonical_url` of a stripped URL, the general way."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address keeps its brackets
    for prefix in _HOST_PREFIXES:
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix) :]
            break
    if parts.port and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    path = re.sub(r"/+", "/", parts.path or "/")
    if path.endswith(("/amp", "/amp/")):
        path = path.rstrip("/")[: -len("/amp")] or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    )
    return urlunsplit((scheme, host, path, urlencode(query), ""))


_HOST_PREFIXES = ("www.", "m.", "amp.", "mobile.")
#: An http(s) URL with a lower-case host name, no port, user, query or
#: fragment, and a path of printable ASCII without doubled slashes: only a
#: trailing slash, an ``/amp`` segment or a host prefix can change in it.
_PLAIN_URL = re.compile(r"(https?)://([a-z0-9.-]+)((?:/[!\"$-.0->@-~]+)*/?)")


def without_tracking(url: str) -> str:
    """``url`` without its tracking parameters (:data:`TRACKING_PARAMS`,
    :data:`TRACKING_PREFIXES`): the link to publish. Everything else is kept
    as written, the other parameters in their order and encoding."""
    rest, hash_mark, fragment = url.partition("#")
    base, mark, query = rest.partition("?")
    if not mark:
        return url
    kept = [
        pair
        for pair in query.split("&")
        if pair and not _is_tracking(unquote_plus(pair.split("=")[0]))
    ]
    return f"{base}{'?' if kept else ''}{'&'.join(kept)}{hash_mark}{fragment}"


def link_id(url: str) -> str:
    """The id of an item known by its link (a page's item, an RSS item
    without ``<guid>``): the link without tracking parameters or anchor, so
    the same article under other ones is the same item."""
    return without_tracking(url).partition("#")[0]


def _is_tracking(name: str) -> bool:
    name = name.lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def normalize_text(text: str) -> str:
    """Case-, accent- and punctuation-insensitive words of a text, space-joined:
    the words (``\\w+``) of its fold (:func:`_fold`)."""
    if not text.isascii() and (spaced := _FOLD_WORD_BYTES(text)) is not None:
        # Most French and Russian text: folded, and non-word characters made
        # spaces, by one bytes.translate (four times faster than the regex).
        return " ".join(spaced.split())
    text = _fold(text)
    if text.isascii():
        # Five times faster than the regex: ASCII non-word characters become spaces.
        return " ".join(text.translate(_ASCII_NON_WORD).split())
    return " ".join(_WORD.findall(text))


def _fold(text: str) -> str:
    """Case folded, compatibility decomposed, without combining marks; it works
    character by character once marks are dropped, so it can be applied
    through a code page (:class:`CodePageFold`)."""
    text = unicodedata.normalize("NFKD", text.casefold().replace("ё", "е"))
    return text if text.isascii() else _COMBINING.sub("", text)


def _fold_word_char(char: str) -> str:
    """:func:`_fold` of one character, a space if that is one non-word character."""
    folded = _fold(char)
    return " " if len(folded) == 1 and not _WORD.match(folded) else folded


#: :func:`_fold_word_char` through a code page: a text whose words are those
#: of its fold, apart. Splitting on spaces finds what ``\\w+`` finds in the
#: fold, since a word character is never a space.
_FOLD_WORD_BYTES = CodePageFold(_fold_word_char)

#: ASCII characters that are not word characters (``\w``), mapped to a space.
_ASCII_NON_WORD = str.maketrans(
    dict.fromkeys(re.findall(r"\W", "".join(map(chr, range(128)))), " ")
)


#: Fewer words than this are too little evidence that two texts are one story:
#: short recurring titles ("Exchange rates for 12 May") would merge across days.
MIN_FINGERPRINT_WORDS = 8
#: Characters of a summary's text a fingerprint covers.
FINGERPRINT_LEAD = 1500


def fingerprint(entry: Entry) -> str | None:
    """A hash of the item's normalized title and summary text, or None if too short.

    Two items with the same words in the same order, whatever their markup,
    case, accents or punctuation, have the same fingerprint. Only the lead of
    the summary counts (:data:`FINGERPRINT_LEAD` characters).
    """
    markup = (entry.summary or "")[: FINGERPRINT_LEAD * 3]
    summary = normalize_text(markup_text(markup)[:FINGERPRINT_LEAD])
    title = normalize_text(entry.title)
    if len(title.split()) + len(summary.split()) < MIN_FINGERPRINT_WORDS:
        return None
    return hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()[:32]


def content_hash(entry: Entry) -> str:
    """A hash of everything a reader sees of an item; a change means an update."""
    parts = (entry.title, entry.link or "", entry.summary or "", "\x1f".join(entry.categories))
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()[:32]


def story_uid(entry: Entry) -> str:
    """The published id of a story first reported by ``entry``; never changes.

    A name-based UUID (version 5, in the URL namespace) of the source and the
    guid, as ``uuid.uuid5(...).urn`` gives, built here in a third of its time:
    every new item gets one.
    """
    digest = bytearray(
        hashlib.sha1(_URL_NAMESPACE + f"{entry.source_url}\n{entry.guid}".encode()).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes

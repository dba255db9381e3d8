"""Text folding for matching, with a map back to the original characters.

Folding is done once per field: Unicode NFC then, character by character,
NFKC, case folding, one apostrophe, one dash, ё=е, and accents stripped from
Latin letters only (Cyrillic й keeps its breve, Kazakh and Uzbek letters such
as ғ, қ, ң keep their identity); leftover combining marks (Russian stress
accents) are dropped. The per-character folds are cached in a translation
table, so a field is folded at C speed; text written in Latin-1 or
Windows-1251 (most French and Russian) goes through ``bytes.translate``,
ten times faster than ``str.translate`` outside ASCII.
Folded text is then cut into tokens (words, and punctuation marks one by
one), so matching whole tokens is matching on word boundaries.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

#: Every apostrophe-like character folds to ASCII ``'``: Uzbek Latin writes
#: O'zbekiston with any of them, French writes d'Aral or d’Aral.
APOSTROPHES = "\u2019\u2018\u02bc\u02bb\u0060\u00b4\u2032\u02b9\u055a\uff07"
_APOSTROPHE_MAP = str.maketrans({c: "'" for c in APOSTROPHES})
#: Dashes fold to ASCII hyphen-minus (Nur-Sultan, Нур-Султан).
_DASH_MAP = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2212"})


@dataclass(frozen=True)
class Folded:
    """A folded text, and the original it came from."""

    text: str
    original: str
    keep_case: bool = False
    #: True when every character folded to exactly one: offsets are shared.
    aligned: bool = True

    def span(self, start: int, end: int) -> str:
        """The original text behind the folded slice ``[start:end]``."""
        if start >= end:
            return ""
        if self.aligned:
            return self.original[start:end]
        ends = self._ends()
        first = bisect.bisect_right(ends, start)
        last = bisect.bisect_left(ends, end)
        return self.original[first : last + 1]

    def _ends(self) -> list[int]:
        """For each original character, where its fold ends in the folded text."""
        table = _TABLES[self.keep_case]
        return list(itertools.accumulate(len(table[ord(char)]) for char in self.original))


@lru_cache(maxsize=8192)
def fold_char(char: str, keep_case: bool = False) -> str:
    """Fold one character (it may become zero or several characters)."""
    if unicodedata.combining(char):
        # A mark left over after NFC (a stress accent, an accent typed apart): dropped.
        return ""
    text = unicodedata.normalize("NFKC", char)
    if not keep_case:
        text = text.casefold()
    text = text.translate(_APOSTROPHE_MAP).translate(_DASH_MAP)
    text = text.replace("ё", "е").replace("Ё", "Е")
    if _is_latin(text):
        decomposed = unicodedata.normalize("NFD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return text


class _Table(dict[int, str]):
    """A ``str.translate`` table that folds each character on first sight,
    and knows which of the characters seen so far do not fold to exactly one."""

    def __init__(self, keep_case: bool) -> None:
        super().__init__()
        self.keep_case = keep_case
        self._unaligned: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def __missing__(self, code: int) -> str:
        value = self[code] = fold_char(chr(code), self.keep_case)
        if len(value) != 1:
            self._unaligned.add(chr(code))
            self._pattern = None
        return value

    def aligned(self, text: str) -> bool:
        """True when every character of ``text`` (already translated, so
        already seen) folds to exactly one character."""
        if not self._unaligned:
            return True
        if self._pattern is None:
            chars = "".join(sorted(self._unaligned))
            self._pattern = re.compile(f"[{re.escape(chars)}]")
        return self._pattern.search(text) is None


#: One table per mode; they only grow with the characters actually seen.
_TABLES = {False: _Table(False), True: _Table(True)}


def fold(text: str, keep_case: bool = False) -> Folded:
    """Fold ``text`` for matching (``str.translate`` with a cached table).

    With ``keep_case``, everything is folded but letter case (for the forms
    that must match with their exact capitalisation).
    """
    original = unicodedata.normalize("NFC", text)
    if not original.isascii() and (folded := _fold_bytes(original, keep_case)) is not None:
        return Folded(folded, original, keep_case, True)
    table = _TABLES[keep_case]
    folded = original.translate(table)
    aligned = len(folded) == len(original) and table.aligned(original)
    return Folded(folded, original, keep_case, aligned)


#: Single-byte code pages that hold most French and Russian text.
_CODE_PAGES = ("latin-1", "cp1251")


class CodePageFold:
    """A fold done character by character, applied with ``bytes.translate`` to
    text written in one of :data:`_CODE_PAGES` whose characters all fold to
    one character of that page (ten times faster than ``str.translate``
    outside ASCII). Calling it gives None for any other text.

    The caller's fold must work character by character: folding a text must
    give the folds of its characters, one after the other."""

    def __init__(self, fold_char: Callable[[str], str]) -> None:
        self._fold_char = fold_char
        self._tables: dict[str, tuple[bytes, bytes]] = {}

    def __call__(self, text: str) -> str | None:
        for codec in _CODE_PAGES:
            try:
                encoded = text.encode(codec)
            except UnicodeEncodeError:
                continue
            table, foldable = self._table(codec)
            if encoded.translate(None, foldable):
                return None  # a character folds to none, several, or one outside the page
            return encoded.translate(table).decode(codec)
        return None

    def _table(self, codec: str) -> tuple[bytes, bytes]:
        """The byte translation in a code page, and the bytes it covers:
        characters that fold to exactly one character (not a combining
        mark) of the page."""
        if codec not in self._tables:
            table = bytearray(range(256))
            foldable = bytearray()
            for byte in range(256):
                try:
                    folded = self._fold_char(bytes([byte]).decode(codec))
                    encoded = folded.encode(codec)
                except UnicodeError:
                    continue  # undefined in the page, or folds outside it
                if len(encoded) == 1 and not unicodedata.combining(folded):
                    table[byte] = encoded[0]
                    foldable.append(byte)
            self._tables[codec] = (bytes(table), bytes(foldable))
        return self._tables[codec]


_FOLD_BYTES = {
    keep_case: CodePageFold(partial(fold_char, keep_case=keep_case)) for keep_case in (False, True)
}


def _fold_bytes(text: str, keep_case: bool) -> str | None:
    """:func:`fold` by :class:`CodePageFold`, or None."""
    return _FOLD_BYTES[keep_case](text)


def fold_term(term: str) -> str:
    """Fold a gazetteer form the same way as the text it is matched against."""
    return fold(term).text


#: A token: a run of letters and digits, or one punctuation mark; spaces separate.
TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(text: str) -> tuple[str, ...]:
    """The tokens of an already folded text: ``"nur - sultan"`` -> nur, -, sultan."""
    return tuple(TOKEN.findall(text))


def term_tokens(term: str, keep_case: bool = False) -> tuple[str, ...]:
    """The folded tokens of a gazetteer form, the key it is looked up by."""
    return tokens(fold(term, keep_case).text)


def _is_latin(text: str) -> bool:
    return bool(text) and "LATIN" in unicodedata.name(text[0], "")

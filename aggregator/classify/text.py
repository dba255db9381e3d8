"""Text folding for matching, with a map back to the original characters.

Folding is done once per field: Unicode NFKC, case folding, one apostrophe,
ё=е, and accents stripped from Latin letters only (Cyrillic й keeps its breve,
Kazakh and Uzbek letters such as ғ, қ, ң keep their identity).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

#: Every apostrophe-like character folds to ASCII ``'``: Uzbek Latin writes
#: O'zbekiston with any of them, French writes d'Aral or d’Aral.
APOSTROPHES = "\u2019\u2018\u02bc\u02bb\u0060\u00b4\u2032\u02b9\u055a\uff07"
_APOSTROPHE_MAP = str.maketrans({c: "'" for c in APOSTROPHES})
#: Dashes fold to ASCII hyphen-minus (Nur-Sultan, Нур-Султан).
_DASH_MAP = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2212"})


@dataclass(frozen=True)
class Folded:
    """A folded text and, for each of its characters, the index it came from."""

    text: str
    origin: tuple[int, ...]
    original: str

    def span(self, start: int, end: int) -> str:
        """The original text behind the folded slice ``[start:end]``."""
        if start >= end:
            return ""
        return self.original[self.origin[start] : self.origin[end - 1] + 1]


@lru_cache(maxsize=4096)
def fold_char(char: str, after_cyrillic: bool = False) -> str:
    """Fold one character (it may become zero or several characters)."""
    if unicodedata.combining(char):
        # A combining mark typed separately: keep it only on Cyrillic letters.
        return char if after_cyrillic else ""
    text = unicodedata.normalize("NFKC", char).casefold()
    text = text.translate(_APOSTROPHE_MAP).translate(_DASH_MAP).replace("ё", "е")
    if _is_latin(text):
        decomposed = unicodedata.normalize("NFD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return text


def fold(text: str) -> Folded:
    """Fold ``text`` for matching, remembering where each character came from."""
    text = unicodedata.normalize("NFC", text)
    out: list[str] = []
    origin: list[int] = []
    after_cyrillic = False
    for i, char in enumerate(text):
        folded = fold_char(char, after_cyrillic)
        if not unicodedata.combining(char):
            after_cyrillic = _is_cyrillic(char)
        out.append(folded)
        origin.extend([i] * len(folded))
    return Folded("".join(out), tuple(origin), text)


def fold_term(term: str) -> str:
    """Fold a gazetteer form the same way as the text it is matched against."""
    return fold(term).text


def _is_latin(text: str) -> bool:
    return bool(text) and "LATIN" in unicodedata.name(text[0], "")


def _is_cyrillic(char: str) -> bool:
    return "CYRILLIC" in unicodedata.name(char, "")

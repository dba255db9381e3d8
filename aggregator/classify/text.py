"""Text folding for matching, with a map back to the original characters.

Folding is done once per field: Unicode NFKC, case folding, one apostrophe,
one dash, ё=е, and accents stripped from Latin letters only (Cyrillic й keeps
its breve, Kazakh and Uzbek letters such as ғ, қ, ң keep their identity).
Folded text is then cut into tokens (words, and punctuation marks one by
one), so matching whole tokens is matching on word boundaries.
"""

from __future__ import annotations

import re
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


@lru_cache(maxsize=8192)
def fold_char(char: str, after_cyrillic: bool = False, keep_case: bool = False) -> str:
    """Fold one character (it may become zero or several characters)."""
    if unicodedata.combining(char):
        # A combining mark typed separately: keep it only on Cyrillic letters.
        return char if after_cyrillic else ""
    text = unicodedata.normalize("NFKC", char)
    if not keep_case:
        text = text.casefold()
    text = text.translate(_APOSTROPHE_MAP).translate(_DASH_MAP)
    text = text.replace("ё", "е").replace("Ё", "Е")
    if _is_latin(text):
        decomposed = unicodedata.normalize("NFD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return text


def fold(text: str, keep_case: bool = False) -> Folded:
    """Fold ``text`` for matching, remembering where each character came from.

    With ``keep_case``, everything is folded but letter case (for the forms
    that must match with their exact capitalisation).
    """
    text = unicodedata.normalize("NFC", text)
    out: list[str] = []
    origin: list[int] = []
    after_cyrillic = False
    for i, char in enumerate(text):
        folded = fold_char(char, after_cyrillic, keep_case)
        if not unicodedata.combining(char):
            after_cyrillic = _is_cyrillic(char)
        out.append(folded)
        origin.extend([i] * len(folded))
    return Folded("".join(out), tuple(origin), text)


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


def _is_cyrillic(char: str) -> bool:
    return "CYRILLIC" in unicodedata.name(char, "")

"""Decide which Central Asian countries an item is about, and record why (pure).

A closed, hand-checked gazetteer (``gazetteer/*.yaml``, one file per country
plus ``region``) lists surface forms by kind and language. Each field of the
item is folded once (see :mod:`.text`), all forms are found in one pass of
one regular expression (longest form first, whole words only), matches inside
a suppress phrase ("East Turkestan", "Iraqi Turkmen") are discarded, and each
remaining match scores ``KIND_POINTS[kind] * FIELD_WEIGHT[field]``.

A country is kept when its score reaches ``THRESHOLD`` and ``RELATIVE`` times
the strongest country's score. An item is regional when region terms reach
the threshold or when it is about three or more of the five countries. An
item with no country and not regional is dropped. The classifier does no I/O
once built and never looks at the item's source.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from ..types import COUNTRIES, REGION, Classification, Entry, Match
from .text import Folded, fold, fold_term

#: Points per match, by kind of term.
KIND_POINTS: Mapping[str, float] = {
    "country": 3.0,
    "region": 3.0,
    "capital": 2.0,
    "demonym": 2.0,
}
#: Multiplier per field: the title says what the item is about; the summary
#: and categories may only mention a place in passing.
FIELD_WEIGHT: Mapping[str, float] = {"title": 2.0, "summary": 1.0, "categories": 1.0}
#: Least score for a country (or the region) to be kept.
THRESHOLD = 3.0
#: Least fraction of the strongest country's score for another country to be kept.
RELATIVE = 0.3
#: An item about this many countries or more is also regional.
REGIONAL_COUNTRIES = 3

#: English display names of the labels.
LABELS: Mapping[str, str] = {
    "kz": "Kazakhstan",
    "kg": "Kyrgyzstan",
    "tj": "Tajikistan",
    "tm": "Turkmenistan",
    "uz": "Uzbekistan",
    REGION: "Central Asia",
}


@dataclass(frozen=True)
class Term:
    """One surface form of the gazetteer."""

    label: str
    kind: str
    language: str
    form: str


class Gazetteer:
    """Compiled gazetteer: terms, suppress phrases, case-sensitive forms."""

    def __init__(
        self,
        terms: Iterable[Term],
        suppress: Iterable[str] = (),
        case_sensitive: Iterable[str] = (),
    ) -> None:
        exact = set(case_sensitive)
        self.terms: dict[str, Term] = {}
        self.exact_terms: dict[str, Term] = {}
        for term in terms:
            if term.form in exact:
                self.exact_terms.setdefault(term.form, term)
            else:
                self.terms.setdefault(fold_term(term.form), term)
        self._pattern = _alternation(self.terms)
        self._exact_pattern = _alternation(self.exact_terms)
        self._suppress = _alternation({fold_term(s): s for s in suppress})

    def find(self, text: str) -> Iterator[tuple[Term, str]]:
        """Yield each gazetteer term in ``text`` with the text it matched."""
        folded = fold(text)
        blocked = [m.span() for m in _finditer(self._suppress, folded.text)]

        def free(start: int, end: int) -> bool:
            return not any(s < end and start < e for s, e in blocked)

        for m in _finditer(self._pattern, folded.text):
            if free(*m.span()):
                yield self.terms[m.group()], folded.span(*m.span())
        if self._exact_pattern is not None:
            # Case-sensitive forms (Mary, Osh): matched on the unfolded text.
            plain = Folded(folded.original, tuple(range(len(folded.original))), folded.original)
            for m in _finditer(self._exact_pattern, plain.text):
                if free(*_folded_span(folded, *m.span())):
                    yield self.exact_terms[m.group()], m.group()


def _folded_span(folded: Folded, start: int, end: int) -> tuple[int, int]:
    """Map an original-text span to the folded text's span (for suppress checks)."""
    indexes = [i for i, o in enumerate(folded.origin) if start <= o < end]
    return (indexes[0], indexes[-1] + 1) if indexes else (0, 0)


def _alternation(forms: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(forms), key=lambda f: (-len(f), f))
    if not ordered:
        return None
    body = "|".join(re.escape(f) for f in ordered)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


def _finditer(pattern: re.Pattern[str] | None, text: str) -> Iterator[re.Match[str]]:
    return pattern.finditer(text) if pattern is not None else iter(())


class Classifier:
    """Scores an entry against a gazetteer; see the module docstring."""

    def __init__(self, gazetteer: Gazetteer | None = None) -> None:
        self.gazetteer = gazetteer or default_gazetteer()

    def classify(self, entry: Entry) -> Classification:
        """Classify an entry by its title, summary and categories."""
        fields = {
            "title": entry.title,
            "summary": _strip_tags(entry.summary or ""),
            "categories": " ; ".join(entry.categories),
        }
        return self.classify_fields(fields)

    def classify_text(self, text: str) -> Classification:
        """Classify a bare piece of text, as if it were a title."""
        return self.classify_fields({"title": text})

    def classify_fields(self, fields: Mapping[str, str]) -> Classification:
        matches: list[Match] = []
        scores: defaultdict[str, float] = defaultdict(float)
        for field, text in fields.items():
            weight = FIELD_WEIGHT[field]
            for term, matched in self.gazetteer.find(text):
                points = KIND_POINTS.get(term.kind, 1.0) * weight
                scores[term.label] += points
                matches.append(Match(term.label, term.form, matched, field, term.kind, points))
        return decide(dict(scores), tuple(matches))


def decide(scores: Mapping[str, float], matches: tuple[Match, ...]) -> Classification:
    """Turn label scores into countries and the regional flag.

    Countries are ordered strongest first; equal scores go to the country
    named first (title before summary, left to right).
    """
    first: dict[str, int] = {}
    for n, m in enumerate(matches):
        first.setdefault(m.label, n)
    country_scores = {c: scores[c] for c in COUNTRIES if scores.get(c, 0.0) > 0}
    best = max(country_scores.values(), default=0.0)
    countries = tuple(
        sorted(
            (c for c, s in country_scores.items() if s >= THRESHOLD and s >= RELATIVE * best),
            key=lambda c: (-country_scores[c], first.get(c, len(matches))),
        )
    )
    regional = scores.get(REGION, 0.0) >= THRESHOLD or len(countries) >= REGIONAL_COUNTRIES
    return Classification(
        countries=countries, regional=regional, scores=dict(scores), matches=matches
    )


_TAG = re.compile(r"<[^>]*>")


def _strip_tags(markup: str) -> str:
    return html.unescape(_TAG.sub(" ", markup))


@cache
def default_gazetteer() -> Gazetteer:
    """The bundled gazetteer, loaded and compiled once per process."""
    terms: list[Term] = []
    suppress: list[str] = []
    exact: list[str] = []
    folder = resources.files(__package__).joinpath("gazetteer")
    for label in (*COUNTRIES, REGION):
        data = yaml.safe_load(folder.joinpath(f"{label}.yaml").read_text(encoding="utf-8"))
        terms.extend(_terms(label, data))
        suppress.extend(data.get("suppress") or ())
        exact.extend(data.get("case_sensitive") or ())
    return Gazetteer(terms, suppress, exact)


def _terms(label: str, data: Mapping[str, Any]) -> Iterator[Term]:
    for kind, by_language in (data.get("terms") or {}).items():
        for language, forms in (by_language or {}).items():
            for form in forms or ():
                yield Term(label, kind, language, str(form))

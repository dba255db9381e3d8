"""Decide which Central Asian countries an item is about, and record why (pure).

A closed, hand-checked gazetteer (``gazetteer/*.yaml``: one file per country,
``region.yaml`` for Central Asia as a whole, ``foreign.yaml`` for the rest of
the world) lists surface forms by kind and language. Each field of an item is
folded once and cut into tokens (:mod:`.text`); forms are looked up as whole
token sequences, longest first, so "Ош" never matches inside "ошибка" and
"Kazakh" never inside "Kazakhstan". A match inside a suppress phrase of its
label ("Iraqi Turkmen", "East Turkestan", an editor's exclusion) is ignored;
short or common forms match only with their exact capitalisation.

Each match scores ``KIND_POINTS[kind] * FIELD_WEIGHT[field]``. The title says
what an item is *about*; the summary may only *mention* a place. So when the
title names a foreign place and no Central Asian one, the item's other
Central Asian matches count half, as they do when the title names no place
and the summary names foreign places at least as strongly (a list of
countries), unless the source has a ``country:`` hint; and when the title
names a foreign place at least as strongly as Central Asian ones, its
demonyms, towns, provinces and landmarks count half (Kazakh eagle hunters in
Mongolia, Talas in Turkey); but not a demonym beside a word of the state
("Tajik migrants", "le gaz turkmène": :class:`StateWords`), which counts as
the words of the state (Kazakhstani, казахстанский) do, unless the item names
a place abroad where that people is a minority (Jawzjan, Kirkuk), where its
demonyms count nothing whatever the title.
A country is kept when its score reaches ``THRESHOLD`` and ``RELATIVE``
times the strongest country's; the strongest is the primary (ties go to the
source's hint, then to the country named first). An item is regional when
region terms reach the threshold or when it is about three or more of the
five countries; about none, it is dropped.

A source's ``country:`` hint (its home country) assigns that country only to
an item with no evidence but of that country, too weak alone (its capital in
the summary), or with no evidence at all, Central Asian or foreign, and a word of home
news (the state, exchange rates, schools: ``home:`` in ``state-words.yaml``): a Kyrgyz
outlet's "Exchange rates for 12 May" is Kyrgyz, its "Earthquake in Japan" and
"Apple unveils a new iPhone" are dropped.
The classifier does no I/O once built.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from importlib import resources
from itertools import compress
from typing import Any

import yaml

from ..types import COUNTRIES, REGION, Classification, ClassifyConfig, Entry, Match
from .text import fold, term_tokens

#: libyaml's loader when available: the bundled lists load in a tenth of the
#: time. (Their repeated keys are caught by the tests, with config.load_yaml.)
FAST_YAML: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The label of evidence that an item is about somewhere else.
FOREIGN = "foreign"

#: Points per match, by kind of term.
KIND_POINTS: Mapping[str, float] = {
    "country": 3.0,
    "region": 3.0,
    "editor": 3.0,
    "capital": 2.5,
    "leader": 2.5,
    "demonym": 2.0,
    "citizen": 2.0,
    "state": 2.0,
    "sovereign": 2.0,
    "city": 2.0,
    "province": 2.0,
    "landmark": 2.0,
    "institution": 2.0,
    "company": 1.5,
    "currency": 1.5,
}
#: Multiplier per field: the title says what the item is about.
FIELD_WEIGHT: Mapping[str, float] = {"title": 2.0, "summary": 1.0, "categories": 1.0}
#: Least score for a country (or the region) to be kept.
THRESHOLD = 3.0
#: Least fraction of the strongest country's score for another country to be kept.
RELATIVE = 0.5
#: An item about this many countries or more is also regional.
REGIONAL_COUNTRIES = 3
#: Weight of Central Asian matches outside a title that names only a foreign
#: place, and of weak kinds in a title that names a foreign place as strongly.
PASSING_MENTION = 0.5
#: Weight of a people's name in an item that names a place abroad where that
#: people is a minority (``state-words.yaml``: Jawzjan, Kirkuk, Bayan-Ölgii):
#: none, however often it is repeated ("Olgii's Kazakh market").
MINORITY = 0.0
#: Kinds whose words also name minorities or namesakes abroad (not
#: ``citizen``: "казахстанский", "Kazakhstani" are of the state, never of a
#: minority, so "Россия запретила ввоз казахстанской пшеницы" is about Kazakhstan).
WEAK_KINDS = frozenset({"demonym", "city", "province", "landmark"})

#: English display names of the labels.
LABELS: Mapping[str, str] = {
    "kz": "Kazakhstan",
    "kg": "Kyrgyzstan",
    "tj": "Tajikistan",
    "tm": "Turkmenistan",
    "uz": "Uzbekistan",
    REGION: "Central Asia",
}
#: Gazetteer files, one per label.
GAZETTEER_LABELS = (*COUNTRIES, REGION, FOREIGN)
#: The gazetteer file of the words of the state (see :class:`StateWords`).
STATE_WORDS = "state-words.yaml"


@dataclass(frozen=True)
class Term:
    """One surface form of the gazetteer."""

    label: str
    kind: str
    language: str
    form: str
    #: Match only with this exact capitalisation (Osh, Ош).
    case_sensitive: bool = False


Key = tuple[str, ...]


class Gazetteer:
    """Terms indexed by their folded tokens, with per-label suppress phrases.

    Keys are looked up only at tokens that start one (an index of first
    tokens, with the longest key starting there), so the cost of a text is
    about one dictionary look-up per word.
    """

    def __init__(
        self,
        terms: Iterable[Term],
        suppress: Iterable[tuple[str, str]] = (),
        state_words: StateWords | None = None,
    ) -> None:
        self._terms: dict[Key, list[Term]] = defaultdict(list)
        for term in terms:
            key = term_tokens(term.form)
            if key and term not in self._terms[key]:
                self._terms[key].append(term)
        self._suppress: dict[Key, set[str]] = defaultdict(set)
        for label, phrase in suppress:
            if key := term_tokens(phrase):
                self._suppress[key].add(label)
        self._term_starts = _longest_by_first_token(self._terms)
        self._prefixes = {key[:size] for key in self._terms for size in range(1, len(key) + 1)}
        # A token that starts only longer keys ("the", "в", "la") starts one
        # only before the right second token: most of them are checked with one look-up.
        self._whole = {key[0] for key in self._terms if len(key) == 1}
        self._pairs = {key[:2] for key in self._terms if len(key) > 1}
        self._suppress_starts = _longest_by_first_token(self._suppress)
        self._suppress_longest = max(map(len, self._suppress), default=0)
        self._state_words = state_words or StateWords()

    def __len__(self) -> int:
        return sum(len(terms) for terms in self._terms.values())

    @property
    def state_words(self) -> StateWords:
        return self._state_words

    def find(self, text: str) -> Iterator[tuple[Term, str]]:
        """Yield each term found in ``text``, left to right, with the text it matched."""
        folded = fold(text)
        words = (_TOKEN_ASCII if folded.text.isascii() else _TOKEN).findall(folded.text)
        starts = self._term_starts
        # Where a term may start, found without a Python loop over every word.
        hits = list(compress(range(len(words)), map(starts.__contains__, words)))
        if not hits:
            return
        prefixes, terms, whole, pairs = self._prefixes, self._terms, self._whole, self._pairs
        # Token ``known`` starts at offset ``at`` (spaces end where a token starts).
        known, at = 0, len(folded.text) - len(folded.text.lstrip())
        count, free = len(words), 0
        for i in hits:
            if i < free:
                continue  # inside the term matched before
            if words[i] not in whole and tuple(words[i : i + 2]) not in pairs:
                continue
            # Keys longer than the longest key prefix found here cannot match.
            longest, limit = 1, min(starts[words[i]], count - i)
            while longest < limit and tuple(words[i : i + longest + 1]) in prefixes:
                longest += 1
            for size in range(longest, 0, -1):
                candidates = terms.get(tuple(words[i : i + size]))
                if not candidates:
                    continue
                at = _token_start(folded.text, words, i, known, at)
                known = i
                last = at
                if size > 1:
                    last = _skip(size - 1).match(folded.text, at).end()  # type: ignore[union-attr]
                original = folded.span(at, last + len(words[i + size - 1]))
                term = _pick(candidates, original, self._blocked(words, i, size))
                if term is not None:
                    if term.kind == "demonym" and (
                        kind := self._state_words.beside(words, i, i + size)
                    ):
                        term = _as_kind(term, kind)
                    yield term, original
                    free = i + size
                    break

    def _blocked(self, words: list[str], start: int, size: int) -> set[str] | frozenset[str]:
        """The labels blocked at tokens ``start`` to ``start + size``: those
        of the suppress phrases that overlap them."""
        starts = self._suppress_starts
        blocked: set[str] | frozenset[str] = _NONE
        for j in range(max(0, start - self._suppress_longest + 1), start + size):
            longest = starts.get(words[j])
            if longest is None:
                continue
            # Phrases starting at j long enough to reach token ``start``.
            for length in range(min(longest, len(words) - j), max(start - j, 0), -1):
                labels = self._suppress.get(tuple(words[j : j + length]))
                if labels:
                    blocked = blocked | labels
        return blocked


@dataclass(frozen=True)
class StateWords:
    """Words next to which a demonym means the state (``state-words.yaml``):
    folded tokens that may follow it ("Tajik migrants", "таджикские
    мигранты") or come before it ("le gaz turkmène"); unless a word that
    makes it a minority comes right before it ("ethnic"). And the places
    abroad where each people lives as a minority: an item that names one
    keeps its demonyms a people's (:meth:`Classifier.classify_fields`)."""

    after: frozenset[str] = frozenset()
    before: frozenset[str] = frozenset()
    ethnic: frozenset[str] = frozenset()
    #: Terms labelled with the people (``uz``...) they are a minority place of.
    minorities: Gazetteer | None = None
    #: Words of home news (``home:``), at the start of a folded word.
    home: re.Pattern[str] | None = None
    #: Words of the state that no minority has (its gas, its border, its
    #: embassy: ``sovereign:``): beside them a demonym is the state's even
    #: in an item naming a place where that people is a minority.
    sovereign: frozenset[str] = frozenset()

    def beside(self, words: list[str], start: int, end: int) -> str | None:
        """The kind of tokens ``start`` to ``end`` of ``words``, a demonym, by
        the word beside them: "state" (a word of the state), "sovereign" (one
        of :attr:`sovereign`), or None (a people's name)."""
        before = words[start - 1] if start > 0 else ""
        if before in self.ethnic:
            return None
        after = words[end] if end < len(words) else ""
        if after in self.after or before in self.before:
            return "sovereign" if after in self.sovereign or before in self.sovereign else "state"
        return None

    def home_news(self, texts: Iterable[str]) -> bool:
        """Whether ``texts`` have a word of home news (the state, exchange rates,
        schools...): without one, an item that names no place is not given
        its source's country."""
        return self.home is None or any(self.home.search(fold(text).text) for text in texts)

    def minorities_named(self, texts: Iterable[str]) -> set[str]:
        """The labels whose peoples live as minorities in a place ``texts`` name."""
        if self.minorities is None:
            return set()
        return {term.label for text in texts for term, _ in self.minorities.find(text)}


#: The kinds of a people's name: a demonym, and a demonym beside a word of the state.
_PEOPLE = frozenset({"demonym", "state"})


@lru_cache(maxsize=4096)
def _as_kind(term: Term, kind: str) -> Term:
    """A demonym beside a word of the state, as a word of the state (``kind``)."""
    return replace(term, kind=kind)


def _longest_by_first_token(keys: Iterable[Key]) -> dict[str, int]:
    longest: dict[str, int] = {}
    for key in keys:
        longest[key[0]] = max(longest.get(key[0], 0), len(key))
    return longest


def _pick(candidates: list[Term], original: str, blocked: Collection[str]) -> Term | None:
    for term in candidates:
        if term.label in blocked:
            continue
        if term.case_sensitive and term_tokens(original, True) != term_tokens(term.form, True):
            continue
        return term
    return None


_TOKEN = re.compile(r"\w+|[^\w\s]")
#: :data:`_TOKEN` for ASCII text, a third faster: ASCII character classes
#: instead of Unicode categories (``\s`` includes \x1c-\x1f, as in ``str``).
_TOKEN_ASCII = re.compile(r"[A-Za-z0-9_]+|[^A-Za-z0-9_ \t\n\r\f\v\x1c-\x1f]")


_NONE: frozenset[str] = frozenset()


def _token_start(text: str, words: list[str], i: int, known: int, at: int) -> int:
    """Where token ``i`` of ``text`` starts, given that token ``known`` (at
    most ``i``) starts at ``at``.

    A token that is a word is found with ``str.find``: it is the next whole-word
    occurrence of that word (no word character on either side), once the
    tokens equal to it before it are skipped. Five times faster than
    counting tokens with a regular expression (:func:`_skip`), which finds a
    punctuation token.
    """
    if i == known:
        return at
    word = words[i]
    if not _is_word_char(word[0]):
        return _skip(i - known).match(text, at).end()  # type: ignore[union-attr]
    before = words[known:i].count(word)
    end, pos = len(text), at
    while True:
        pos = text.find(word, pos)
        if pos < 0:  # cannot happen: token i is in the text; never loop on it
            raise AssertionError(f"token {word!r} not found after offset {at}")
        after = pos + len(word)
        if (pos == 0 or not _is_word_char(text[pos - 1])) and (
            after == end or not _is_word_char(text[after])
        ):
            if not before:
                return pos
            before -= 1
        pos += 1


def _is_word_char(char: str) -> bool:
    """What ``\\w`` matches (checked for every code point in a test)."""
    return char.isalnum() or char == "_"


@lru_cache(maxsize=1024)
def _skip(tokens: int) -> re.Pattern[str]:
    """Matches ``tokens`` tokens (:data:`_TOKEN`) and the spaces around them:
    where it ends, the next token starts."""
    return re.compile(rf"(?:\s*(?:\w+|[^\w\s])){{{tokens}}}\s*")


class Classifier:
    """Scores an entry against a gazetteer; see the module docstring."""

    def __init__(self, gazetteer: Gazetteer | None = None) -> None:
        self.gazetteer = gazetteer or default_gazetteer()

    @classmethod
    def from_config(cls, config: ClassifyConfig) -> Classifier:
        """The bundled gazetteer with an editor's additions and exclusions."""
        if not config.add and not config.exclude:
            return cls()
        return cls(build_gazetteer(config))

    def classify(self, entry: Entry, hint: str | None = None) -> Classification:
        """Classify an entry by its title, summary and categories.

        ``hint`` is the source's home country, if the editor gave one.
        """
        fields = {
            "title": entry.title,
            "summary": lead(entry.summary),
            "categories": " ; ".join(entry.categories),
        }
        return self.classify_fields(fields, hint)

    def classify_text(self, text: str, hint: str | None = None) -> Classification:
        """Classify a bare piece of text, as if it were a title."""
        return self.classify_fields({"title": text}, hint)

    def classify_fields(self, fields: Mapping[str, str], hint: str | None = None) -> Classification:
        found = [
            (field, term, text)
            for field, value in fields.items()
            for term, text in self.gazetteer.find(value)
        ]
        abroad: set[str] = set()
        if any(term.kind in _PEOPLE for _, term, _ in found):
            # "Uzbek delegation" from Jawzjan, "туркменские" in Syria: a minority there,
            # whose name is a people's, and counts nothing (MINORITY).
            abroad = self.gazetteer.state_words.minorities_named(fields.values())
            found = [
                (field, replace(term, kind="demonym"), text)
                if term.kind == "state" and term.label in abroad
                else (field, term, text)
                for field, term, text in found
            ]
        title_foreign = title_local = body_foreign = body_local = 0.0
        for field, term, _ in found:
            points = KIND_POINTS.get(term.kind, 1.0)
            if field == "title":
                if term.label == FOREIGN:
                    title_foreign += points
                else:
                    title_local += points
            elif term.label == FOREIGN:
                body_foreign += points
            else:
                body_local += points
        # The title is about somewhere else: Central Asia is mentioned in passing.
        passing = title_foreign > 0 and title_local == 0
        # The title names no place, and the summary names foreign places at
        # least as strongly as Central Asian ones (a list of countries, in a
        # world news item): in passing too, unless the source is a Central
        # Asian outlet (its hint), whose items are about its country.
        if title_local == 0 and hint is None and body_foreign > 0:
            passing = passing or body_foreign >= body_local
        # The title names a foreign place at least as strongly: a people or a
        # town name may be a minority or a namesake there (Kazakhs in Mongolia,
        # Talas in Turkey).
        homonym = title_foreign > 0 and title_foreign >= title_local
        matches = []
        for field, term, text in found:
            points = KIND_POINTS.get(term.kind, 1.0) * FIELD_WEIGHT[field]
            if term.label != FOREIGN:
                if passing and field != "title":
                    points *= PASSING_MENTION
                if term.kind == "demonym" and term.label in abroad:
                    points *= MINORITY  # whatever the title: not halved, nothing
                elif homonym and term.kind in WEAK_KINDS:
                    points *= PASSING_MENTION
            matches.append(Match(term.label, term.form, text, field, term.kind, points))
        if (
            hint is not None
            and not matches
            and not self.gazetteer.state_words.home_news(fields.values())
        ):
            hint = None  # no place, nor home news: world news (a phone, a car maker)
        return decide(tuple(matches), hint)


def decide(matches: tuple[Match, ...], hint: str | None = None) -> Classification:
    """Turn scored matches (and a source hint) into countries and the regional flag."""
    scores: defaultdict[str, float] = defaultdict(float)
    first: dict[str, int] = {}
    for n, m in enumerate(matches):
        scores[m.label] += m.points
        first.setdefault(m.label, n)
    if (
        hint in COUNTRIES
        and scores[hint] < THRESHOLD
        and all(m.label == hint and m.points > 0 for m in matches)
    ):
        # No evidence, or only of the source's own country, too weak alone
        # (Dushanbe in a summary): an item naming its home town is no less
        # its home news than one naming no place. Not its people's name
        # where they are a minority (worth nothing): news from abroad.
        hinted = Match(hint, "source country", "", "source", "hint", THRESHOLD - scores[hint])
        matches = (*matches, hinted)
        scores[hint] = THRESHOLD
        first.setdefault(hint, len(matches) - 1)
    best = max((scores[c] for c in COUNTRIES), default=0.0)
    kept = [c for c in COUNTRIES if scores[c] >= THRESHOLD and scores[c] >= RELATIVE * best]
    countries = tuple(
        sorted(kept, key=lambda c: (-scores[c], c != hint, first.get(c, len(matches))))
    )
    regional = scores[REGION] >= THRESHOLD or len(countries) >= REGIONAL_COUNTRIES
    return Classification(
        countries=countries,
        regional=regional,
        scores={k: v for k, v in scores.items() if v},
        matches=matches,
    )


_TAG = re.compile(r"<[^>]*>")
#: Characters of a summary that are read: the lead. What an item is about is
#: in its title and first sentences; the rest of a long text only mentions.
LEAD = 1000


def lead(markup: str | None) -> str:
    """The first :data:`LEAD` characters of the text of an HTML summary."""
    markup = (markup or "")[: LEAD * 3]
    if "<" not in markup and "&" not in markup:
        return markup[:LEAD]  # plain text already: nothing to strip or unescape
    return markup_text(markup)[:LEAD]


#: The markups :func:`markup_text` read last, by id, and their texts.
_read: dict[int, tuple[str, str]] = {}
#: How many it keeps: more than the entries of a feed, prepared a stage at a time.
_READ_SIZE = 256


def markup_text(markup: str) -> str:
    """The text of HTML markup: tags become spaces, references are unescaped.

    The classifier, the clustering signature and the fingerprint read the
    same summaries one after the other (:func:`~aggregator.prepare.prepare_entries`):
    the last results are kept, and found again by identity (a slice of a
    short summary is the summary itself). A kept markup stays alive, so its
    id is not reused for another while it is kept.
    """
    read = _read.get(id(markup))
    if read is not None and read[0] is markup:
        return read[1]
    text = html.unescape(_TAG.sub(" ", markup))
    if len(_read) >= _READ_SIZE:
        _read.clear()
    _read[id(markup)] = (markup, text)
    return text


@cache
def default_gazetteer() -> Gazetteer:
    """The bundled gazetteer, loaded and indexed once per process."""
    return build_gazetteer(ClassifyConfig())


def build_gazetteer(config: ClassifyConfig) -> Gazetteer:
    """The bundled gazetteer plus an editor's terms; excluded forms are removed
    and become suppress phrases for their label."""
    # The editor's terms come first: they win over a bundled form with the same words.
    terms = [
        Term(label, "editor", "", form) for label, forms in config.add.items() for form in forms
    ]
    suppress: list[tuple[str, str]] = []
    for label, data in _bundled().items():
        exact = set(data.get("case_sensitive") or ())
        terms.extend(_terms(label, data, exact))
        suppress.extend((label, phrase) for phrase in data.get("suppress") or ())
    for label, phrases in config.exclude.items():
        excluded = {term_tokens(p) for p in phrases}
        terms = [t for t in terms if t.label != label or term_tokens(t.form) not in excluded]
        suppress.extend((label, phrase) for phrase in phrases)
    return Gazetteer(terms, suppress, _state_words())


@cache
def _bundled() -> dict[str, dict[str, Any]]:
    folder = _folder()
    return {
        label: yaml.load(folder.joinpath(f"{label}.yaml").read_text(encoding="utf-8"), FAST_YAML)
        for label in GAZETTEER_LABELS
    }


@cache
def _state_words() -> StateWords:
    data = yaml.load(_folder().joinpath(STATE_WORDS).read_text(encoding="utf-8"), FAST_YAML)

    def words(forms: Iterable[object]) -> frozenset[str]:
        folded = (term_tokens(str(w)) for w in forms)
        return frozenset(key[0] for key in folded if len(key) == 1)

    minorities = Gazetteer(
        Term(label, "minority", "", str(form))
        for label, forms in data["minorities"].items()
        for form in forms
    )
    # "tax=" is the word "tax"; "school" starts "schools" and "schooling".
    home = "|".join(
        re.escape(fold(word).text.removesuffix("=")) + (r"\b" if word.endswith("=") else "")
        for forms in data["home"].values()
        for word in map(str, forms)
    )
    return StateWords(
        sovereign=words(w for forms in data["sovereign"].values() for w in forms),
        after=words(w for forms in data["after"].values() for w in forms),
        before=words(w for forms in data["before"].values() for w in forms),
        ethnic=words(data["ethnic"]),
        minorities=minorities,
        home=re.compile(rf"(?<!\w)(?:{home})"),
    )


def _folder() -> Any:
    return resources.files(__package__).joinpath("gazetteer")


def _terms(label: str, data: Mapping[str, Any], exact: set[str]) -> Iterator[Term]:
    for kind, by_language in (data.get("terms") or {}).items():
        for language, forms in (by_language or {}).items():
            for form in forms or ():
                yield Term(label, kind, language, str(form), str(form) in exact)


__all__ = [
    "FOREIGN",
    "LABELS",
    "Classifier",
    "Gazetteer",
    "Term",
    "build_gazetteer",
    "decide",
    "default_gazetteer",
    "lead",
    "markup_text",
]

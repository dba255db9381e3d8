"""Near-duplicate stories across outlets (pure): signatures, decisions, an index.

:mod:`.dedupe` catches the same article (canonical URL) and the same text
(fingerprint). This module catches the same *story* told in other words:

* **signature** of an item: the words of its title and summary, folded,
  stripped of stopwords, transliterated from Cyrillic, reduced to a spelling
  skeleton (``Жапаров``, ``Japarov`` and ``Djaparov`` agree; so do
  ``Douchanbé`` and ``Dushanbe``) and to their first five letters (a cheap
  stem for Russian cases and French plurals), plus the concepts of a small
  news lexicon shared across French, English and Russian (``data/concepts.yaml``:
  "court", "суд" and "tribunal" are one concept); canonical numbers ("85 000",
  "85 тысяч" and "85k" agree); and the places its title names.
* **similarity**: IDF-weighted overlap of two feature sets, the larger of
  their Jaccard and (discounted) containment, so a copy with a truncated
  summary still scores high.
* **decision**, built for precision because a false merge loses news: never
  the same story when published further apart than the window, when the
  titles carry different numbers ("rate on 12 May" and "on 13 May"), when the
  texts carry several telling numbers each and none in common, when the titles
  name different places, when the items are about different countries, or
  when the titles are one template with a word or
  two swapped ("visit to China" and "visit to Japan"), or fill one of
  :data:`SLOTS` differently however alike the rest ("new energy minister"
  and "new health minister", "output rises" and "output falls"); otherwise
  the same story
  above :data:`THRESHOLD`, or above a lower one when they share a telling
  number (16.5, 980, 12950) and their titles share a word, a name or a
  concept (a number alone is shared by chance too often). Tuned on ``tests/data/dedupe/pairs.json``
  (``python -m benchmarks.dedupe_pairs``).
* **index**: an inverted index from rare features to recent items, so each new
  item is compared with the few that share one, not with all of them (cost
  near-linear in the number of items; ``python -m benchmarks.clustering``).

It does no I/O beyond reading its lexicon: the pipeline fills the index from
the store.
"""

from __future__ import annotations

import json
import math
import re
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from importlib import resources
from itertools import chain, compress

import yaml

from .classify import FAST_YAML, lead
from .classify.text import CodePageFold

#: Two reports of one story are at most this far apart.
WINDOW = timedelta(hours=72)
#: Least similarity for two items to be one story...
THRESHOLD = 0.35
#: ...or this much, when they also share a telling number (16.5, 980, 12950).
THRESHOLD_WITH_NUMBER = 0.12
#: Above this similarity, near-identical titles are a copy, not a contrast.
CONTRAST_EXEMPT = 0.55
#: Titles contrast when each has this few words the other lacks (fewer, more).
CONTRAST_WORDS = (2, 2)
#: Weight of containment (one text inside the other) against Jaccard.
CONTAINMENT_WEIGHT = 0.85
#: Features shared by more than this many indexed items (or this fraction of
#: them, if more) do not find candidates: they are too common to point anywhere.
MAX_DF = 50
MAX_DF_FRACTION = 0.002
#: Candidates compared in full per new item.
MAX_CANDIDATES = 10
#: An item known by its link (no guid of its own) repeats an item of its own
#: source this close to it in time and this similar: the same article moved
#: to another link (a headline fixed, and the slug in its link with it).
SAME_SOURCE_WINDOW = timedelta(hours=12)
SAME_SOURCE_THRESHOLD = 0.75
#: Stem length: the first letters of a word's skeleton.
STEM = 5
#: Place key length: places agree when their skeletons start alike (Chine,
#: China; Samarkand, Samarcande; Turkestan, Turkistan). Longer keys would tell
#: Turkmenbashi from Turkmenabat, but split the spellings of one town more often.
PLACE_KEY = 3


_WORD = re.compile(r"\d+(?:[.,]\d+)?|[^\W\d_]+")
#: :data:`_WORD` for ASCII text, a third faster (ASCII classes, not Unicode categories).
_WORD_ASCII = re.compile(r"[A-Za-z]+|[0-9]+(?:[.,][0-9]+)?")
#: A number and the word after it. Read as ``\d{1,3}(?:[ ]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?``:
#: the shared first ``\d`` is written once, so the regex engine skips to digits
#: at C speed (three times faster on a lead).
_NUMBER = re.compile(
    r"(\d(?:\d{0,2}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?|\d*(?:[.,]\d+)?))\s*([^\W\d_]*)"
)
#: A whole number in ASCII digits without leading zeros, well within the
#: precision of Decimal (28 digits): its own canonical form.
_PLAIN_NUMBER = re.compile(r"0|[1-9][0-9]{0,19}")
#: Digit group separators, removed from numbers.
_GROUPING = str.maketrans("", "", " \u00a0\u202f")
_YEAR = re.compile(r"(19|20)\d\d")
#: Words after a number that multiply it (85 тысяч = 85 000).
MULTIPLIERS = {
    **dict.fromkeys("thousand thousands mille milliers тысяч тысячи тысяча тыс k".split(), 3),
    **dict.fromkeys("million millions mln m млн миллион миллиона миллионов".split(), 6),
    **dict.fromkeys(
        "billion billions milliard milliards bn млрд миллиард миллиарда миллиардов".split(), 9
    ),
}  # fmt: skip
#: Number words that say as much as digits ("dix morts" and "10 morts").
NUMBER_WORDS = {
    **dict.fromkeys("ten dix десять десяти".split(), "10"),
    **dict.fromkeys("eleven onze одиннадцать одиннадцати".split(), "11"),
    **dict.fromkeys("twelve douze двенадцать двенадцати".split(), "12"),
    **dict.fromkeys("fifteen quinze пятнадцать пятнадцати".split(), "15"),
    **dict.fromkeys("twenty vingt двадцать двадцати".split(), "20"),
    **dict.fromkeys("thirty trente тридцать тридцати".split(), "30"),
    **dict.fromkeys("fifty cinquante пятьдесят пятидесяти".split(), "50"),
    **dict.fromkeys("hundred cent сто ста".split(), "100"),
}  # fmt: skip
#: Generic words inside place names ("région de Jamboul"): not the place itself.
PLACE_WORDS = frozenset(
    "region regions province oblast district city town ville région district de du la le "
    "des d l область области областью районе район района город города городе г"
    .split()
)  # fmt: skip

_CYRILLIC = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z",
        "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
        "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch",
        "ш": "sh", "щ": "sh", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
        "ё": "e", "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u",
        "һ": "h", "і": "i", "ў": "o", "ҳ": "h", "ӣ": "i", "ӯ": "u", "ҷ": "j",
    }
)  # fmt: skip
#: Spelling variants of transliterations, folded to one skeleton (order matters).
_SKELETON = (
    ("shch", "s"), ("sch", "s"), ("tch", "s"), ("ch", "s"), ("sh", "s"),
    ("dzh", "j"), ("dj", "j"), ("zh", "j"), ("kh", "h"), ("ts", "c"), ("tz", "c"),
    ("ou", "u"), ("ph", "f"), ("q", "k"), ("w", "v"), ("x", "ks"), ("ck", "k"), ("y", "i"),
)  # fmt: skip
_VOWEL_I = re.compile(r"(?<=[aeiou])i(?=[aeiou])")
_DOUBLE = re.compile(r"(.)\1+")

#: Words that say nothing about which story it is (fr, en, ru), folded.
STOPWORDS = frozenset(
    """
    a an and are as at be been but by for from has have he her his in into is it its of on or
    over that the their this to was were will with after before about against new says said
    after amid more than its not no up out one two three year years week day today
    au aux avec ce ces dans de des du elle en et il ils la le les leur lui mais ne nous ou
    par pas pour qu que qui sa se ses son sur un une d l s c n j apres avant contre plus
    selon entre nouveau nouvelle nouvelles nouveaux ete etre fait ans an cette vers sous
    chez sans lors tout tous toute toutes deux trois sera sont ont avait dont est
    а без в во все для до его ее же за и из или их к как ко ли на над не но о об
    от по под при про с со так то у что это этот эта эти чем был была были быть будет
    будут также после году года год более мая ее
    """.split()
)


#: What ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` builds on every call.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Signature:
    """What comparing an item with others needs, computed once and stored."""

    #: Feature stems of the title and summary, sorted. Tuples, not sets: an
    #: index holds every signature of three days, and a set costs ten times
    #: the memory; sets are built for the few signatures compared.
    features: tuple[str, ...]
    #: Feature stems of the title alone, sorted.
    title: tuple[str, ...]
    #: Telling numbers of the whole text: not years, 10 or more, or decimals.
    numbers: frozenset[str]
    #: Numbers of the title, 2 or more (years included: "budget 2027").
    title_numbers: frozenset[str]
    #: Towns, provinces and capitals the title names, as short keys ("jam"),
    #: and Central Asian capitals as their country too ("@kz": Astana and
    #: Nur-Sultan, Ashgabat and Ашхабад agree).
    places: frozenset[str] = frozenset()
    #: Whether the text gives a number as approximate ("about 300", "около
    #: 300"): another outlet's figure may then differ (:func:`conflicting`).
    vague: bool = False
    #: Whether the title is written in Cyrillic: two titles in different
    #: scripts are translations, not one template (:func:`contrasting`).
    cyrillic: bool = False
    #: Stems of the title's names (:func:`_names`: "Tengri Bank loses its
    #: licence": tengr, bank), which :func:`contrasting` reads.
    names: frozenset[str] = frozenset()
    #: Numbers fused to a word in the title, as written folded ("u-17",
    #: "камбарата-1"): not quantities, but which team or plant (:func:`conflicting`).
    fused: frozenset[str] = frozenset()

    @property
    def feature_set(self) -> frozenset[str]:
        return frozenset(self.features)

    @property
    def words(self) -> frozenset[str]:
        """The features without numbers."""
        return _without_numbers(self.features)

    @property
    def title_words(self) -> frozenset[str]:
        """The title's features without numbers: stems, names, concepts."""
        return _without_numbers(self.title)

    def dumps(self) -> str:
        return _JSON.encode(
            [list(self.features), list(self.title), sorted(self.numbers),
             sorted(self.title_numbers), sorted(self.places), self.vague, self.cyrillic,
             sorted(self.names), sorted(self.fused)]
        )  # fmt: skip

    @classmethod
    def loads(cls, text: str, title: str | None = None) -> Signature:
        """A stored signature. One stored by an older version lacks the later
        fields: what is read from the title is read from ``title`` (the
        item's), if given; an approximate figure is taken as exact."""
        features, title_features, numbers, title_numbers, *rest = json.loads(text)
        places, vague, cyrillic, names, fused = (*rest, None, None, None, None, None)[:5]
        # (A version stored the item's countries, a list, where vague is now.)
        if not isinstance(cyrillic, bool) or not all(isinstance(f, list) for f in (names, fused)):
            cyrillic, names, fused = (
                (_cyrillic(title), _names(title), _fused_words(_fold(title)))
                if title
                else (False, (), ())
            )
        # Interned: an index holds thousands of signatures made of the same words.
        return cls(
            tuple(map(sys.intern, features)),
            tuple(map(sys.intern, title_features)),
            frozenset(numbers),
            frozenset(title_numbers),
            frozenset(places or ()),
            vague if isinstance(vague, bool) else False,
            cyrillic,
            frozenset(names),
            frozenset(fused),
        )


def signature(title: str, summary: str | None, places: Iterable[str] = ()) -> Signature:
    """The signature of an item; ``places`` are the towns, provinces and
    capitals its title names, as written."""
    summary = lead(summary)
    # The text is folded and cut into words once, for features and numbers alike.
    folded = _fold(f"{title} {summary}")
    words = _words(folded)
    # Features have always read the lead of the lead (:func:`features`); it is
    # the lead itself unless the lead holds markup or entities once unescaped.
    again = lead(summary)
    feature_words = words if again == summary else _words(_fold(f"{title} {again}"))
    title_folded = _fold(title)
    return Signature(
        features=tuple(sorted(_word_set_features(feature_words))),
        title=tuple(sorted(_word_set_features(_words(title_folded)))),
        numbers=frozenset(n for n in _folded_numbers(folded, words) if _telling(n)),
        title_numbers=frozenset(n for n in _folded_numbers(title_folded) if n not in ("0", "1")),
        places=frozenset(key for place in places for key in place_keys(place)),
        vague=_vague(words),
        cyrillic=_cyrillic(title),
        names=_names(title),
        fused=_fused_words(title_folded),
    )


def _fused_words(folded: str) -> frozenset[str]:
    """The numbers fused to a word in a folded title ("u-17", "ps-2")."""
    if "-" not in folded:
        return frozenset()
    return frozenset(_FUSED_WORD.findall(folded))


_FUSED_WORD = re.compile(r"[^\W\d_]+-\d+")


def _cyrillic(title: str) -> bool:
    return not title.isascii() and _CYRILLIC_LETTER.search(title) is not None


def _names(title: str) -> frozenset[str]:
    """The stems of a title's names: its capitalised words (not in capitals:
    "UN", "ЦБ"), the first one only before another ("Tengri Bank loses..."),
    as every title starts with a capital; none in a Title Case headline,
    whose capitals tell no names."""
    words = _LETTERS.findall(title)
    capital = [w[0].isupper() and not w.isupper() for w in words]
    if len(words) > 3 and 2 * sum(capital[1:]) > len(words) - 1:
        return frozenset()  # "Floods Hit Almaty Region"
    if capital and (len(words) < 2 or not capital[1]):
        capital[0] = False
    return frozenset(
        f
        for word, named in zip(words, capital, strict=True)
        if named
        for f in _word_features(_fold(word))
        if not f.startswith("@")
    )


_LETTERS = re.compile(r"[^\W\d_]+")


_CYRILLIC_LETTER = re.compile("[\u0400-\u04ff]")


#: Words that give the number after them as approximate, in folded text
#: ("about 300", "près de 1 000", "около 300"); not "до" nor "up to" alone:
#: "вырос до 528" is exact.
_VAGUE_WORDS = frozenset(
    "about around nearly almost some over roughly approximately environ quelque quelques "
    "около почти более свыше порядка примерно больше несколько".split()
)
_VAGUE_PAIRS = frozenset(
    {"more than", "at least", "an estimated", "pres de", "plus de", "au moins", "не менее"}
)
#: The second word of each pair (:data:`_VAGUE_PAIRS`), with the first words it follows.
_VAGUE_AFTER: dict[str, frozenset[str]] = {
    last: frozenset(p.split()[0] for p in _VAGUE_PAIRS if p.split()[1] == last)
    for last in {pair.split()[1] for pair in _VAGUE_PAIRS}
}
_VAGUE_ANY = _VAGUE_WORDS | _VAGUE_AFTER.keys() | {p.split()[0] for p in _VAGUE_PAIRS}


def _vague(words: list[str]) -> bool:
    """Whether a folded text's words (:func:`_words`: numbers among them, in
    order) give a number as approximate (:data:`_VAGUE_WORDS`). Only the
    places of the words that may do so are visited, found in C: a French
    text has "de" everywhere, and a loop over all its words cost a third of
    its signature; "de" only when "pres" or "plus" is in the text too."""
    last = len(words) - 1
    present = _VAGUE_ANY.intersection(words)
    for word in present:
        if word not in _VAGUE_WORDS and present.isdisjoint(_VAGUE_AFTER.get(word, ())):
            continue  # "de" without "pres" or "plus"; or a pair's first word
        i = -1
        while (i := _index(words, word, i + 1)) >= 0:
            if i < last and words[i + 1][0].isdigit():
                if word in _VAGUE_WORDS or (i and f"{words[i - 1]} {word}" in _VAGUE_PAIRS):
                    return True
    return False


def _index(words: list[str], word: str, start: int) -> int:
    """``words.index(word, start)``, or -1."""
    try:
        return words.index(word, start)
    except ValueError:
        return -1


def features(title: str, summary: str | None) -> frozenset[str]:
    """The language-light features of an item's text; see the module docstring."""
    return _word_set_features(_words(_fold(f"{title} {lead(summary)}")))


def _words(folded: str) -> list[str]:
    """The words (:data:`_WORD`) of a folded text."""
    return (_WORD_ASCII if folded.isascii() else _WORD).findall(folded)


def _word_set_features(words: Iterable[str]) -> frozenset[str]:
    """The features of folded words (each distinct word looked up once, in C)."""
    return frozenset(chain.from_iterable(map(_word_features, set(words))))


def place_keys(place: str) -> Iterable[str]:
    """Short keys of a place name, without generic words: "région de Jamboul"
    -> jam; a capital given as its country ("@kz") is its own key."""
    if place[:1] == "@":
        yield place
        return
    for word in _WORD.findall(_fold(place)):
        if word not in PLACE_WORDS and not word[0].isdigit():
            yield skeleton(word)[:PLACE_KEY]


def _numbers(text: str, words: bool = True) -> Iterable[str]:
    """Numbers as canonical decimals: "85 000", "85 тысяч" and "85k" are all
    85000; with ``words``, "dix" is 10."""
    folded = _fold(text)
    return _folded_numbers(folded, _words(folded) if words else None)


def _folded_numbers(folded: str, words: list[str] | None = None) -> Iterable[str]:
    """:func:`_numbers` of a folded text; number words are read from ``words``
    (its :data:`_WORD` matches), when given.

    A number fused to a word ("covid-19", "pm2.5", "a320", "чм-2026") names
    a thing, not a quantity: left out. "1,200" is read both ways, 1200 (in
    English) and 1.2 (in French or Russian). A one-letter multiplier counts
    only written against the number: "$5m" is 5 million, "25 m/s" is 25."""
    for match in _NUMBER.finditer(folded):
        start = match.start()
        if start and (folded[start - 1].isalpha() or _fused(folded, start)):
            continue
        digits, unit = match.groups()
        if unit not in MULTIPLIERS or (len(unit) == 1 and match.end(1) != match.start(2)):
            unit = ""
        yield _canonical(digits, unit)
        if not unit and "," in digits and _COMMA_GROUPS.fullmatch(digits):
            yield digits.replace(",", "")
    if words:
        yield from map(NUMBER_WORDS.__getitem__, NUMBER_WORDS.keys() & words)


def _fused(text: str, start: int) -> bool:
    """True when the number at ``start`` follows a word and a hyphen ("covid-19")."""
    return start >= 2 and text[start - 1] == "-" and text[start - 2].isalpha()


#: A whole number with English digit groups ("1,200", "12,950,000").
_COMMA_GROUPS = re.compile(r"[1-9]\d{0,2}(?:,\d{3})+")


@lru_cache(maxsize=1 << 14)
def _canonical(digits: str, multiplier: str) -> str:
    """A number as written (digits, and a word of :data:`MULTIPLIERS` or
    nothing) as a canonical decimal. Cached: texts repeat their numbers."""
    if not multiplier and _PLAIN_NUMBER.fullmatch(digits):
        return digits  # already canonical: Decimal would give it back
    value = Decimal(digits.translate(_GROUPING).replace(",", "."))
    value = value.scaleb(MULTIPLIERS.get(multiplier, 0)).normalize()
    return f"{value:f}"


def _round(number: str) -> bool:
    """10, 20... 90: "ten months", "20 years" are everywhere."""
    return len(number) == 2 and number.endswith("0")


def _telling(number: str) -> bool:
    """A number that identifies an event: a decimal, or a whole number of two
    digits or more that is not a year."""
    return "." in number or (len(number) >= 2 and not _YEAR.fullmatch(number))


@lru_cache(maxsize=1 << 17)
def _word_features(word: str) -> tuple[str, ...]:
    """The features of one folded word: nothing, a number, or a stem and its concept."""
    if word in STOPWORDS:
        return ()
    if word[0].isdigit():
        return (word.replace(",", "."),)
    if word in NUMBER_WORDS:
        return (NUMBER_WORDS[word],)
    if len(word) <= 1:
        return ()
    concept = _concepts().find(word)
    stem = skeleton(word)[:STEM]
    return (stem, concept) if concept else (stem,)


class Concepts:
    """Words of a news lexicon mapped to concepts shared across languages, so
    "court sentences" and "суд приговорил" have features in common."""

    def __init__(self, lexicon: Mapping[str, Iterable[str]]) -> None:
        self.words: dict[str, str] = {}
        self.prefixes: dict[str, str] = {}
        for concept, forms in lexicon.items():
            for form in forms:
                if form.endswith("="):
                    self.words.setdefault(_fold(form[:-1]), f"@{concept}")
                else:
                    self.prefixes.setdefault(_fold(form), f"@{concept}")
        self.longest = max(map(len, self.prefixes), default=0)
        self._seen: dict[str, str | None] = {}

    def find(self, word: str) -> str | None:
        """The concept of a folded word: a whole-word entry, else the longest prefix."""
        if word in self._seen:
            return self._seen[word]
        concept = self.words.get(word)
        if concept is None:
            for size in range(min(len(word), self.longest), 1, -1):
                if (concept := self.prefixes.get(word[:size])) is not None:
                    break
        if len(self._seen) < 1 << 17:
            self._seen[word] = concept
        return concept


@cache
def _concepts() -> Concepts:
    data = resources.files("aggregator").joinpath("data/concepts.yaml").read_text(encoding="utf-8")
    return Concepts(yaml.load(data, Loader=FAST_YAML))


@lru_cache(maxsize=1 << 16)
def skeleton(word: str) -> str:
    """A folded word in Latin letters with spelling variants merged."""
    latin = word.translate(_CYRILLIC)
    for old, new in _SKELETON:
        latin = latin.replace(old, new)
    return _DOUBLE.sub(r"\1", _VOWEL_I.sub("", latin))


def _fold(text: str) -> str:
    if not text.isascii() and (folded := _FOLD_BYTES(text)) is not None:
        return folded
    return _fold_text(text)


def _fold_text(text: str) -> str:
    """:func:`_fold` by its definition. It works character by character once
    marks are dropped (only marks can be reordered by NFKD), so it can be
    applied through a code page (:class:`CodePageFold`)."""
    text = unicodedata.normalize("NFKD", text.casefold().replace("ё", "е").replace("й", "и"))
    return text if text.isascii() else _COMBINING.sub("", text)  # ASCII has no marks


_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_FOLD_BYTES = CodePageFold(_fold_text)


@dataclass(frozen=True)
class Doc:
    """What the index keeps of an item."""

    item_id: int
    story_id: int
    #: The source's URL: a source never repeats its own story in other words.
    source: str
    at: datetime
    signature: Signature
    #: The countries the item is about (kz...), as classified: items about
    #: different ones are different stories ("earthquake in Naryn region",
    #: "in Tajikistan"). Kept here, not in the signature: ``reclassify`` can
    #: change them, and a few tuples are shared by every item (:func:`countries`).
    countries: tuple[str, ...] = ()
    #: The item has no guid of its own: it is known by its link, or (without
    #: one) by its title and summary. When its headline is fixed, the slug in
    #: its link may change with it, and it comes back as a new item of its
    #: source (see :data:`SAME_SOURCE_WINDOW`); without a link, any edit does.
    no_own_id: bool = False

    @property
    def features(self) -> frozenset[str]:
        return self.signature.feature_set


#: The tuples of countries seen, so that every item about Kazakhstan shares one.
_COUNTRIES: dict[tuple[str, ...], tuple[str, ...]] = {}


def countries(codes: Iterable[str]) -> tuple[str, ...]:
    """``codes`` as a shared tuple, for :attr:`Doc.countries`."""
    key = tuple(codes)
    return _COUNTRIES.setdefault(key, key)


@dataclass(frozen=True)
class Hit:
    """The item a new one was found to repeat."""

    item_id: int
    story_id: int
    similarity: float


def _fused_apart(a: frozenset[str], b: frozenset[str]) -> bool:
    """True when one word carries different numbers in ``a`` and ``b``
    (:attr:`Signature.fused`): U-17 and U-20, Kambarata-1 and Kambarata-2."""
    mine, theirs = _numbered(a), _numbered(b)
    return any(not mine[word] & theirs[word] for word in mine.keys() & theirs.keys())


def _numbered(fused: frozenset[str]) -> dict[str, set[str]]:
    """The numbers of each word of :attr:`Signature.fused`."""
    numbers: defaultdict[str, set[str]] = defaultdict(set)
    for item in fused:
        word, _, number = item.rpartition("-")
        numbers[word].add(number)
    return numbers


def conflicting(a: Doc, b: Doc) -> bool:
    """True when two items cannot be one story whatever their words: too far
    apart in time, titles with different numbers ("rate on 12 May" and "on 13
    May"), texts with telling numbers and none in common (two or more each
    if either gives one as approximate), titles with one word numbered
    differently (U-17 and U-20),
    titles naming different places (Ashgabat and Turkmenabat), or items about
    different countries (Tokayev and Mirziyoyev each received at the Élysée)."""
    if abs(a.at - b.at) > WINDOW:
        return True
    x, y = a.signature, b.signature
    if x.title_numbers and y.title_numbers and not x.title_numbers & y.title_numbers:
        return True
    if x.fused and y.fused and _fused_apart(x.fused, y.fused):
        return True
    if x.numbers and y.numbers and not x.numbers & y.numbers:
        # Different figures: different events ("3 killed", "30 killed"; the
        # rate of Monday, of Tuesday), unless one is approximate ("about 300",
        # "312"), where two or more each, none shared, still tell.
        if not (x.vague or y.vague) or (len(x.numbers) >= 2 and len(y.numbers) >= 2):
            return True
    if a.countries and b.countries and not any(c in b.countries for c in a.countries):
        return True
    return bool(x.places and y.places and not x.places & y.places)


#: Concepts (``data/concepts.yaml``) that fill one slot of a news template:
#: two titles that each name one the other lacks, of the same kind, tell
#: different events however alike the rest ("new energy minister" and "new
#: health minister", "French minister" and "German minister"). Concepts
#: joined by "+" are one filler: words that another wording or language may
#: use for the same thing ("power" is energy, "électricité" electricity;
#: "plant" is a factory, "centrale" a power plant; petrol and diesel are oil
#: products). Natural gas is its own: Turkmen gas and Kazakh oil are two trades.
SLOTS: tuple[frozenset[str], ...] = tuple(
    frozenset(names.split())
    for names in (
        # sectors, ministries, goods (and the prime minister's office), buildings and works
        "agriculture education health energy+electricity+power_plant+hydropower+renewable "
        "gas oil+fuel coal nuclear gold uranium metal mineral cotton "
        "grain+food+meat+sugar+vegetables water tourism sport science internet housing pension "
        "salary tax customs railway road airport airline metro bus taxi prime_minister media ngo "
        "school kindergarten university hospital mosque church museum theatre stadium bridge "
        "tunnel factory hotel",
        # sports, and clubs
        "football boxing wrestling chess",
        "kairat_fc tobol_fc ordabasy_fc dordoi_fc istiklol_fc pakhtakor_fc",
        # countries and organisations
        "un eu nato csto sco cis eaeu imf kazakhstan uzbekistan kyrgyzstan tajikistan "
        "turkmenistan afghanistan taliban russia china usa turkey iran pakistan india ukraine "
        "belarus azerbaijan georgia armenia mongolia korea japan germany france britain israel "
        "palestine syria",
        # leaders
        "tokayev mirziyoyev japarov rahmon berdimuhamedov nazarbayev putin xi_jinping trump "
        "erdogan lukashenko zelensky",
        # opposite moves: up or down, in or out, open or shut, held or let go, signed
        # or vetoed, a ban lifted or extended
        "increase decrease",
        "export import",
        "open close",
        "arrest+sentence+prison release+acquit",
        "sign veto",
        "lift extend",
        "stop resume",
        # met or called; the first round, the second; Monday's rate, Tuesday's
        "meeting phone",
        "first second third",
        "monday tuesday wednesday thursday friday saturday sunday",
        # who is elected
        "parliament president",
        # people
        "man woman",
        # currencies
        "dollar euro ruble tenge som uzbek_sum somoni manat yuan",
        # cities
        "astana almaty tashkent bishkek dushanbe ashgabat moscow beijing samarkand bukhara "
        "shymkent osh khujand fergana karaganda",
    )
)
#: Each concept of :data:`SLOTS` (as a feature, ``@energy``): its slot, and its filler.
_FILLERS: dict[str, tuple[int, str]] = {
    f"@{concept}": (n, filler)
    for n, slot in enumerate(SLOTS)
    for filler in slot
    for concept in filler.split("+")
}


def _slot(filler: str) -> int:
    return next(n for n, slot in enumerate(SLOTS) if filler in slot)


#: Opposite moves that one event shows from either side: a rate read both
#: ways ("tenge falls to 520 per dollar", "доллар вырос до 520 тенге"), a
#: trade from either country ("Kazakhstan resumes wheat exports to Russia",
#: "Russia resumes imports of Kazakh wheat"). Such a slot (key) tells
#: nothing when both titles name this many fillers of another (value).
MIRRORED: dict[int, tuple[int, int]] = {
    _slot("increase"): (_slot("dollar"), 1),
    _slot("export"): (_slot("russia"), 2),
}


def swapped(a: Signature, b: Signature) -> bool:
    """True when the titles fill a slot of :data:`SLOTS` differently: each
    names a filler of that slot that the other does not (unless the slot is
    :data:`MIRRORED` in both titles)."""
    mine, theirs = _fillers_of(a.title), _fillers_of(b.title)
    only_mine, only_theirs = mine - theirs, theirs - mine
    if not only_mine or not only_theirs:
        return False  # most pairs compared: no filler on one side that the other lacks
    slots = {slot for slot, _ in only_mine} & {slot for slot, _ in only_theirs}
    for slot in slots & MIRRORED.keys():
        other, least = MIRRORED[slot]
        if all(sum(n == other for n, _ in side) >= least for side in (mine, theirs)):
            slots.discard(slot)
    return bool(slots)


@lru_cache(maxsize=1 << 14)
def _fillers_of(features: tuple[str, ...]) -> frozenset[tuple[int, str]]:
    """The slot fillers (:data:`_FILLERS`) among ``features`` (a title's,
    compared again and again)."""
    return frozenset(_FILLERS[f] for f in features if f in _FILLERS)


def contrasting(a: Signature, b: Signature, similarity: float) -> bool:
    """True for two titles cut from one template with a word or two swapped:
    "visit to China" and "visit to Japan", "electricity tariffs" and "gas
    tariffs". Near-copies (similarity above :data:`CONTRAST_EXEMPT`) are not,
    unless the words swapped are names (:attr:`Signature.names`) or fill
    one slot (:func:`swapped`), which two
    titles never fill differently whatever their similarity. Titles in
    different scripts (a translation) are compared by their slots only."""
    if swapped(a, b):
        return True
    if a.cyrillic != b.cyrillic:
        return False  # a translation: its words are not a template's
    mine, theirs = _stems(a.title), _stems(b.title)
    only_mine, only_theirs = mine - theirs, theirs - mine
    if similarity >= CONTRAST_EXEMPT:
        # A light edit, unless it swaps a name for another ("Tengri Bank"
        # and "Capital Bank lose their licences"; two boxers' gold).
        # Not two spellings of one name (Roghun, Rogun: their first letters agree).
        if not all(0 < len(only) <= CONTRAST_WORDS[1] for only in (only_mine, only_theirs)):
            return False
        names, other = only_mine & a.names, only_theirs & b.names
        return bool(names and other) and not {n[:3] for n in names} & {n[:3] for n in other}
    shared = len(mine & theirs)
    only = sorted((len(only_mine), len(only_theirs)))
    return (
        only[0] >= 1
        and only[0] <= CONTRAST_WORDS[0]
        and only[1] <= CONTRAST_WORDS[1]
        and shared >= 2
        and shared >= 0.5 * min(len(mine), len(theirs))
    )


def same_story(a: Doc, b: Doc, similarity: float, word_similarity: Callable[[], float]) -> bool:
    """The decision for one pair, given their similarity, and how to get their
    similarity without numbers (a shared number only counts beside shared
    words; computed only when needed)."""
    if similarity < THRESHOLD_WITH_NUMBER or conflicting(a, b):
        return False
    return _same_unless_conflicting(a, b, similarity, word_similarity)


def _same_unless_conflicting(
    a: Doc, b: Doc, similarity: float, word_similarity: Callable[[], float]
) -> bool:
    """:func:`same_story` for two items known not to be :func:`conflicting`."""
    if similarity < THRESHOLD_WITH_NUMBER:
        return False
    if contrasting(a.signature, b.signature, similarity):
        return False
    if similarity >= THRESHOLD:
        return True
    if not a.signature.title_words & b.signature.title_words:
        return False  # a shared number, but titles with no word, name or concept in common
    shared = a.signature.numbers & b.signature.numbers
    # A round two-digit number (10, 20) is in too many stories to tell one alone.
    telling = len(shared) >= 2 or any(not _round(n) for n in shared)
    return telling and word_similarity() >= THRESHOLD_WITH_NUMBER


@dataclass
class StoryIndex:
    """Recent items by feature, to find the story a new item belongs to."""

    docs: dict[int, Doc] = field(default_factory=dict)
    postings: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    #: Weights as first computed, until the index has grown by a quarter: a
    #: refresh adds few items to a loaded index, but a first refresh starts
    #: from an empty one, and weights from its first dozen items say little.
    _weights: dict[str, float] = field(default_factory=dict)
    #: Summed feature weights per indexed item, computed on first comparison.
    _totals: dict[int, float] = field(default_factory=dict)
    #: Weights are computed again once the index holds more items than this.
    _reweigh_after: int = 0

    def add(self, doc: Doc) -> None:
        self.docs[doc.item_id] = doc
        for feature in doc.signature.features:
            self.postings[feature].append(doc.item_id)
        if len(self.docs) > self._reweigh_after:
            self._reweigh()

    def _reweigh(self) -> None:
        """Weigh every indexed feature again, in one pass (sums then run in C)."""
        docs = len(self.docs)
        self._weights = {f: _idf(docs, len(p)) for f, p in self.postings.items()}
        self._totals.clear()
        self._reweigh_after = len(self.docs) + len(self.docs) // 4 + 50

    def weight(self, feature: str) -> float:
        """Inverse document frequency: rare features say more."""
        weight = self._weights.get(feature)
        if weight is None:
            df = len(self.postings.get(feature, ()))
            weight = self._weights[feature] = _idf(len(self.docs), df)
        return weight

    def _sum(self, features: Iterable[str]) -> float:
        """The summed weight of features, in C when all are weighed already."""
        try:
            return sum(map(self._weights.__getitem__, features))
        except KeyError:
            return sum(map(self.weight, features))

    def total(self, doc: Doc) -> float:
        """The summed weight of an indexed item's features (cached per item)."""
        total = self._totals.get(doc.item_id)
        if total is None:
            total = self._totals[doc.item_id] = self._sum(doc.signature.features)
        return total

    def similarity(
        self,
        a: frozenset[str],
        b: frozenset[str],
        weight_a: float | None = None,
        weight_b: float | None = None,
    ) -> float:
        """IDF-weighted overlap; the summed weights of ``a`` and ``b`` may be given."""
        return self._similarity(a, b, a & b, weight_a, weight_b)

    def _similarity(
        self,
        a: Collection[str],
        b: Collection[str],
        both: Iterable[str],
        weight_a: float | None,
        weight_b: float | None,
    ) -> float:
        """:meth:`similarity`, given the features ``a`` and ``b`` share."""
        shared = self._sum(both)
        if not shared:
            return 0.0
        if weight_a is None:
            weight_a = self._sum(a)
        if weight_b is None:
            weight_b = self._sum(b)
        jaccard = shared / (weight_a + weight_b - shared)
        containment = shared / min(weight_a, weight_b)
        return max(jaccard, CONTAINMENT_WEIGHT * containment * _short_text_penalty(a, b))

    def find(self, doc: Doc) -> Hit | None:
        """The most similar indexed item that may be the same story, if similar enough.

        Candidates are the indexed items sharing a rare feature with ``doc``,
        most shared weight first (ties: the earlier item); the first
        :data:`MAX_CANDIDATES` from other sources are compared in full. An
        item known by its link is also compared with its own source's items
        of the last :data:`SAME_SOURCE_WINDOW`, which it repeats only when
        nearly a copy (:data:`SAME_SOURCE_THRESHOLD`): the same article under
        a new link.
        Features are visited in their sorted order, so a placement does not
        depend on the process's string hashing."""
        limit = max(MAX_DF, int(MAX_DF_FRACTION * len(self.docs)))
        features = doc.signature.features
        weights, postings = self._weights, self.postings
        # Every feature of the new item is weighed now, once: later sums run in C.
        for feature in features:
            if feature not in weights:
                self.weight(feature)
        shared: defaultdict[int, float] = defaultdict(float)
        for feature in features:
            posting = postings.get(feature)
            if posting and len(posting) <= limit:
                weight = weights[feature]
                for item_id in posting:
                    shared[item_id] += weight
        if not shared:
            return None
        mine = doc.features
        my_weight = sum(map(weights.__getitem__, features))
        best: Hit | None = None
        candidates: Iterable[tuple[int, float]] = shared.items()
        if len(shared) > MAX_CANDIDATES:
            # Those below the weight of the last one compared cannot be
            # compared: left out in C before the sort, whose key is a Python
            # call per candidate. The same first ones, in the same order.
            least = sorted(shared.values(), reverse=True)[MAX_CANDIDATES - 1]
            candidates = compress(candidates, map(least.__le__, shared.values()))
        ranked = sorted(candidates, key=_by_shared_weight)
        for item_id, _ in ranked[:MAX_CANDIDATES]:
            other = self.docs[item_id]
            own = other.source == doc.source
            if own and not (doc.no_own_id and abs(doc.at - other.at) <= SAME_SOURCE_WINDOW):
                continue  # a source never repeats its own story in other words
            if conflicting(doc, other):
                continue  # never the same story, however similar
            theirs = other.signature.features  # a tuple: no set built for it
            score = self._similarity(
                mine, theirs, mine.intersection(theirs), my_weight, self.total(other)
            )
            if best is not None and score <= best.similarity:
                continue
            if own:
                if score >= SAME_SOURCE_THRESHOLD and not contrasting(
                    doc.signature, other.signature, score
                ):
                    best = Hit(other.item_id, other.story_id, score)
                continue

            def words(other: Doc = other) -> float:
                return self.similarity(doc.signature.words, other.signature.words)

            if _same_unless_conflicting(doc, other, score, words):
                best = Hit(other.item_id, other.story_id, score)
        return best


def _idf(docs: int, df: int) -> float:
    """The weight of a feature found in ``df`` of ``docs`` indexed items."""
    return math.log(1 + (1 + docs) / (1 + df))


def _by_shared_weight(candidate: tuple[int, float]) -> tuple[float, int]:
    return (-candidate[1], candidate[0])


def _without_numbers(features: Iterable[str]) -> frozenset[str]:
    return frozenset(f for f in features if not f[:1].isdigit())


def _stems(features: Iterable[str]) -> frozenset[str]:
    """Word stems and numbers, without concepts."""
    return frozenset(f for f in features if not f.startswith("@"))


def _short_text_penalty(a: Collection[str], b: Collection[str]) -> float:
    """Containment of a very short text proves little: scale it down."""
    return min(1.0, min(len(a), len(b)) / 8)

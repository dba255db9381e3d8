"""aggregator.cluster: signatures, pair decisions, the story index, and the labelled pairs."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator import cluster
from aggregator.cluster import Doc, StoryIndex, signature, skeleton
from benchmarks.dedupe_pairs import AUDIT, decide_all, load, precision_recall
from benchmarks.dedupe_pairs import doc as pipeline_doc

T0 = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    "words",
    [
        ("Жапаров", "Japarov", "Djaparov", "Zhaparov", "Джапаров"),
        ("Douchanbé", "Dushanbe", "Душанбе"),
        ("Tashkent", "Tachkent", "Ташкент"),
        ("Mirziyoyev", "Mirziyoev", "Мирзиёев", "Мирзиеев"),
        ("Khujand", "Худжанд"),
    ],
)
def test_spellings_of_a_name_share_a_stem(words: tuple[str, ...]) -> None:
    stems = {skeleton(cluster._fold(word))[: cluster.STEM] for word in words}
    assert len(stems) == 1, stems


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Зарплату повысят до 85 000 тенге", {"85000"}),
        ("Зарплату повысят до 85 тысяч тенге", {"85000"}),
        ("A $65m terminal", {"65000000"}),
        ("Le taux reste à 16,5 %", {"16.5"}),
        ("The rate stays at 16.5 percent", {"16.5"}),
        ("12 950 sums pour un dollar", {"12950"}),
        ("Dix morts à Samarcande", {"10"}),
        ("Budget 2027 adopted, 3 votes against", set()),  # years and units do not tell
        ("Lot 007 et 0120", {"120"}),  # leading zeros dropped
        ("Prix 100 et 12000 sums", {"100", "12000"}),
        # English digit groups are read both ways ("1,200" is 1.2 in French)
        ("1,200 evacuated in Osh", {"1.2", "1200"}),
        ("1 200 человек эвакуированы", {"1200"}),
        # a number fused to a word names a thing; a lone letter after a space is a unit
        ("COVID-19 and PM2.5: Bishkek's A320 fleet", set()),
        ("Wind of 25 m/s, a $5m loss", {"25", "5000000"}),
        # beyond Decimal's 28 digits, rounded as Decimal rounds
        ("Code 572973169861443680387900934324", {"572973169861443680387900934300"}),
    ],
)
def test_telling_numbers(text: str, numbers: set[str]) -> None:
    assert signature(text, None).numbers == numbers


@pytest.mark.parametrize(
    ("summary", "features", "numbers"),
    [
        # Features read the lead of the lead, numbers the lead: they differ
        # when escaped markup or entities remain after the first unescaping.
        (
            "<p>Vote &lt;span&gt;Bichkek&lt;/span&gt; 125 000</p>",
            {"vote", "@vote", "biske", "@bishkek", "125", "000"},
            {"125000"},
        ),
        ("<p>Kurs &amp;amp;amp; 16,5</p>", {"kurs", "amp", "16.5"}, {"16.5"}),
        ("Plain text, 980 sums", {"plain", "tekst", "sums", "980"}, {"980"}),
    ],
)
def test_signature_reads_the_lead(summary: str, features: set[str], numbers: set[str]) -> None:
    sig = signature("", summary)
    assert set(sig.features) == features
    assert sig.numbers == numbers


def doc(n: int, title: str, summary: str = "", hours: float = 0, source: str = "") -> Doc:
    places = [p for p in ("Ashgabat", "Turkmenabat", "Talas", "Batken") if p in title]
    sig = signature(title, summary, places)
    return Doc(n, n, source or f"s{n}", T0 + timedelta(hours=hours), sig)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (doc(1, "Курс доллара на 12 мая"), doc(2, "Курс доллара на 13 мая")),
        (doc(1, "New hospital in Ashgabat"), doc(2, "New hospital in Turkmenabat")),
        (
            doc(1, "Sum falls", "1,2 % down, 12 950 sums a dollar"),
            doc(2, "Sum rises", "0,8 % up, 12 680 sums a dollar"),
        ),
        (doc(1, "Kazakhstan votes", hours=0), doc(2, "Kazakhstan votes", hours=80)),
    ],
)
def test_conflicting_pairs(a: Doc, b: Doc) -> None:
    assert cluster.conflicting(a, b)


def test_titles_cut_from_one_template_contrast() -> None:
    a = signature("Ouzbékistan : Mirziyoïev en visite d'État en Chine", None)
    b = signature("Ouzbékistan : Mirziyoïev en visite d'État au Japon", None)
    assert cluster.contrasting(a, b, similarity=0.4)
    # However alike the rest: the swapped words fill one slot (a country).
    assert cluster.contrasting(a, b, similarity=0.9)
    # A near-copy whose swapped words fill no slot is a light edit.
    c = signature("Mirziyoïev entame sa visite d'État en Chine", None)
    d = signature("Mirziyoïev commence sa visite d'État en Chine", None)
    assert cluster.contrasting(c, d, similarity=0.4)
    assert not cluster.contrasting(c, d, similarity=0.9)


@pytest.mark.parametrize(
    ("a", "b", "swapped"),
    [
        (
            "Kazakhstan appoints new energy minister",
            "Kazakhstan appoints new health minister",
            True,
        ),
        ("Назначен новый министр энергетики", "Назначен новый министр здравоохранения", True),
        ("Uzbekistan raises electricity tariffs", "Uzbekistan raises gas tariffs", True),
        (
            "Mirziyoyev receives the French minister",
            "Mirziyoyev receives the German minister",
            True,
        ),
        ("Tenge falls against the dollar", "Tenge falls against the ruble", True),
        # Opposite moves (a reader's review found these merged, one story hidden).
        (
            "Kazakhstan: oil output falls in October",
            "Kazakhstan: oil output rises in October",
            True,
        ),
        (
            "Kazakhstan bans wheat imports",
            "Kazakhstan bans wheat exports",
            True,
        ),
        (
            "Kyrgyzstan detains journalists of Kloop",
            "Kyrgyzstan releases journalists of Kloop",
            True,
        ),
        ("Kyrgyzstan: Japarov signs budget law", "Kyrgyzstan: Japarov vetoes budget law", True),
        ("Uzbekistan lifts ban on wheat exports", "Uzbekistan extends ban on wheat exports", True),
        ("Астана: мост закрыли на ремонт", "Астана: мост открыли после ремонта", True),
        # Who: a portfolio, a club, a man or a woman, a parliament or a president.
        (
            "Kazakhstan: Tokayev sacks prime minister",
            "Kazakhstan: Tokayev sacks energy minister",
            True,
        ),
        ("Kazakhstan's Kairat beats Astana 2-1", "Kazakhstan's Tobol beats Astana 2-1", True),
        ("Tajikistan: woman sentenced to 7 years", "Tajikistan: man sentenced to 7 years", True),
        ("Japarov signs new media law", "Japarov signs law on NGOs", True),
        (
            "Turkmenistan holds parliamentary elections",
            "Turkmenistan holds presidential elections",
            True,
        ),
        (
            "Bishkek: power outage in several districts",
            "Bishkek: water outage in several districts",
            True,
        ),
        ("Rahmon meets Russian ambassador", "Rahmon meets Chinese ambassador", True),
        # The same people held, however worded: pardoned detainees are convicts.
        (
            "Turkménistan : le président gracie 500 détenus",
            "Бердымухамедов помиловал 500 осуждённых",
            False,
        ),
        ("Oil prices rise as output falls", "Oil output falls", False),
        # Both sides of one event: a rate read both ways, a trade from either country.
        ("Tenge falls to 520 per dollar", "Доллар вырос до 520 тенге", False),
        (
            "Kazakhstan resumes wheat exports to Russia",
            "Russia resumes imports of Kazakh wheat",
            False,
        ),
        # Words that only look like a filler: a pronoun, human rights, a defender.
        (
            "Tokayev: 'Nobody will force us to choose'",
            "Tokayev: 'Kazakhstan will not choose'",
            False,
        ),
        ("Tajik woman lawyer gets 7 years", "Une avocate des droits de l'homme condamnée", False),
        ("Kazakhstan: media rights defender jailed", "Un défenseur de la presse condamné", False),
        # One title names more of a slot, the other nothing the first lacks.
        ("Uzbekistan raises gas tariffs", "Uzbekistan raises gas and electricity tariffs", False),
        # Concepts of different slots (a country, a city) do not swap.
        ("Kazakhstan and China sign a gas deal", "Astana and Beijing sign a gas deal", False),
        ("Tokayev meets Putin in Moscow", "Putin and Tokayev meet in the Kremlin", False),
        # Words for one thing in two languages: "power plant" and "centrale".
        (
            "Tokayev calls referendum on building a nuclear power plant",
            "Tokaïev annonce un référendum sur la construction d'une centrale nucléaire",
            False,
        ),
        (
            "Kazakhstan raises power tariffs",
            "Le Kazakhstan relève les tarifs de l'électricité",
            False,
        ),
        # "centrale" is not a power plant in "Asie centrale".
        (
            "China-Central Asia gas pipeline Line D: construction begins",
            "Chine-Asie centrale : début de la construction du gazoduc D",
            False,
        ),
    ],
)
def test_titles_that_fill_one_slot_differently_are_swapped(a: str, b: str, swapped: bool) -> None:
    assert cluster.swapped(signature(a, None), signature(b, None)) is swapped


def test_index_finds_a_reworded_report_from_another_source_only() -> None:
    index = StoryIndex()
    original = doc(
        1,
        "Kyrgyzstan's Kumtor gold output rises 15%",
        "Kumtor Gold Company produced 17.8 tonnes of gold in nine months, up 15%.",
        source="a",
    )
    index.add(original)
    for n in range(2, 40):  # other stories, so that weights mean something
        index.add(doc(n, f"Unrelated story number {n} about cotton", "Farmers harvest.", 1))
    same = doc(
        100,
        "State-run Kumtor reports jump in gold production",
        "Kyrgyzstan's largest gold mine yielded 17.8 tonnes, a 15 percent increase.",
        hours=5,
        source="b",
    )
    mine = doc(101, same.signature and "Kumtor again", "17.8 tonnes of gold, 15%", source="a")

    hit = index.find(same)

    assert hit is not None
    assert (hit.item_id, hit.story_id) == (1, 1)
    assert hit.similarity >= cluster.THRESHOLD_WITH_NUMBER
    assert index.find(mine) is None  # a source does not repeat itself in other words


def test_of_equally_similar_items_the_earliest_is_found() -> None:
    """Placement depends on the items alone, not on the order they were
    indexed in or on the process's string hashing."""
    index = StoryIndex()
    title, summary = "Kambarata-1 dam: tender opens", "Bids until 30 June for the 1,860 MW plant."
    index.add(doc(7, title, summary, source="a"))
    index.add(doc(3, title, summary, source="b"))
    for n in range(10, 40):
        index.add(doc(n, f"Unrelated story number {n} about cotton", "Farmers harvest.", 1))

    hit = index.find(doc(100, title, summary, source="c"))

    assert hit is not None and hit.item_id == 3


@pytest.mark.parametrize("copies", [cluster.MAX_CANDIDATES - 3, cluster.MAX_CANDIDATES + 15])
def test_of_many_equally_similar_items_the_earliest_is_found(copies: int) -> None:
    """More candidates than are compared, all of one weight: the earliest
    ones are compared, whatever the order they were indexed in."""
    index = StoryIndex()
    title, summary = "Rogun dam: third turbine starts", "The 3,780 MW plant on the Vakhsh."
    for n in sorted(range(20, 20 + copies), key=lambda n: (n * 7) % copies):
        index.add(doc(n, title, summary, source=f"s{n}"))
    for n in range(100, 130):
        index.add(doc(n, f"Unrelated story number {n} about cotton", "Farmers harvest.", 1))

    hit = index.find(doc(500, title, summary, source="new"))

    assert hit is not None and hit.item_id == 20


def test_signature_round_trips() -> None:
    sig = signature("Tokayev visits Beijing", "Talks on 30 documents, 2,5 bn dollars", ["Beijing"])
    assert cluster.Signature.loads(sig.dumps()) == sig


def test_labelled_pairs_meet_the_accuracy_targets() -> None:
    """Issue 4: merge precision >= 0.98 and recall >= 0.90 on the labelled pairs."""
    outcomes = decide_all(load())
    precision, recall = precision_recall(outcomes)
    assert len(outcomes) >= 150
    assert precision >= 0.98
    assert recall >= 0.90


def test_audit_pairs_no_worse_than_when_added() -> None:
    """The pairs written to trap the clustering (``audit-pairs.json``): 50
    false merges when they were written, 34 after the slots and the number
    rule they led to, 31 since names swapped in near-copies tell, 29 since
    numbered words (U-17, U-20) do; never more. 24 stories missed then, 22
    since titles in two scripts are not compared as one template."""
    outcomes = decide_all(load(AUDIT))
    false_merges = sum(o.merged and not o.same for o in outcomes)
    missed = sum(o.same and not o.merged for o in outcomes)
    assert len(outcomes) == 192
    assert false_merges <= 29
    assert missed <= 22


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Tokayev meets Putin in Moscow", "Tokayev holds phone call with Putin"),
        (
            "Kazakh parliament passes AI bill in first reading",
            "Kazakh parliament passes AI bill in third reading",
        ),
        ("Kazakhstan suspends flights to Iran", "Kazakhstan resumes flights to Iran"),
        ("Kazakhstan's oil output rises", "Kazakhstan's gas output rises"),
        (
            "Правительство выделило 50 млрд тенге на ремонт дорог",
            "Правительство выделило 50 млрд тенге на ремонт больниц",
        ),
        ("Tenge weakens against dollar on Monday", "Tenge weakens against dollar on Tuesday"),
        (
            "В Узбекистане отправлен в отставку министр здравоохранения",
            "В Узбекистане отправлен в отставку министр просвещения",
        ),
    ],
)
def test_new_slots_tell_apart_titles_of_one_template(a: str, b: str) -> None:
    assert cluster.swapped(signature(a, None), signature(b, None))


@pytest.mark.parametrize(
    ("title", "a", "b", "conflict"),
    [
        # one figure each, none shared: two days' rates, two tolls
        (
            "Курс доллара",
            "Курс доллара составил 527,9 тенге",
            "Курс доллара составил 528,5 тенге",
            True,
        ),
        ("Crash", "Three killed, 12 injured on the Almaty highway", "30 people were injured", True),
        # unless one of them is approximate
        ("Earthquake", "About 300 houses damaged, officials say", "312 houses were damaged", False),
        ("Séisme", "Près de 1 000 maisons endommagées", "987 maisons endommagées", False),
        ("Землетрясение", "Повреждены около 300 домов", "Повреждены 312 домов", False),
        # or they share one
        ("Crash", "Three killed, 12 injured", "12 people were injured, 2 seriously", False),
    ],
)
def test_one_figure_each_and_none_shared_conflicts_unless_approximate(
    title: str, a: str, b: str, conflict: bool
) -> None:
    assert cluster.conflicting(doc(1, title, a), doc(2, title, b)) is conflict


@pytest.mark.parametrize(
    ("a", "b", "contrast"),
    [
        # a near-copy with one name swapped for another: another event
        ("Kazakh regulator revokes Tengri Bank licence",
         "Kazakh regulator revokes Capital Bank licence", True),
        ("Uzbekistan's Mullojonov wins world boxing gold",
         "Uzbekistan's Jalolov wins world boxing gold", True),
        # the name first in the title
        ("Tengri Bank loses its licence", "Capital Bank loses its licence", True),
        # a Title Case headline: its capitals tell no names
        ("Floods Hit Almaty Region", "Floods Hit Almaty Province", False),
        # two spellings of one name, a first name added: a light edit
        ("Rahmon opens Roghun unit", "Emomali Rahmon opens Rogun unit", False),
        ("Uzbekistan's Jalolov wins world boxing gold",
         "Uzbekistan's Djalolov wins world boxing gold", False),
        # a word that is no name swapped: a light edit
        ("Kazakh regulator revokes Tengri Bank licence",
         "Kazakh regulator withdraws Tengri Bank licence", False),
    ],
)  # fmt: skip
def test_near_copies_with_a_name_swapped_contrast(a: str, b: str, contrast: bool) -> None:
    assert cluster.contrasting(signature(a, None), signature(b, None), similarity=0.9) is contrast


@pytest.mark.parametrize(
    ("a", "b", "conflict"),
    [
        ("Uzbekistan U-17 beat Tajikistan to reach CAFA final",
         "Uzbekistan U-20 beat Tajikistan to reach CAFA final", True),
        ("Work resumes at Kambarata-1 site", "Work resumes at Kambarata-2 site", True),
        ("Сборная Узбекистана U-17 вышла в финал",
         "Сборная Узбекистана U-17 вышла в финал CAFA", False),
        # different words numbered: nothing to compare
        ("Uzbekistan U-17 beat Tajikistan",
         "Tajikistan loses to Uzbekistan in Covid-19 era", False),
    ],
)  # fmt: skip
def test_one_word_numbered_differently_conflicts(a: str, b: str, conflict: bool) -> None:
    assert cluster.conflicting(doc(1, a), doc(2, b)) is conflict


def test_titles_in_two_scripts_are_not_one_template() -> None:
    """A translation swaps every word: only its slots are compared."""
    latin = signature("Khujand hosts international Navruz festival", None)
    cyrillic = signature("В Худжанде проходит международный фестиваль «Навруз»", None)
    assert cyrillic.cyrillic and not latin.cyrillic
    assert not cluster.contrasting(latin, cyrillic, similarity=0.3)
    assert cluster.contrasting(latin, replace(cyrillic, cyrillic=False), similarity=0.3)
    assert cluster.Signature.loads(cyrillic.dumps()) == cyrillic
    named = signature("Kazakh regulator revokes Tengri Bank licence", None)
    assert named.names == {"tengr", "bank"}
    assert cluster.Signature.loads(named.dumps()) == named


@pytest.mark.parametrize(
    ("text", "vague"),
    [
        ("About 300 houses", True), ("more than 20 killed", True), ("at least 5 dead", True),
        ("près de 1 000 maisons", True), ("au moins 3 morts", True), ("plus de 50 morts", True),
        ("около 300 домов", True), ("не менее 40 человек", True),
        ("312 houses", False), ("вырос до 528", False), ("de 5 morts", False),
        ("plus de détails : 5 morts", False), ("at 5 pm", False), ("environ", False),
    ],
)  # fmt: skip
def test_approximate_figures(text: str, vague: bool) -> None:
    assert cluster._vague(cluster._words(cluster._fold(text))) is vague


def test_an_approximate_figure_survives_storing() -> None:
    vague = signature("Earthquake", "About 300 houses damaged", [])
    assert vague.vague and not signature("Earthquake", "312 houses damaged", []).vague
    assert cluster.Signature.loads(vague.dumps()) == vague
    # Stored before the field existed: not approximate.
    old = '[["earthquak"],["earthquak"],["300"],[],[]]'
    assert cluster.Signature.loads(old).vague is False


def test_a_signature_stored_by_an_older_version_reads_its_title() -> None:
    """A signature stored before the script and the names were: read from
    the item's title, or an old Cyrillic item would not be compared as a
    template with a new one for three days; one of a version that stored
    the item's countries where the approximate flag is now is not vague."""
    title = "Kazakh regulator revokes Tengri Bank licence"
    new = signature(title, "A licence revoked")
    fields = json.loads(new.dumps())
    for old in (fields[:5], [*fields[:5], ["kz"]]):
        loaded = cluster.Signature.loads(json.dumps(old), title)
        assert loaded == replace(new, vague=False)
    cyrillic = signature("В Алматы открылся новый детский технопарк", None)
    old_cyrillic = cluster.Signature.loads(
        json.dumps(json.loads(cyrillic.dumps())[:5]), "В Алматы открылся новый детский технопарк"
    )
    assert old_cyrillic.cyrillic
    hospice = signature("В Алматы открылся новый детский хоспис", None)
    assert cluster.contrasting(old_cyrillic, hospice, similarity=0.5)


def test_ascii_words_agree_with_the_unicode_regex() -> None:
    """The ASCII fast path finds the words and numbers the Unicode regex finds."""
    chars = [chr(n) for n in range(128)]
    for text in (f"{a}1{b}2{a}b{b}" for a in chars for b in chars):
        assert cluster._words(text) == cluster._WORD.findall(text), repr(text)


@pytest.mark.parametrize(
    "text",
    [
        "Ouzbékistan : l’été à Douchanbé, ½ ª µ",  # Latin-1, with folds outside it
        "Ouzbékistan : l'été à Douchanbé",  # Latin-1 throughout
        "Ёлка в Алматы — «Йошкар-Ола» № 5",  # Windows-1251, and № (two letters)
        "Ёлка в Алматы — «Йошкар-Ола»",
        "Қазақстан, Ўзбекистон",  # outside both code pages
        "Се\u0301ул и\u0306",  # stress accent and breve typed apart
    ],
)
def test_fold_through_a_code_page_is_the_fold(text: str) -> None:
    assert cluster._fold(text) == cluster._fold_text(text)


def test_weights_follow_an_index_that_grows_from_empty() -> None:
    """A first refresh fills an empty index: a word in each of its first items
    must not keep the low weight it had then once it turns out to be rare."""
    index = StoryIndex()

    def add(n: int, title: str) -> None:
        index.add(Doc(n, n, f"https://s{n % 7}.example/rss", T0, signature(title, None)))

    for n in range(10):
        add(n, f"Caravanserai restored in town {n}")
    (feature,) = [f for f in signature("caravanserai", None).features if not f.startswith("@")]
    early = index.weight(feature)
    for n in range(10, 2000):
        add(n, f"Parliament votes budget amendment number {n}")

    assert index.weight(feature) > 2 * early


@pytest.mark.parametrize(
    ("title_a", "title_b", "same"),
    [
        # A shared telling number and a few shared words in the texts...
        ("Kyrgyzstan opens 212 new schools in Osh region",
         "212 new schools open across Kyrgyzstan", True),
        # ...are not enough when the titles have no word, name or concept in common.
        ("Kyrgyzstan opens 212 new schools in Osh region",
         "Afghanistan: 212 killed in bus crash", False),
    ],
)  # fmt: skip
def test_a_shared_number_needs_titles_in_common(title_a: str, title_b: str, same: bool) -> None:
    lead = "Officials gave the figure of 212 on Monday, the ministry said."

    def doc(n: int, title: str) -> Doc:
        return Doc(n, n, f"https://s{n}.example/rss", T0, signature(title, f"{title}. {lead}"))

    # Below the plain threshold: only the shared number could make them one story.
    decision = cluster.same_story(doc(1, title_a), doc(2, title_b), 0.2, lambda: 0.2)

    assert decision is same


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("Kazakhstan : Tokaïev reçu à l'Élysée",
          "Le président kazakh a été reçu par Emmanuel Macron à l'Élysée."),
         ("Ouzbékistan : Mirziyoïev rencontre Emmanuel Macron à l'Élysée",
          "Le président ouzbek a été reçu par Emmanuel Macron à l'Élysée.")),
        (("В Нарынской области произошло землетрясение магнитудой 4,6",
          "Землетрясение магнитудой 4,6 произошло в Нарынской области."),
         ("В Таджикистане произошло землетрясение магнитудой 4,6",
          "Землетрясение магнитудой 4,6 произошло в Таджикистане.")),
    ],
)  # fmt: skip
def test_items_about_different_countries_are_different_stories(
    a: tuple[str, str], b: tuple[str, str]
) -> None:
    first = pipeline_doc(0, {"title": a[0], "summary": a[1], "hours": 0})
    second = pipeline_doc(1, {"title": b[0], "summary": b[1], "hours": 20})
    assert first.countries and second.countries
    assert cluster.conflicting(first, second)
    same_country = pipeline_doc(2, {"title": a[0], "summary": b[1], "hours": 10})
    assert not cluster.conflicting(first, same_country)


def test_items_about_the_same_countries_share_one_tuple() -> None:
    assert cluster.countries(["kz", "uz"]) is cluster.countries(("kz", "uz"))


def placed(n: int, title: str) -> Doc:
    """A title's doc, with its places found as the pipeline finds them."""
    return pipeline_doc(n, {"title": title, "hours": 0})


@pytest.mark.parametrize(
    ("a", "b", "same_place"),
    [
        # A Central Asian capital is its country, however spelt or declined.
        ("Ashgabat hosts a gas forum", "В Ашхабаде прошёл газовый форум", True),
        ("Nur-Sultan hosts a summit", "Astana hosts a summit", True),
        # An adjective of a capital still agrees with the capital.
        (
            "Ташкентский аэропорт перешёл на зимнее расписание",
            "Аэропорт Ташкента перешёл на зимнее расписание",
            True,
        ),
        # Towns agree across spellings and case endings...
        ("Floods in Turkmenabat", "Наводнение в Туркменабате", True),
        ("Floods hit Samarkand region", "Inondations dans la région de Samarcande", True),
        ("Turkestan hosts a forum", "Turkistan hosts a forum", True),
        # ...not across towns that start otherwise.
        ("New hospital in Ashgabat", "New hospital in Turkmenabat", False),
        ("Floods in Talas", "Floods in Batken", False),
        # Foreign capitals are not one place.
        ("Tokayev visits Paris", "Tokayev visits Berlin", False),
    ],
)
def test_places_agree_across_spellings_and_cases_only(a: str, b: str, same_place: bool) -> None:
    x, y = placed(1, a), placed(2, b)
    assert x.signature.places and y.signature.places
    assert cluster.conflicting(x, y) is not same_place


@pytest.mark.parametrize(
    ("no_own_id", "hours", "title", "found"),
    [
        # The same article under a new link: its headline fixed.
        (True, 1, "Floods in Batken region of Kyrgyzstan", True),
        # An item with a guid of its own is another item of its source.
        (False, 1, "Floods in Batken region of Kyrgyzstan", False),
        # Half a day later, a source's near-copy is a new report of its own.
        (True, 13, "Floods in Batken region of Kyrgyzstan", False),
        # A follow-up of the same source: the same story, but not a copy.
        (True, 1, "Floods in Batken region: a second wave is expected", False),
    ],
)
def test_an_item_without_an_id_of_its_own_repeats_its_own_source_only_as_a_near_copy(
    no_own_id: bool, hours: float, title: str, found: bool
) -> None:
    text = "Heavy rains flooded twelve villages of the Batken region overnight; 340 evacuated."
    index = StoryIndex()
    index.add(doc(1, "Flods in Batken region of Kyrgyzstan", text, source="kabar"))
    for n in range(2, 40):  # other stories, so that weights mean something
        index.add(doc(n, f"Unrelated story number {n} about cotton", "Farmers harvest.", 1))
    if "second wave" in title:
        text = "Forecasters expect more rain in the Batken region tomorrow; villages on alert."
    moved = replace(doc(100, title, text, hours=hours, source="kabar"), no_own_id=no_own_id)

    hit = index.find(moved)

    assert (hit is not None and hit.item_id == 1) is found

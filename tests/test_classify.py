"""aggregator.classify: headlines in fr/en/ru, explanations, gazetteer sanity, labelled data."""

from __future__ import annotations

import html
import json
import re
import sys
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest
import yaml

from aggregator.classify import _TOKEN, _TOKEN_ASCII, STATE_WORDS, Classifier, lead
from aggregator.classify.text import fold, fold_term
from aggregator.config import load_yaml
from aggregator.dedupe import fingerprint
from aggregator.types import Classification, ClassifyConfig, Entry, Match

DATA = Path(__file__).parent / "data" / "classification"
CLASSIFIER = Classifier()


@pytest.mark.parametrize(
    ("text", "countries", "regional"),
    [
        # Russian case forms
        ("Выборы в Казахстане", ("kz",), False),
        ("Делегация Кыргызстана прибыла в Москву", ("kg",), False),
        ("Россия поможет Узбекистану", ("uz",), False),
        ("Граница с Таджикистаном открыта", ("tj",), False),
        ("ТУРКМЕНИСТАН открыл аэропорт", ("tm",), False),
        # French spellings, with and without accents
        ("Le Kirghizstan vote", ("kg",), False),
        ("Le Kirghizistan vote", ("kg",), False),
        ("Ouzbekistan : élections", ("uz",), False),
        ("Ouzbékistan : élections", ("uz",), False),
        ("Tadjikistan : la crue", ("tj",), False),
        ("Turkménistan : le cratère", ("tm",), False),
        # English, possessive
        ("Kazakhstan's economy grows", ("kz",), False),
        ("Kyrgyzstan’s parliament meets", ("kg",), False),
        # capitals
        ("Manifestation à Bichkek", ("kg",), False),
        ("Sommet à Douchanbé", ("tj",), False),
        ("Встреча в Ташкенте", ("uz",), False),
        ("Floods in Ashgabat", ("tm",), False),
        # Uzbek apostrophes
        ("O'zbekiston yangiliklari", ("uz",), False),
        ("Oʻzbekiston yangiliklari", ("uz",), False),
        ("O‘zbekiston yangiliklari", ("uz",), False),
        ("O’zbekiston yangiliklari", ("uz",), False),
        # region terms
        ("Leaders meet on Central Asia", (), True),
        ("Sommet Asie centrale", (), True),
        ("Саммит стран Центральной Азии", (), True),
        ("La mer d’Aral recule", (), True),
        ("La mer d'Aral recule", (), True),
        ("C5+1 summit in New York", (), True),
        ("Summit in Tashkent on Central Asia", ("uz",), True),
        # three countries or more are regional; equal scores go to the first named
        ("Kazakhstan, Uzbekistan and Tajikistan sign a water pact", ("kz", "uz", "tj"), True),
        ("Кыргызстан и Казахстан договорились о поставках", ("kg", "kz"), False),
        # two countries, strongest first
        ("Кыргызстан и казахстанские инвесторы", ("kg", "kz"), False),
        ("Tajik workers return from Kazakhstan", ("kz", "tj"), False),
        # negatives
        ("Georgia elections: ruling party wins", (), False),
        ("Géorgie : manifestations à Tbilissi", (), False),
        ("Mongolia floods leave thousands homeless", (), False),
        ("Afghanistan talks resume in Doha", (), False),
        ("Бюджет Татарстана принят", (), False),
        ("Tatarstan budget approved", (), False),
        ("Kazan forum opens", (), False),
        ("Форум в Казани открылся", (), False),
        ("Ошибка пилота стала причиной крушения самолёта в Непале", (), False),
        ("Mary Poppins revient au théâtre du Châtelet", (), False),
        ("Iraqi Turkmen parties protest Kirkuk vote", (), False),
        ("East Turkestan activists rally in Istanbul", (), False),
        ("Central Asian Shepherd wins dog show", (), False),
        # minorities abroad, named with their city or province only
        ("Turkmen Front wins seats in Kirkuk council", (), False),
        ("Туркмены Алеппо просят помощи", (), False),
        ("Les Turkmènes d'Alep fuient les combats", (), False),
        ("Uzbek commander killed in Faryab clash", (), False),
        ("Panjshir resistance: Tajik commanders regroup", (), False),
        ("Massoud, le chef tadjik du Panchir", (), False),
        # the Fergana news agency, an IMF department, a river shared with Uzbekistan
        ("Главреда «Фергана» включили в реестр иноагентов", (), False),
        ("IMF's Middle East and Central Asia Department upgrades Egypt outlook", (), False),
        ("US envoy for South and Central Asia visits Islamabad", (), False),
        ("Uzbekistan builds new hydropower plants on the Naryn river", ("uz",), False),
        ("Узбекистан строит ГЭС на реке Нарын", ("uz",), False),
        ("В Фергане открыли новый завод", ("uz",), False),
        ("Naryn region hit by snowstorm", ("kg",), False),
        # words of the state are not halved by a foreign title; a people's are
        ("Россия запретила ввоз казахстанской пшеницы", ("kz",), False),
        ("Russia bans imports of Kazakhstani wheat", ("kz",), False),
        ("Узбекистанские мигранты в России получат новые патенты", ("uz",), False),
        ("Казахи Монголии отметили Наурыз", (), False),
        # datelines, history, namesakes
        ("ALMATY, Kazakhstan (AP) — Kyrgyzstan's president signs a law", ("kg",), False),
        ("Астана. Казинформ — Ураган обрушился на побережье Флориды", (), False),
        ("ASTANA. KAZINFORM – Tokayev met investors in Astana", ("kz",), False),
        ("Astana guarantors meet on Syria's Idlib", (), False),
        ("Central Asian tortoise smuggling ring busted at Heathrow", (), False),
        ("Среднеазиатская черепаха: как ухаживать за питомцем", (), False),
        ("В кафе «Бишкек» в Москве произошла драка", (), False),
        ("Governor-General of Turkestan Kaufman's letters published", (), False),
        ("Frunze Naval Academy graduates sworn in", (), False),
        ("Академик Роберт Нигматулин выступил на форуме", (), False),
        ("Ерлан Нигматулин встретился с депутатами", ("kz",), False),
        ("Станцию метро «Алма-Атинская» закроют на ремонт", (), False),
        ("Samarcande d'Amin Maalouf réédité en poche", (), False),
        ("Le roman « Samarcande » d'Amin Maalouf adapté au théâtre", (), False),
        ("Voyage à « Samarcande » : la cité bleue attire les touristes", ("uz",), False),
        ("Visite à Samarcande du président français", ("uz",), False),
        ("La marque Osh Kosh rappelle des pyjamas", (), False),
        ("The Tashkent Files wins national film award", (), False),
        ("Tashkent files protest with Kabul over border shooting", ("uz",), False),
        ("TDH lance une campagne pour les enfants du Népal", (), False),
        # named facilities, which a foreign title does not halve
        ("Российская авиабаза в Канте получит новые вертолёты", ("kg",), False),
        ("Turkestan Airport opens international route to Istanbul", ("kz",), False),
        ("Navoi Mining and Metallurgical Company plans London IPO", ("uz",), False),
    ],
)
def test_classify_text(text: str, countries: tuple[str, ...], regional: bool) -> None:
    result = CLASSIFIER.classify_text(text)
    assert (result.countries, result.regional) == (countries, regional)
    assert result.relevant == bool(countries or regional)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Выборы в Казахстане", Match("kz", "Казахстане", "Казахстане", "title", "country", 6.0)),
        ("ВЫБОРЫ В КАЗАХСТАНЕ", Match("kz", "Казахстане", "КАЗАХСТАНЕ", "title", "country", 6.0)),
        ("Kazakhstan's economy", Match("kz", "Kazakhstan", "Kazakhstan", "title", "country", 6.0)),
        ("Vote en OUZBEKISTAN", Match("uz", "Ouzbékistan", "OUZBEKISTAN", "title", "country", 6.0)),
        ("Oʻzbekiston bugun", Match("uz", "O'zbekiston", "Oʻzbekiston", "title", "country", 6.0)),
        ("Sommet à Douchanbé", Match("tj", "Douchanbé", "Douchanbé", "title", "capital", 5.0)),
    ],
)
def test_match_records_the_text_as_written(text: str, match: Match) -> None:
    assert CLASSIFIER.classify_text(text).matches == (match,)


def entry(title: str, summary: str | None = None, categories: tuple[str, ...] = ()) -> Entry:
    return Entry(
        source_url="https://example.org/feed",
        guid="g-1",
        link=None,
        title=title,
        summary=summary,
        categories=categories,
    )


def test_classify_entry_records_fields() -> None:
    result = CLASSIFIER.classify(
        entry(
            "Sommet à Astana",
            "<p>Le président <b>ouzbek</b> est arrivé au Kazakhstan.</p>",
            ("Asie centrale",),
        )
    )
    assert result == Classification(
        countries=("kz",),
        regional=True,
        scores={"kz": 8.0, "uz": 2.0, "region": 3.0},
        matches=(
            Match("kz", "Astana", "Astana", "title", "capital", 5.0),
            # beside "président", a word of the state: the state's, not the people's
            Match("uz", "ouzbek", "ouzbek", "summary", "state", 2.0),
            Match("kz", "Kazakhstan", "Kazakhstan", "summary", "country", 3.0),
            Match("region", "Asie centrale", "Asie centrale", "categories", "region", 3.0),
        ),
    )


def test_title_scores_more_than_summary() -> None:
    in_title = CLASSIFIER.classify(entry("Kazakhstan votes", "Polls opened at eight."))
    in_summary = CLASSIFIER.classify(entry("Polls opened at eight", "Kazakhstan votes."))
    assert in_title.scores["kz"] > in_summary.scores["kz"]
    assert [m.field for m in in_title.matches] == ["title"]
    assert [m.field for m in in_summary.matches] == ["summary"]


def test_summary_entities_are_decoded() -> None:
    result = CLASSIFIER.classify(entry("News", "<p>Vote en Ouzb&eacute;kistan</p>"))
    assert result.countries == ("uz",)


def gazetteer_forms() -> dict[str, set[str]]:
    """Every folded form of the bundled gazetteer, with the labels that list it."""
    labels: defaultdict[str, set[str]] = defaultdict(set)
    folder = resources.files("aggregator.classify").joinpath("gazetteer")
    for path in folder.iterdir():
        if not path.name.endswith(".yaml") or path.name == STATE_WORDS:
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for by_language in data["terms"].values():
            for forms in by_language.values():
                for form in forms:
                    labels[fold_term(str(form))].add(data["code"])
    return labels


def test_gazetteer_forms_have_one_label() -> None:
    forms = gazetteer_forms()
    assert len(forms) > 500
    assert {f: sorted(labels) for f, labels in forms.items() if len(labels) > 1} == {}


CYCLISTS = "the Astana cycling team, by its short name"
#: Items of the audit set (adversarial.json) still given a wrong country, and
#: why: no word list can tell them apart (a test fails once one is mended).
KNOWN_WRONG = {
    "Uyghur and Kazakh workers moved to factories across China under labour transfer scheme":
        "Kazakhs of Xinjiang, but only China is named: not a place where Kazakhs are a minority",
    "Bukhara named among Asia's 50 Best Restaurants again": "a restaurant in Delhi",
    "Fitzrovia's Samarkand wins Michelin Bib Gourmand": "a restaurant in London",
    "Astana rider wins Tour de France stage in the Pyrenees": CYCLISTS,
    "Astana's Lopez abandons Vuelta after crash": CYCLISTS,
    "Cyclisme : Astana recrute un sprinteur italien": CYCLISTS,
    "Ronaldo becomes highest-paid athlete with $260m salary":
        "from a source in Kazakhstan, names no place, has a word of home news (salary)",
}  # fmt: skip


def labelled_items() -> list[tuple[str, str | None, list[str], str | None]]:
    real = json.loads((DATA / "real-headlines.json").read_text(encoding="utf-8"))
    synthetic = json.loads((DATA / "synthetic-expected-labels.json").read_text(encoding="utf-8"))
    evaluation = json.loads((DATA / "headlines-eval.json").read_text(encoding="utf-8"))
    audits = [
        json.loads((DATA / name).read_text(encoding="utf-8"))
        for name in ("adversarial.json", "adversarial-fr-ru.json")
    ]
    items = [(i["title"], None, i["expected"], None) for i in real["items"]]
    for feed in synthetic["feeds"].values():
        items += [(i["title"], None, i["expected"], None) for i in feed["items"]]
    items += [(i["title"], i.get("summary"), i["expected"], None) for i in evaluation["items"]]
    items += [
        (i["title"], i.get("summary"), i["expected"], i.get("source_country"))
        for audit in audits
        for i in audit["items"]
    ]
    return items


@pytest.mark.parametrize(
    ("title", "summary", "expected", "hint"),
    [
        pytest.param(*item, marks=pytest.mark.xfail(reason=KNOWN_WRONG[item[0]], strict=True))
        if item[0] in KNOWN_WRONG
        else item
        for item in labelled_items()
    ],
)
def test_no_false_country(
    title: str, summary: str | None, expected: list[str], hint: str | None
) -> None:
    """Every country found is a labelled one: a wrong country is the error readers see."""
    countries = CLASSIFIER.classify(entry(title, summary), hint).countries
    assert set(countries) <= {label.lower() for label in expected}


def test_recall_on_the_labelled_sets() -> None:
    """Most labelled countries are found (misses: items naming no place, ambiguity)."""
    found = wanted = 0
    for title, summary, expected, hint in labelled_items():
        want = {x.lower() for x in expected} - {"drop", "region"}
        found += len(want & set(CLASSIFIER.classify(entry(title, summary), hint).countries))
        wanted += len(want)
    assert found / wanted >= 0.88


@pytest.mark.parametrize(
    ("text", "countries"),
    [
        # cities, provinces, leaders, institutions, companies, currencies
        ("В Оше задержали подозреваемых в мошенничестве", ("kg",)),
        ("Садыр Жапаров подписал закон о СМИ", ("kg",)),
        ("Tokaïev limoge le gouvernement", ("kz",)),
        ("Kazatomprom cuts 2027 output guidance", ("kz",)),
        ("Курс тенге укрепился", ("kz",)),
        ("À Khodjent, une nouvelle usine textile", ("tj",)),
        ("Mirziyoyev receives a delegation from Japan", ("uz",)),
        ("Туркменистан откроет новый аэропорт в Мары", ("tm",)),
        ("Подрядчиков в Алматы массово лишают лицензий", ("kz",)),
        ("На узбекско-казахстанской границе внедрят цифровой контроль", ("uz", "kz")),
        # short and common words match only as names
        ("OSH rules tightened for factory workers", ()),
        ("Ошибка пилота стала причиной крушения", ()),
        ("Mary Trump says her uncle feels the walls closing in", ()),
        ("Kant and the limits of reason", ()),
        # a people or a namesake abroad, when the title is about a foreign place
        ("Kazakh eagle hunters draw tourists to western Mongolia", ()),
        ("Turquie : un séisme secoue Kayseri, le district de Talas touché", ()),
        ("Taliban appoint Tajik commander as Badakhshan governor", ()),
        ("Астанинский формат по Сирии: встреча прошла в Дохе", ()),
        # a foreign place does not hide a Central Asian country named in full
        ("Uzbekistan and China sign a gas deal", ("uz",)),
    ],
)
def test_v2_gazetteer(text: str, countries: tuple[str, ...]) -> None:
    assert CLASSIFIER.classify_text(text).countries == countries


def test_summary_mentions_count_half_when_the_title_is_about_elsewhere() -> None:
    about_russia = CLASSIFIER.classify(
        entry("Russia raises its gas export prices", "<p>Buyers include Uzbekistan.</p>")
    )
    neutral = CLASSIFIER.classify(entry("Gas prices rise", "<p>Buyers include Uzbekistan.</p>"))

    assert about_russia.countries == ()
    assert about_russia.scores["uz"] == 1.5
    assert neutral.countries == ("uz",)


@pytest.mark.parametrize(
    ("title", "summary", "hint", "countries"),
    [
        # world news naming a Central Asian country in a list: in passing
        ("Ces pays où le niqab est interdit",
         "<p>Le niqab est interdit en France, en Belgique et au Tadjikistan.</p>", None, ()),
        ("The world's most isolated countries",
         "<p>North Korea, Eritrea and Turkmenistan top the list.</p>", None, ()),
        ("OPEC+ to raise output again",
         "<p>Members include Saudi Arabia, Russia and Kazakhstan.</p>", None, ()),
        # about the region, in the summary only
        ("Floods kill 12", "<p>Floods in Kazakhstan's Kostanay region killed 12.</p>", None,
         ("kz",)),
        ("Gas prices rise", "<p>Buyers include Uzbekistan.</p>", None, ("uz",)),
        # a Central Asian outlet's item is about its country
        ("Gas pipeline deal signed", "<p>Russia and Kazakhstan signed a gas deal.</p>", "kz",
         ("kz",)),
        ("Gas pipeline deal signed", "<p>Russia and Kazakhstan signed a gas deal.</p>", None, ()),
    ],
)  # fmt: skip
def test_a_summary_listing_foreign_places_as_strongly_mentions_in_passing(
    title: str, summary: str, hint: str | None, countries: tuple[str, ...]
) -> None:
    """When the title names no place, a summary that names foreign places at
    least as strongly as Central Asian ones (a list of countries in a world
    news item) counts its Central Asian matches half, unless the source is a
    Central Asian outlet: a wrong country is worse than a missed item."""
    assert CLASSIFIER.classify(entry(title, summary), hint).countries == countries


@pytest.mark.parametrize(
    ("text", "hint", "countries"),
    [
        ("Курс доллара в обменных бюро на 12 мая", "kg", ("kg",)),  # no place: the hint
        ("Ministry of Education holds meeting on preschool access", "kg", ("kg",)),
        ("Central bank keeps key rate unchanged at 14 percent", "uz", ("uz",)),
        ("Le tarif du pain augmente de 10 % dans les boulangeries", "kz", ("kz",)),
        # No place, but no home news either: the outlet's world news.
        ("Apple представила новый iPhone 18", "kz", ()),
        ("Tesla recalls two million cars", "kz", ()),
        ("Биткоин подешевел до 60 тысяч долларов", "kz", ()),
        ("Le prix Nobel de littérature attribué à une romancière", "kz", ()),
        # Words with another sense: key features, landed, a price abroad.
        ("Apple представила новый iPhone 18: ключевые отличия", "kz", ()),
        ("Самолет Boeing экстренно сел после отказа двигателя", "kz", ()),
        ("Tesla recalls two million cars over the price of repairs", "kz", ()),
        ("Землетрясение магнитудой 6,1 произошло в Японии", "kg", ()),  # a foreign place
        ("Average salary in Mongolia reaches 2 million tugriks", "kg", ()),
        ("Кыргызстан и Казахстан договорились о поставках", "kz", ("kz", "kg")),  # tie
        ("Кыргызстан и Казахстан договорились о поставках", None, ("kg", "kz")),
        ("Uzbekistan opens a new terminal", "kg", ("uz",)),  # evidence beats the hint
    ],
)
def test_source_hint(text: str, hint: str | None, countries: tuple[str, ...]) -> None:
    result = CLASSIFIER.classify_text(text, hint)
    assert result.countries == countries


@pytest.mark.parametrize(
    ("title", "summary", "hint", "countries"),
    [
        # its home town in the summary, too weak alone: its home news all the same
        ("Суд арестовал блогера", "Суд Душанбе арестовал блогера на два месяца.", "tj", ("tj",)),
        ("Court jails journalist for seven years", "A court in Dushanbe sentenced him.", "tj",
         ("tj",)),
        ("Суд арестовал блогера", "Суд Душанбе арестовал блогера на два месяца.", None, ()),
        # another country's place, or a foreign one: not the hint's
        ("Court jails journalist", "A court in Bishkek sentenced him.", "tj", ()),
        ("Earthquake in Japan", "Tremors were also felt in Dushanbe.", "tj", ()),
        # its people where they are a minority: news from abroad
        ("Kyrgyz of Murghab celebrate Nooruz", None, "kg", ()),
        ("Bayan-Olgii Kazakhs celebrate Nauryz", None, "kz", ()),
    ],
)  # fmt: skip
def test_a_source_hint_completes_weak_evidence_of_its_own_country(
    title: str, summary: str | None, hint: str | None, countries: tuple[str, ...]
) -> None:
    """An item of a Tajik outlet naming Dushanbe in its summary only was
    dropped, while the same item naming no place was Tajik."""
    assert CLASSIFIER.classify(entry(title, summary), hint).countries == countries


def test_hint_is_explained() -> None:
    result = CLASSIFIER.classify_text("Курс доллара на 12 мая", "kg")
    assert result.matches == (Match("kg", "source country", "", "source", "hint", 3.0),)


def test_editor_terms_and_exclusions() -> None:
    config = ClassifyConfig(
        add={"kg": ("Kok-Jar",), "region": ("Silk Road summit",)},
        exclude={"kz": ("Astana Motors", "Turkestan")},
    )
    tuned = Classifier.from_config(config)

    assert tuned.classify_text("Protest in Kok-Jar").countries == ("kg",)
    assert tuned.classify_text("Silk Road summit opens").regional
    assert tuned.classify_text("Astana Motors recalls cars").countries == ()
    assert tuned.classify_text("Turkestan airport opens").countries == ()
    assert tuned.classify_text("Astana hosts a summit").countries == ("kz",)
    assert CLASSIFIER.classify_text("Protest in Kok-Jar").countries == ()


def test_gazetteer_files_repeat_no_key() -> None:
    folder = resources.files("aggregator.classify").joinpath("gazetteer")
    for path in folder.iterdir():
        if path.name.endswith(".yaml"):
            load_yaml(path.read_text(encoding="utf-8"))  # raises on a repeated key


def test_case_sensitive_forms_are_listed_in_their_file() -> None:
    folder = resources.files("aggregator.classify").joinpath("gazetteer")
    for path in folder.iterdir():
        if not path.name.endswith(".yaml") or path.name == STATE_WORDS:
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        forms = {str(f) for kinds in data["terms"].values() for fs in kinds.values() for f in fs}
        assert set(data.get("case_sensitive") or ()) <= forms, path.name


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        # A fold that changes the text's length (ß -> ss, a ligature, a stray
        # stress accent) shifts offsets: the match is still the original text.
        ("Straße nach Bichkek", ["Bichkek"]),
        ("Ｋａｚａｋｈｓｔａｎ ﬁnance à Almaty", ["Ｋａｚａｋｈｓｔａｎ", "Almaty"]),
        ("Встре́ча   в  Ташке́нте", ["Ташке́нте"]),
        ("  Vallée de Ferghana :  Samarcande", ["Vallée de Ferghana", "Samarcande"]),
        ("Bichkek", ["Bichkek"]),
        # The same word earlier, not matched (case-sensitive "Osh", a word
        # containing it): the match is the later one, as written there.
        ("osh, gosh: OSH, then Osh and Naryn", ["Osh", "Naryn"]),
        ("Kazakhstan-Kazakhstan\tKAZAKHSTAN", ["Kazakhstan", "Kazakhstan", "KAZAKHSTAN"]),
        ("\u00a0\u2003 Almaty", ["Almaty"]),
    ],
)
def test_matches_keep_the_original_text(text: str, matched: list[str]) -> None:
    assert [m.text for m in CLASSIFIER.classify_text(text).matches] == matched


def test_word_characters_are_those_of_the_regex() -> None:
    """The gazetteer finds a word's offset by what ``\\w`` calls a word character."""
    from aggregator.classify import _is_word_char

    word = re.compile(r"\w")
    assert all(_is_word_char(c) == bool(word.match(c)) for c in map(chr, range(sys.maxunicode + 1)))


def test_suppress_phrases_block_only_the_terms_they_overlap() -> None:
    """An exclusion blocks its label's terms inside the phrase, not after it."""
    config = ClassifyConfig(exclude={"kg": ["Osh Street in Bishkek"]})
    classifier = Classifier.from_config(config)
    result = classifier.classify_text("Osh Street in Bishkek, then Bishkek again")
    assert [(m.label, m.text) for m in result.matches] == [("kg", "Bishkek")]


def test_ascii_tokens_agree_with_the_unicode_regex() -> None:
    """The classifier's ASCII tokenizer cuts text as the Unicode one does."""
    chars = [chr(n) for n in range(128)]
    for text in (f"{a}x{b}1{a}" for a in chars for b in chars):
        assert _TOKEN_ASCII.findall(text) == _TOKEN.findall(text), repr(text)


@pytest.mark.parametrize(
    "summary",
    [
        "<p>Le vote &amp; le budget</p>",
        "<p>" + "mot " * 740 + "<b>Astana</b> fin</p>",  # a tag across the 3,000th character
        "<p>" + "mot " * 1200 + "</p>",  # longer than what the fingerprint reads
        "plain &lt;text&gt;",
    ],
)
def test_lead_is_the_text_of_the_first_characters(summary: str) -> None:
    entry = Entry("s", "g", None, "Titre", summary)
    for _ in range(2):  # the fingerprint reads the same summary: the lead is unchanged
        assert lead(summary) == html.unescape(re.sub(r"<[^>]*>", " ", summary[:3000]))[:1000]
        fingerprint(entry)


@pytest.mark.parametrize(
    ("text", "keep_case", "folded", "aligned"),
    [
        # French and Russian text folds through a code page (bytes.translate)...
        ("Ёлка в Алматы — «Бишкек»", False, "елка в алматы - «бишкек»", True),
        ("Ёлка в Алматы — «Бишкек»", True, "Елка в Алматы - «Бишкек»", True),
        ("Qazaqstan’s Été à Douchanbé", False, "qazaqstan's ete a douchanbe", True),
        ("Qazaqstan’s Été", True, "Qazaqstan's Ete", True),
        # ...and text with characters outside it, or folding to several, character by character
        ("Қазақстан № 5", False, "қазақстан no 5", False),
        ("Straße µ", False, "strasse μ", False),
    ],
)
def test_fold(text: str, keep_case: bool, folded: str, aligned: bool) -> None:
    result = fold(text, keep_case)
    assert (result.text, result.aligned) == (folded, aligned)


@pytest.mark.parametrize(
    ("text", "countries"),
    [
        # A demonym beside a word of the state is the state's: a foreign title
        # does not halve it.
        ("Tajik migrants face new rules in Russia", ("tj",)),
        ("Turkmen gas exports to China hit record", ("tm",)),
        ("China imports record volumes of Kazakh oil", ("kz",)),
        ("Le gaz turkmène peut-il contourner la Russie ?", ("tm",)),
        ("Afghanistan : les talibans reçoivent une délégation ouzbèke", ("uz",)),
        ("Macron reçoit son homologue kirghize à Paris", ("kg",)),
        ("Таджикские мигранты столкнулись с новыми правилами въезда в Россию", ("tj",)),
        ("Китай увеличил закупки казахской нефти", ("kz",)),
        # A people abroad, with no word of the state beside it: not the country.
        ("Kazakh eagle hunters in Mongolia face a harsh winter", ()),
        ("Uzbek community leader in Afghanistan killed", ()),
        ("Uzbek leader Dostum returns to Afghanistan", ()),
        # A minority named as such stays suppressed, word of the state or not.
        ("Le dirigeant ouzbek afghan Dostom rentre à Kaboul", ()),
        ("Iraqi Turkmen leaders demand Kirkuk governorship", ()),
        # A people so named is a minority: "ethnic".
        ("China detains ethnic Kazakh migrants returning home", ()),
        # A place abroad where the people is a minority: its name stays a
        # people's, and counts half, word of the state or not.
        ("Afghanistan : une délégation ouzbèke du Jowzjan reçue par les talibans", ()),
        ("Kirkuk council elects Turkmen president amid protests", ()),
        ("Туркменская делегация из Ирана посетила Киркук", ()),
        ("Казахские власти Баян-Улгийского аймака открыли школу", ()),
        ("Mongolia's Kazakh minority: Olgii's Kazakh market reopens", ()),
        # ...even repeated under a foreign title, which would only halve it.
        ("Turkmen families in Kirkuk: Turkmen schools reopen in Iraq", ()),
        ("Сирийские туркменские боевики атаковали позиции курдов", ()),
        # Not a minority place: the country's relations with the state.
        ("Kaboul accueille une délégation ouzbèke pour parler du chemin de fer", ("uz",)),
        ("Президент Ирана принял туркменскую делегацию в Тегеране", ("tm",)),
    ],
)
def test_a_demonym_beside_a_word_of_the_state_means_the_state(
    text: str, countries: tuple[str, ...]
) -> None:
    assert CLASSIFIER.classify_text(text).countries == countries


@pytest.mark.parametrize(
    ("text", "countries", "kind"),
    [
        # the state's gas, border, electricity, envoy: not a minority's
        ("Iraq to import Turkmen gas", ("tm",), "sovereign"),
        ("Ирак будет импортировать туркменский газ", ("tm",), "sovereign"),
        ("Tajik border guards clash with Taliban fighters in Takhar", ("tj",), "sovereign"),
        ("Turkmen ambassador meets Iraqi officials", ("tm",), "sovereign"),
        # other words of the state stay a people's where it is a minority
        ("Uzbek migrants from Jawzjan return home", (), "demonym"),
        ("В Киркуке туркменские рабочие вышли на протест", (), "demonym"),
    ],
)
def test_a_minority_place_leaves_the_state_its_goods_border_and_envoys(
    text: str, countries: tuple[str, ...], kind: str
) -> None:
    """A place where the people is a minority made "Turkmen gas" a people's
    name, worth nothing: "Iraq to import Turkmen gas" was dropped."""
    result = CLASSIFIER.classify_text(text)
    assert result.countries == countries
    assert kind in {m.kind for m in result.matches if m.label in {"tm", "tj", "uz"}}


def test_sovereign_words_are_words_of_the_state() -> None:
    folder = resources.files("aggregator.classify").joinpath("gazetteer")
    words = yaml.safe_load(folder.joinpath(STATE_WORDS).read_text(encoding="utf-8"))
    for language, forms in words["sovereign"].items():
        side = words["before"] if language == "fr" else words["after"]
        assert set(forms) <= set(side[language]), language


def test_a_demonym_beside_a_word_of_the_state_is_explained_as_such() -> None:
    (match, _) = CLASSIFIER.classify_text("Tajik migrants face new rules in Russia").matches
    assert (match.term, match.kind) == ("Tajik", "state")

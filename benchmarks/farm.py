"""A farm of synthetic news feeds on disk, and an HTTP server for it.

    python -m benchmarks.farm build --dir FOLDER [--sources 100] [--items 50] [--seed 1]
    python -m benchmarks.farm mutate --dir FOLDER [--fraction 0.1] [--seed 2]
    python -m benchmarks.farm serve --dir FOLDER [--port 0]

``build`` writes ``FOLDER/feeds/s{i}.xml``: RSS 2.0 for two sources in three,
Atom 1.0 for the third, in French, English and Russian (a third each). Each
item has a headline and about 2 kB of HTML (paragraphs, a link, sometimes an
image) made from sentence templates with random people, places and numbers:
about 60% are about Kazakhstan, Kyrgyzstan, Tajikistan, Turkmenistan,
Uzbekistan or the region, the rest decoys about Russia, China, Afghanistan,
Mongolia, Turkey or Europe. One item in ten is a copy of another source's item
(same title and description, its own link and guid), as agencies do. Dates
are distinct and within the 48 hours before the build.

``mutate`` prepends 5 new items to a fraction of the feeds (a refresh where
some sources changed). ``serve`` serves ``FOLDER/feeds/`` on 127.0.0.1 with
ETag and Last-Modified (answering 304 to If-None-Match / If-Modified-Since),
HTTP/1.1 keep-alive and no request log; it prints ``PORT <n>`` first, and
reads a file again when it changes.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import os
import random
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape, quoteattr

LANGUAGES = ("fr", "en", "ru")
CENTRAL_ASIA = ("kz", "kg", "tj", "tm", "uz")
DECOYS = ("ru", "cn", "af", "mn", "tr", "eu")
RELEVANT_SHARE = 0.6
COPY_SHARE = 0.1
DESCRIPTION_CHARS = 1900
WINDOW = timedelta(hours=48)


@dataclass(frozen=True)
class Place:
    """A country (or the region, or Europe) in one language."""

    name: str  # nominative, as a sentence subject: "le Kazakhstan", "Kazakhstan", "Казахстан"
    inside: str  # "au Kazakhstan", "in Kazakhstan", "в Казахстане"
    cities: tuple[tuple[str, str], ...]  # (name, "in" form): ("Almaty", "à Almaty")
    people: tuple[str, ...]


def _cities(pairs: str) -> tuple[tuple[str, str], ...]:
    """``"Astana|à Astana; Almaty|à Almaty"`` -> ((name, inside), ...)."""
    out = []
    for pair in pairs.split(";"):
        name, inside = pair.strip().split("|")
        out.append((name, inside))
    return tuple(out)


def _people(names: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in names.split(";"))


PLACES: dict[str, dict[str, Place]] = {
    "fr": {
        "kz": Place(
            "le Kazakhstan",
            "au Kazakhstan",
            _cities(
                "Astana|à Astana; Almaty|à Almaty; Chymkent|à Chymkent; "
                "Karaganda|à Karaganda; Kostanaï|à Kostanaï; Atyraou|à Atyraou"
            ),
            _people(
                "Kassym-Jomart Tokaïev; Olzhas Bektenov; Aïgerim Nourlanova; "
                "Daniyar Akhmetov; Saule Iskakova"
            ),
        ),
        "kg": Place(
            "le Kirghizistan",
            "au Kirghizistan",
            _cities(
                "Bichkek|à Bichkek; Och|à Och; Karakol|à Karakol; "
                "Djalal-Abad|à Djalal-Abad; Naryn|à Naryn"
            ),
            _people("Sadyr Japarov; Adylbek Kassymaliev; Aïpéri Toktogoulova; Nourlan Sydykov"),
        ),
        "tj": Place(
            "le Tadjikistan",
            "au Tadjikistan",
            _cities(
                "Douchanbé|à Douchanbé; Khodjent|à Khodjent; Khorog|à Khorog; "
                "Koulob|à Koulob; Bokhtar|à Bokhtar"
            ),
            _people("Emomali Rahmon; Kokhir Rassoulzoda; Firouza Nazarova; Rustam Emomali"),
        ),
        "tm": Place(
            "le Turkménistan",
            "au Turkménistan",
            _cities(
                "Achgabat|à Achgabat; Turkmenbachi|à Turkmenbachi; "
                "Daşoguz|à Daşoguz; Türkmenabat|à Türkmenabat"
            ),
            _people(
                "Serdar Berdimoukhamedov; Gourbangouly Berdimoukhamedov; "
                "Maral Annaïeva; Rachid Meredov"
            ),
        ),
        "uz": Place(
            "l'Ouzbékistan",
            "en Ouzbékistan",
            _cities(
                "Tachkent|à Tachkent; Samarcande|à Samarcande; Boukhara|à Boukhara; "
                "Andijan|à Andijan; Noukous|à Noukous; Namangan|à Namangan"
            ),
            _people("Chavkat Mirzioïev; Abdoulla Aripov; Dilnoza Karimova; Bakhtiyor Saïdov"),
        ),
        "region": Place(
            "l'Asie centrale",
            "en Asie centrale",
            _cities(
                "Astana|à Astana; Tachkent|à Tachkent; Bichkek|à Bichkek; "
                "Douchanbé|à Douchanbé; Achgabat|à Achgabat"
            ),
            _people("Kassym-Jomart Tokaïev; Chavkat Mirzioïev; Sadyr Japarov"),
        ),
        "ru": Place(
            "la Russie",
            "en Russie",
            _cities(
                "Moscou|à Moscou; Saint-Pétersbourg|à Saint-Pétersbourg; "
                "Novossibirsk|à Novossibirsk; Kazan|à Kazan"
            ),
            _people("Vladimir Poutine; Mikhaïl Michoustine; Sergueï Lavrov"),
        ),
        "cn": Place(
            "la Chine",
            "en Chine",
            _cities("Pékin|à Pékin; Shanghai|à Shanghai; Canton|à Canton; Chengdu|à Chengdu"),
            _people("Xi Jinping; Li Qiang; Wang Yi"),
        ),
        "af": Place(
            "l'Afghanistan",
            "en Afghanistan",
            _cities("Kaboul|à Kaboul; Hérat|à Hérat; Kandahar|à Kandahar"),
            _people("Hibatullah Akhundzada; Amir Khan Muttaqi"),
        ),
        "mn": Place(
            "la Mongolie",
            "en Mongolie",
            _cities("Oulan-Bator|à Oulan-Bator; Erdenet|à Erdenet; Darkhan|à Darkhan"),
            _people("Ukhnaagiin Khurelsukh; Gombojav Zandanshatar"),
        ),
        "tr": Place(
            "la Turquie",
            "en Turquie",
            _cities("Ankara|à Ankara; Istanbul|à Istanbul; Izmir|à Izmir"),
            _people("Recep Tayyip Erdoğan; Hakan Fidan"),
        ),
        "eu": Place(
            "l'Union européenne",
            "dans l'Union européenne",
            _cities("Bruxelles|à Bruxelles; Berlin|à Berlin; Paris|à Paris; Rome|à Rome"),
            _people("Ursula von der Leyen; Kaja Kallas; António Costa"),
        ),
    },
    "en": {
        "kz": Place(
            "Kazakhstan",
            "in Kazakhstan",
            _cities(
                "Astana|in Astana; Almaty|in Almaty; Shymkent|in Shymkent; "
                "Karaganda|in Karaganda; Kostanay|in Kostanay; Atyrau|in Atyrau"
            ),
            _people(
                "Kassym-Jomart Tokayev; Olzhas Bektenov; Aigerim Nurlanova; "
                "Daniyar Akhmetov; Saule Iskakova"
            ),
        ),
        "kg": Place(
            "Kyrgyzstan",
            "in Kyrgyzstan",
            _cities(
                "Bishkek|in Bishkek; Osh|in Osh; Karakol|in Karakol; "
                "Jalal-Abad|in Jalal-Abad; Naryn|in Naryn"
            ),
            _people("Sadyr Japarov; Adylbek Kasymaliev; Aiperi Toktogulova; Nurlan Sydykov"),
        ),
        "tj": Place(
            "Tajikistan",
            "in Tajikistan",
            _cities(
                "Dushanbe|in Dushanbe; Khujand|in Khujand; Khorog|in Khorog; "
                "Kulob|in Kulob; Bokhtar|in Bokhtar"
            ),
            _people("Emomali Rahmon; Kokhir Rasulzoda; Firuza Nazarova; Rustam Emomali"),
        ),
        "tm": Place(
            "Turkmenistan",
            "in Turkmenistan",
            _cities(
                "Ashgabat|in Ashgabat; Turkmenbashi|in Turkmenbashi; "
                "Dashoguz|in Dashoguz; Turkmenabat|in Turkmenabat"
            ),
            _people(
                "Serdar Berdimuhamedov; Gurbanguly Berdimuhamedov; Maral Annayeva; Rashid Meredov"
            ),
        ),
        "uz": Place(
            "Uzbekistan",
            "in Uzbekistan",
            _cities(
                "Tashkent|in Tashkent; Samarkand|in Samarkand; Bukhara|in Bukhara; "
                "Andijan|in Andijan; Nukus|in Nukus; Namangan|in Namangan"
            ),
            _people("Shavkat Mirziyoyev; Abdulla Aripov; Dilnoza Karimova; Bakhtiyor Saidov"),
        ),
        "region": Place(
            "Central Asia",
            "in Central Asia",
            _cities(
                "Astana|in Astana; Tashkent|in Tashkent; Bishkek|in Bishkek; "
                "Dushanbe|in Dushanbe; Ashgabat|in Ashgabat"
            ),
            _people("Kassym-Jomart Tokayev; Shavkat Mirziyoyev; Sadyr Japarov"),
        ),
        "ru": Place(
            "Russia",
            "in Russia",
            _cities(
                "Moscow|in Moscow; Saint Petersburg|in Saint Petersburg; "
                "Novosibirsk|in Novosibirsk; Kazan|in Kazan"
            ),
            _people("Vladimir Putin; Mikhail Mishustin; Sergei Lavrov"),
        ),
        "cn": Place(
            "China",
            "in China",
            _cities(
                "Beijing|in Beijing; Shanghai|in Shanghai; Guangzhou|in Guangzhou; "
                "Chengdu|in Chengdu"
            ),
            _people("Xi Jinping; Li Qiang; Wang Yi"),
        ),
        "af": Place(
            "Afghanistan",
            "in Afghanistan",
            _cities("Kabul|in Kabul; Herat|in Herat; Kandahar|in Kandahar"),
            _people("Hibatullah Akhundzada; Amir Khan Muttaqi"),
        ),
        "mn": Place(
            "Mongolia",
            "in Mongolia",
            _cities("Ulaanbaatar|in Ulaanbaatar; Erdenet|in Erdenet; Darkhan|in Darkhan"),
            _people("Ukhnaagiin Khurelsukh; Gombojav Zandanshatar"),
        ),
        "tr": Place(
            "Turkey",
            "in Turkey",
            _cities("Ankara|in Ankara; Istanbul|in Istanbul; Izmir|in Izmir"),
            _people("Recep Tayyip Erdogan; Hakan Fidan"),
        ),
        "eu": Place(
            "the European Union",
            "in the European Union",
            _cities("Brussels|in Brussels; Berlin|in Berlin; Paris|in Paris; Rome|in Rome"),
            _people("Ursula von der Leyen; Kaja Kallas; Antonio Costa"),
        ),
    },
    "ru": {
        "kz": Place(
            "Казахстан",
            "в Казахстане",
            _cities(
                "Астана|в Астане; Алматы|в Алматы; Шымкент|в Шымкенте; "
                "Караганда|в Караганде; Костанай|в Костанае; Атырау|в Атырау"
            ),
            _people(
                "Касым-Жомарт Токаев; Олжас Бектенов; Айгерим Нурланова; "
                "Данияр Ахметов; Сауле Искакова"
            ),
        ),
        "kg": Place(
            "Кыргызстан",
            "в Кыргызстане",
            _cities(
                "Бишкек|в Бишкеке; Ош|в Оше; Каракол|в Караколе; "
                "Джалал-Абад|в Джалал-Абаде; Нарын|в Нарыне"
            ),
            _people("Садыр Жапаров; Адылбек Касымалиев; Айпери Токтогулова; Нурлан Сыдыков"),
        ),
        "tj": Place(
            "Таджикистан",
            "в Таджикистане",
            _cities(
                "Душанбе|в Душанбе; Худжанд|в Худжанде; Хорог|в Хороге; "
                "Куляб|в Кулябе; Бохтар|в Бохтаре"
            ),
            _people("Эмомали Рахмон; Кохир Расулзода; Фируза Назарова; Рустам Эмомали"),
        ),
        "tm": Place(
            "Туркменистан",
            "в Туркменистане",
            _cities(
                "Ашхабад|в Ашхабаде; Туркменбаши|в Туркменбаши; "
                "Дашогуз|в Дашогузе; Туркменабат|в Туркменабате"
            ),
            _people(
                "Сердар Бердымухамедов; Гурбангулы Бердымухамедов; Марал Аннаева; Рашид Мередов"
            ),
        ),
        "uz": Place(
            "Узбекистан",
            "в Узбекистане",
            _cities(
                "Ташкент|в Ташкенте; Самарканд|в Самарканде; Бухара|в Бухаре; "
                "Андижан|в Андижане; Нукус|в Нукусе; Наманган|в Намангане"
            ),
            _people("Шавкат Мирзиёев; Абдулла Арипов; Дилноза Каримова; Бахтиёр Саидов"),
        ),
        "region": Place(
            "Центральная Азия",
            "в Центральной Азии",
            _cities(
                "Астана|в Астане; Ташкент|в Ташкенте; Бишкек|в Бишкеке; "
                "Душанбе|в Душанбе; Ашхабад|в Ашхабаде"
            ),
            _people("Касым-Жомарт Токаев; Шавкат Мирзиёев; Садыр Жапаров"),
        ),
        "ru": Place(
            "Россия",
            "в России",
            _cities(
                "Москва|в Москве; Санкт-Петербург|в Санкт-Петербурге; "
                "Новосибирск|в Новосибирске; Казань|в Казани"
            ),
            _people("Владимир Путин; Михаил Мишустин; Сергей Лавров"),
        ),
        "cn": Place(
            "Китай",
            "в Китае",
            _cities("Пекин|в Пекине; Шанхай|в Шанхае; Гуанчжоу|в Гуанчжоу; Чэнду|в Чэнду"),
            _people("Си Цзиньпин; Ли Цян; Ван И"),
        ),
        "af": Place(
            "Афганистан",
            "в Афганистане",
            _cities("Кабул|в Кабуле; Герат|в Герате; Кандагар|в Кандагаре"),
            _people("Хибатулла Ахундзада; Амир Хан Муттаки"),
        ),
        "mn": Place(
            "Монголия",
            "в Монголии",
            _cities("Улан-Батор|в Улан-Баторе; Эрдэнэт|в Эрдэнэте; Дархан|в Дархане"),
            _people("Ухнаагийн Хурэлсух; Гомбожавын Занданшатар"),
        ),
        "tr": Place(
            "Турция",
            "в Турции",
            _cities("Анкара|в Анкаре; Стамбул|в Стамбуле; Измир|в Измире"),
            _people("Реджеп Тайип Эрдоган; Хакан Фидан"),
        ),
        "eu": Place(
            "Евросоюз",
            "в Евросоюзе",
            _cities("Брюссель|в Брюсселе; Берлин|в Берлине; Париж|в Париже; Рим|в Риме"),
            _people("Урсула фон дер Ляйен; Кая Каллас; Антониу Кошта"),
        ),
    },
}

# Headlines: (place key, template). "*ca" takes one of the five countries, "*decoy" one
# of the decoys. Slots: {Country} {country} {in_country} {city} {in_city} {person}
# {n} {big} {pct} {year}.
HEADLINES: dict[str, list[tuple[str, str]]] = {
    "fr": [
        ("kz", "Inondations dans la région de Kostanaï : {big} habitants évacués"),
        ("kz", "Le Kazakhstan relève son taux directeur à {pct} %"),
        ("kz", "Tokaïev annonce un référendum sur la construction d'une centrale nucléaire"),
        ("kz", "Astana accueille le forum {year} des investisseurs étrangers"),
        ("kg", "Le Kirghizistan inaugure {n} nouvelles écoles dans la région d'Och"),
        ("kg", "Bichkek : le parlement adopte la loi sur les médias"),
        ("kg", "Lac Issyk-Koul : la saison touristique attire {big} visiteurs"),
        ("tj", "Le Tadjikistan achève la troisième turbine du barrage de Rogoun"),
        ("tj", "Douchanbé : {n} militants condamnés à de lourdes peines"),
        ("tj", "Pamir : le tourisme de montagne en plein essor à Khorog"),
        ("tm", "Le Turkménistan augmente ses livraisons de gaz de {pct} %"),
        ("tm", "Achgabat inaugure un nouveau quartier de {n} immeubles"),
        ("tm", "Berdimoukhamedov reçoit une délégation d'investisseurs à Achgabat"),
        ("uz", "L'Ouzbékistan ouvre un nouveau terminal à l'aéroport de Tachkent"),
        ("uz", "Samarcande accueille {big} visiteurs pour le festival Sharq Taronalari"),
        ("uz", "Mirzioïev signe {n} accords lors de sa visite à Boukhara"),
        ("uz", "Mer d'Aral : l'Ouzbékistan plante {big} hectares de saxaoul"),
        ("region", "Asie centrale : la BERD prévoit une croissance de {pct} % en {year}"),
        ("region", "Sommet C5+1 : les cinq pays d'Asie centrale discutent de l'eau"),
        ("region", "Vallée de Ferghana : {n} projets transfrontaliers financés"),
        ("region", "Asie centrale : le corridor transcaspien attire {big} conteneurs"),
        ("*ca", "{Country} : {n} mesures pour soutenir les agriculteurs"),
        ("*ca", "{person} en visite officielle à {city}"),
        ("*ca", "Hausse des prix du pain {in_country} : +{pct} % en un mois"),
        ("*ca", "{city} : un incendie détruit {n} entrepôts"),
        ("*ca", "{Country} lance un programme de {big} logements sociaux"),
        ("*decoy", "{Country} relève ses prix du gaz pour les industriels"),
        ("*decoy", "{person} annonce un plan de relance de {big} millions"),
        ("*decoy", "{city} : grève des transports, {n} lignes perturbées"),
        ("*decoy", "Élections {in_country} : la participation atteint {pct} %"),
        ("*decoy", "{Country} : {n} morts dans un accident de bus"),
        ("*decoy", "Inflation {in_country} : {pct} % sur un an en {year}"),
        ("ru", "La Russie relève les prix du gaz pour les industriels"),
        ("ru", "Moscou : {n} stations de métro fermées pour travaux"),
        ("cn", "La Chine lance {n} satellites depuis Jiuquan"),
        ("af", "Afghanistan : les talibans interdisent {n} nouveaux métiers aux femmes"),
        ("mn", "Mongolie : un hiver rigoureux tue {big} têtes de bétail"),
        ("tr", "Turquie : la livre perd {pct} % face au dollar"),
        ("eu", "L'Union européenne adopte son {n}e paquet de sanctions"),
        ("eu", "Bruxelles : sommet européen sur l'énergie en {year}"),
    ],
    "en": [
        ("kz", "Floods in Kostanay region: {big} residents evacuated"),
        ("kz", "Kazakhstan raises its base rate to {pct}%"),
        ("kz", "Tokayev calls referendum on building a nuclear power plant"),
        ("kz", "Astana hosts the {year} foreign investors forum"),
        ("kg", "Kyrgyzstan opens {n} new schools in Osh region"),
        ("kg", "Bishkek: parliament passes the media law"),
        ("kg", "Issyk-Kul tourist season draws {big} visitors"),
        ("tj", "Tajikistan completes the third turbine of the Rogun dam"),
        ("tj", "Dushanbe court jails {n} activists for long terms"),
        ("tj", "Pamir mountain tourism booms in Khorog"),
        ("tm", "Turkmenistan raises gas deliveries by {pct}%"),
        ("tm", "Ashgabat opens a new district of {n} apartment blocks"),
        ("tm", "Berdimuhamedov receives investors' delegation in Ashgabat"),
        ("uz", "Uzbekistan opens new terminal at Tashkent airport"),
        ("uz", "Samarkand welcomes {big} visitors for Sharq Taronalari festival"),
        ("uz", "Mirziyoyev signs {n} agreements during his visit to Bukhara"),
        ("uz", "Aral Sea: Uzbekistan plants {big} hectares of saxaul"),
        ("region", "Central Asia: EBRD forecasts {pct}% growth in {year}"),
        ("region", "C5+1 summit: Central Asian countries discuss water sharing"),
        ("region", "Fergana Valley: {n} cross-border projects funded"),
        ("region", "Central Asia: Trans-Caspian corridor carries {big} containers"),
        ("*ca", "{Country} adopts {n} measures to support farmers"),
        ("*ca", "{person} on official visit to {city}"),
        ("*ca", "Bread prices {in_country} up {pct}% in a month"),
        ("*ca", "{city}: fire destroys {n} warehouses"),
        ("*ca", "{Country} launches programme of {big} social housing units"),
        ("*decoy", "{Country} raises gas prices for industrial users"),
        ("*decoy", "{person} announces a {big} million stimulus plan"),
        ("*decoy", "{city}: transport strike disrupts {n} lines"),
        ("*decoy", "Elections {in_country}: turnout reaches {pct}%"),
        ("*decoy", "{Country}: {n} killed in bus crash"),
        ("*decoy", "Inflation {in_country} at {pct}% year on year in {year}"),
        ("ru", "Russia raises gas prices for industrial users"),
        ("ru", "Moscow closes {n} metro stations for repairs"),
        ("cn", "China launches {n} satellites from Jiuquan"),
        ("af", "Afghanistan: Taliban ban women from {n} more professions"),
        ("mn", "Mongolia: harsh winter kills {big} head of livestock"),
        ("tr", "Turkey: lira loses {pct}% against the dollar"),
        ("eu", "European Union adopts its {n}th sanctions package"),
        ("eu", "Brussels: European energy summit in {year}"),
    ],
    "ru": [
        ("kz", "Паводки в Костанайской области: эвакуированы {big} жителей"),
        ("kz", "Нацбанк Казахстана повысил базовую ставку до {pct}%"),
        ("kz", "Токаев объявил референдум о строительстве АЭС"),
        ("kz", "В Астане открылся форум иностранных инвесторов {year}"),
        ("kg", "В Бишкеке открыли {n} новых школ"),
        ("kg", "Жогорку Кенеш принял закон о СМИ"),
        ("kg", "Иссык-Куль за сезон посетили {big} туристов"),
        ("tj", "Таджикистан запустил третий агрегат Рогунской ГЭС"),
        ("tj", "В Душанбе {n} активистов приговорили к длительным срокам"),
        ("tj", "Горный туризм на Памире: в Хороге рекордный сезон"),
        ("tm", "Туркменистан увеличил поставки газа на {pct}%"),
        ("tm", "В Ашхабаде открыли новый микрорайон из {n} домов"),
        ("tm", "Бердымухамедов принял делегацию инвесторов в Ашхабаде"),
        ("uz", "В аэропорту Ташкента открыли новый терминал"),
        ("uz", "Фестиваль «Шарк тароналари» в Самарканде посетили {big} человек"),
        ("uz", "Мирзиёев подписал {n} соглашений во время визита в Бухару"),
        ("uz", "Приаралье: Узбекистан засадил саксаулом {big} гектаров"),
        ("region", "ЕБРР прогнозирует рост экономики Центральной Азии на {pct}% в {year} году"),
        ("region", "Саммит C5+1: страны Центральной Азии обсудили водные ресурсы"),
        ("region", "Ферганская долина: профинансировано {n} трансграничных проектов"),
        ("region", "Транскаспийский маршрут: перевезено {big} контейнеров"),
        ("*ca", "{Country} принял {n} мер поддержки фермеров"),
        ("*ca", "{person} провёл переговоры {in_city}"),
        ("*ca", "Хлеб {in_country} подорожал на {pct}% за месяц"),
        ("*ca", "Пожар {in_city} уничтожил {n} складов"),
        ("*ca", "{Country} запускает программу строительства {big} квартир"),
        ("*decoy", "{Country} повышает цены на газ для промышленных потребителей"),
        ("*decoy", "{person} объявил о плане поддержки экономики на {big} млн"),
        ("*decoy", "Забастовка транспорта {in_city}: нарушено движение на {n} линиях"),
        ("*decoy", "Выборы {in_country}: явка составила {pct}%"),
        ("*decoy", "{Country}: {n} погибших в ДТП с автобусом"),
        ("*decoy", "Инфляция {in_country} в {year} году составила {pct}%"),
        ("ru", "Россия повышает цены на газ для промышленных потребителей"),
        ("ru", "В Москве закрыли на ремонт {n} станций метро"),
        ("cn", "Китай запустил {n} спутников с космодрома Цзюцюань"),
        ("af", "Талибы запретили женщинам работать ещё в {n} профессиях"),
        ("mn", "В Монголии суровая зима погубила {big} голов скота"),
        ("tr", "Турецкая лира подешевела на {pct}% к доллару"),
        ("eu", "Евросоюз принял {n}-й пакет санкций"),
        ("eu", "В Брюсселе пройдёт энергетический саммит ЕС в {year} году"),
    ],
}

# Body sentences, about the item's place.
SENTENCES: dict[str, list[str]] = {
    "fr": [
        "Selon les autorités, {n} personnes ont participé à la réunion organisée {in_city}.",
        "{person} a déclaré que le pays entendait poursuivre les réformes engagées en {year}.",
        "Le budget prévu atteint {big} millions, soit {pct} % de plus que l'an dernier.",
        "Les experts interrogés estiment que la mesure aura un effet limité {in_country}.",
        "Les travaux doivent commencer au printemps et durer au moins {n} mois.",
        "Plusieurs habitants de {city} ont exprimé leurs inquiétudes sur les réseaux sociaux.",
        "Le ministère a précisé que {big} foyers étaient concernés par ces changements.",
        "La décision intervient après une série de consultations avec les partenaires.",
        "D'après les chiffres officiels, la production a progressé de {pct} % sur un an.",
        "Une commission spéciale présidée par {person} suivra l'avancement du projet.",
        "Les observateurs rappellent que des annonces similaires avaient été faites en {year}.",
        "La presse locale souligne le rôle des investisseurs étrangers {in_country}.",
        "Le coût total est estimé à {big} millions de dollars, financés en partie par des prêts.",
        "Les autorités de {city} promettent un premier bilan d'ici {n} semaines.",
        "{person} doit présenter un rapport détaillé devant le parlement.",
        "Cette annonce a été accueillie avec prudence par les milieux d'affaires {in_city}.",
    ],
    "en": [
        "According to officials, {n} people took part in the meeting held {in_city}.",
        "{person} said the country would pursue the reforms launched in {year}.",
        "The planned budget reaches {big} million, {pct}% more than last year.",
        "Experts say the measure will have a limited effect {in_country}.",
        "Work is due to start in spring and to last at least {n} months.",
        "Several residents of {city} voiced their concerns on social media.",
        "The ministry said {big} households were affected by the changes.",
        "The decision follows a series of consultations with partners.",
        "Official figures show output grew by {pct}% year on year.",
        "A special commission chaired by {person} will oversee the project.",
        "Observers recall that similar announcements were made in {year}.",
        "Local media stress the role of foreign investors {in_country}.",
        "The total cost is put at {big} million dollars, partly financed by loans.",
        "The authorities {in_city} promise a first assessment within {n} weeks.",
        "{person} is due to present a detailed report to parliament.",
        "Business circles {in_city} greeted the announcement with caution.",
    ],
    "ru": [
        "По данным властей, во встрече {in_city} приняли участие {n} человек.",
        "{person} заявил, что страна продолжит реформы, начатые в {year} году.",
        "Бюджет проекта составит {big} млн, что на {pct}% больше, чем в прошлом году.",
        "Опрошенные эксперты считают, что мера даст ограниченный эффект {in_country}.",
        "Работы начнутся весной и продлятся не менее {n} месяцев.",
        "Жители города {city} выразили обеспокоенность в социальных сетях.",
        "В министерстве уточнили, что изменения коснутся {big} домохозяйств.",
        "Решение принято после серии консультаций с партнёрами.",
        "По официальным данным, производство выросло на {pct}% за год.",
        "За ходом проекта будет следить специальная комиссия, её возглавит {person}.",
        "Наблюдатели напоминают, что похожие заявления звучали ещё в {year} году.",
        "Местные СМИ подчёркивают роль иностранных инвесторов {in_country}.",
        "Общая стоимость оценивается в {big} млн долларов, часть средств — кредиты.",
        "Власти {in_city} обещают подвести первые итоги через {n} недель.",
        "{person} должен представить подробный доклад парламенту.",
        "Деловые круги {in_city} встретили новость с осторожностью.",
    ],
}

READ_MORE = {"fr": "Lire la suite", "en": "Read more", "ru": "Читать далее"}
FEED_DESCRIPTION = {
    "fr": "Actualités synthétiques pour le banc d'essai",
    "en": "Synthetic news for the benchmark",
    "ru": "Синтетические новости для бенчмарка",
}


@dataclass(frozen=True)
class Item:
    title: str
    description: str
    link: str
    published: datetime


def source_format(i: int) -> str:
    """``atom`` for one source in three, ``rss`` for the others."""
    return "atom" if i % 3 == 2 else "rss"


def source_language(i: int) -> str:
    """Languages rotate every three sources, so each format has all three."""
    return LANGUAGES[(i // 3) % 3]


def feed_path(i: int) -> str:
    return f"feeds/s{i}.xml"


def _number(rng: random.Random, lang: str, low: int, high: int) -> str:
    value = rng.randint(low, high)
    if value < 1000:
        return str(value)
    sep = "," if lang == "en" else "\u00a0"
    return f"{value:,}".replace(",", sep)


def _slots(rng: random.Random, lang: str, key: str) -> dict[str, str]:
    place = PLACES[lang][key]
    city, in_city = rng.choice(place.cities)
    pct = f"{rng.randint(1, 19)}.{rng.randint(1, 9)}"
    return {
        "Country": place.name[:1].upper() + place.name[1:],
        "country": place.name,
        "in_country": place.inside,
        "city": city,
        "in_city": in_city,
        "person": rng.choice(place.people),
        "n": str(rng.randint(2, 480)),
        "big": _number(rng, lang, 1200, 95000),
        "pct": pct if lang == "en" else pct.replace(".", ","),
        "year": str(rng.randint(2024, 2030)),
    }


def _story(rng: random.Random, lang: str, site: str, number: str) -> tuple[str, str]:
    """A headline and its ~2 kB HTML description."""
    relevant = rng.random() < RELEVANT_SHARE
    group = CENTRAL_ASIA if relevant else DECOYS
    key, template = rng.choice(
        [t for t in HEADLINES[lang] if t[0] in group or t[0] == ("*ca" if relevant else "*decoy")]
        + ([t for t in HEADLINES[lang] if t[0] == "region"] if relevant else [])
    )
    if key.startswith("*"):
        key = rng.choice(group)
    title = template.format(**_slots(rng, lang, key))
    paragraphs: list[str] = []
    size = 0
    while size < DESCRIPTION_CHARS:
        count = rng.randint(2, 3)
        text = " ".join(
            rng.choice(SENTENCES[lang]).format(**_slots(rng, lang, key)) for _ in range(count)
        )
        if not paragraphs:
            text = f"<strong>{escape(title)}.</strong> {escape(text)}"
        else:
            text = escape(text)
        paragraphs.append(f"<p>{text}</p>")
        size += len(text) + 7
        if len(paragraphs) == 2 and rng.random() < 0.5:
            src = f"{site}img/{number}.jpg"
            paragraphs.append(
                f'<p><img src="{src}" alt="{escape(title, {chr(34): "&quot;"})}"'
                ' width="640" height="360"></p>'
            )
    link = f"{site}a/{number}"
    paragraphs.append(f'<p><a href="{link}">{READ_MORE[lang]}</a></p>')
    return title, "\n".join(paragraphs)


def _rss(i: int, lang: str, items: list[Item], now: datetime) -> str:
    site = f"https://s{i}.bench.example/"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n<channel>\n'
        f"<title>Bench source {i}</title>\n<link>{site}</link>\n"
        f"<description>{FEED_DESCRIPTION[lang]}</description>\n<language>{lang}</language>\n"
        f"<lastBuildDate>{email.utils.format_datetime(now, usegmt=True)}</lastBuildDate>\n"
    ]
    out += [_rss_item(item) for item in items]
    out.append("</channel>\n</rss>\n")
    return "".join(out)


def _rss_item(item: Item) -> str:
    return (
        f"<item>\n<title>{escape(item.title)}</title>\n<link>{item.link}</link>\n"
        f'<guid isPermaLink="true">{item.link}</guid>\n'
        f"<pubDate>{email.utils.format_datetime(item.published, usegmt=True)}</pubDate>\n"
        f"<description>{escape(item.description)}</description>\n</item>\n"
    )


def _atom(i: int, lang: str, items: list[Item], now: datetime) -> str:
    site = f"https://s{i}.bench.example/"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}">\n'
        f"<title>Bench source {i}</title>\n<subtitle>{FEED_DESCRIPTION[lang]}</subtitle>\n"
        f'<link rel="alternate" href="{site}"/>\n<id>{site}</id>\n'
        f"<updated>{now.isoformat(timespec='seconds')}</updated>\n"
        f"<author><name>Bench source {i}</name></author>\n"
    ]
    out += [_atom_entry(item) for item in items]
    out.append("</feed>\n")
    return "".join(out)


def _atom_entry(item: Item) -> str:
    when = item.published.isoformat(timespec="seconds")
    return (
        f"<entry>\n<title>{escape(item.title)}</title>\n"
        f"<link rel={quoteattr('alternate')} href={quoteattr(item.link)}/>\n"
        f"<id>{item.link}</id>\n<published>{when}</published>\n<updated>{when}</updated>\n"
        f'<summary type="html">{escape(item.description)}</summary>\n</entry>\n'
    )


def _write(path: Path, text: str) -> None:
    """Write atomically, so the server never reads half a file."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def _render(i: int, items: list[Item], now: datetime) -> str:
    lang = source_language(i)
    return (_atom if source_format(i) == "atom" else _rss)(i, lang, items, now)


def build(
    folder: Path, sources: int, items: int, seed: int = 1, now: datetime | None = None
) -> list[str]:
    """Write ``sources`` feeds of ``items`` items each under ``folder/feeds``;
    return their paths relative to ``folder``."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    rng = random.Random(seed)
    (folder / "feeds").mkdir(parents=True, exist_ok=True)
    span = int(WINDOW.total_seconds()) - 60
    total = sources * items
    if total <= span:
        offsets = rng.sample(range(60, span + 60), total)
    else:
        offsets = [rng.randint(60, span + 60) for _ in range(total)]
    stories = [
        [
            _story(rng, source_language(i), f"https://s{i}.bench.example/", str(j))
            for j in range(items)
        ]
        for i in range(sources)
    ]
    paths = []
    for i in range(sources):
        site = f"https://s{i}.bench.example/"
        mine = offsets[i * items : (i + 1) * items]
        mine.sort()  # newest first
        copies = set(rng.sample(range(items), round(items * COPY_SHARE))) if sources > 1 else set()
        lang = source_language(i)
        same = [s for s in range(sources) if s != i and source_language(s) == lang]
        feed: list[Item] = []
        for j in range(items):
            title, description = stories[i][j]
            link = f"{site}a/{j}"
            if j in copies:
                other = rng.choice(same or [s for s in range(sources) if s != i])
                title, description = rng.choice(stories[other])
                link = f"{site}a/{j}-copy"
            feed.append(Item(title, description, link, now - timedelta(seconds=mine[j])))
        _write(folder / feed_path(i), _render(i, feed, now))
        paths.append(feed_path(i))
    return paths


_ITEM = re.compile(r"<item>|<entry>")
_STAMP = re.compile(r"<(lastBuildDate|updated)>[^<]*</\1>")


def mutate(folder: Path, fraction: float, seed: int) -> list[str]:
    """Prepend 5 new items to ``fraction`` of the feeds; return the paths changed."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    names = sorted((folder / "feeds").glob("s*.xml"), key=lambda p: int(p.stem[1:]))
    chosen = rng.sample(names, max(1, round(len(names) * fraction))) if fraction > 0 else []
    changed = []
    for path in sorted(chosen, key=lambda p: int(p.stem[1:])):
        i = int(path.stem[1:])
        site = f"https://s{i}.bench.example/"
        lang = source_language(i)
        ages = sorted(rng.sample(range(1, 1800), 5))
        new = []
        for k, age in enumerate(ages):
            number = f"u{seed}-{k}"
            title, description = _story(rng, lang, site, number)
            new.append(Item(title, description, f"{site}a/{number}", now - timedelta(seconds=age)))
        text = path.read_text(encoding="utf-8")
        atom = source_format(i) == "atom"
        block = "".join(_atom_entry(item) if atom else _rss_item(item) for item in new)
        first = _ITEM.search(text)
        at = first.start() if first else text.rindex("</channel>" if not atom else "</feed>")
        text = text[:at] + block + text[at:]
        stamp = (
            now.isoformat(timespec="seconds") if atom else email.utils.format_datetime(now, True)
        )
        text = _STAMP.sub(rf"<\1>{stamp}</\1>", text, count=1)
        _write(path, text)
        changed.append(str(path.relative_to(folder)))
    return changed


def write_config(folder: Path, port: int, n: int, storage: str = "bench.sqlite") -> Path:
    """Write ``folder/feeds.yaml`` listing the first ``n`` sources served on
    ``port``, stored in ``storage`` (a SQLite file or a PostgreSQL URI)."""
    lines = [
        "output:",
        "  dir: output",
        f"storage: '{storage}'",
        "fetch:",
        "  concurrency: 16",
        "  per_host: 16",
        "  host_delay: 0",
        "  allow_private: true",
        "  timeout: 30",
        "sources:",
    ]
    for i in range(n):
        lines += [f"  - name: Bench source {i}", f"    url: http://127.0.0.1:{port}/{feed_path(i)}"]
    path = folder / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class _File:
    key: tuple[int, int, int]  # inode, size, mtime_ns: a change means read it again
    data: bytes
    etag: str
    modified: datetime
    content_type: str


class FarmServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, folder: Path, port: int) -> None:
        self.feeds = (folder / "feeds").resolve()
        self._files: dict[str, _File] = {}
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def file(self, name: str) -> _File | None:
        path = self.feeds / name
        try:
            st = path.stat()
        except OSError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._files.get(name)
        if cached is not None and cached.key == key:
            return cached
        try:
            data = path.read_bytes()
        except OSError:
            return None
        head = data[:400]
        loaded = _File(
            key=key,
            data=data,
            etag='"' + hashlib.sha256(data).hexdigest()[:24] + '"',
            modified=datetime.fromtimestamp(st.st_mtime_ns // 1_000_000_000, UTC),
            content_type="application/atom+xml; charset=utf-8"
            if b"<feed" in head
            else "application/rss+xml; charset=utf-8",
        )
        with self._lock:
            self._files[name] = loaded
        return loaded


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FarmServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        name = path.removeprefix("/feeds/")
        found = None
        if path.startswith("/feeds/") and name and "/" not in name and not name.startswith("."):
            found = self.server.file(name)
        if found is None:
            message = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            if body:
                self.wfile.write(message)
            return
        last_modified = email.utils.format_datetime(found.modified, usegmt=True)
        if self._not_modified(found):
            self.send_response(304)
            self.send_header("ETag", found.etag)
            self.send_header("Last-Modified", last_modified)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", found.content_type)
        self.send_header("Content-Length", str(len(found.data)))
        self.send_header("ETag", found.etag)
        self.send_header("Last-Modified", last_modified)
        self.end_headers()
        if body:
            self.wfile.write(found.data)

    def _not_modified(self, found: _File) -> bool:
        tags = self.headers.get("If-None-Match")
        if tags is not None:  # takes precedence over If-Modified-Since (RFC 9110)
            given = [t.strip().removeprefix("W/") for t in tags.split(",")]
            return "*" in given or found.etag in given
        since = self.headers.get("If-Modified-Since")
        if since is None:
            return False
        try:
            when = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return found.modified <= when


def serve(folder: Path, port: int = 0) -> None:
    """Serve ``folder/feeds`` until interrupted; print ``PORT <n>`` first."""
    server = FarmServer(folder, port)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p_build = commands.add_parser("build", help="write a farm of feeds")
    p_build.add_argument("--dir", type=Path, required=True)
    p_build.add_argument("--sources", type=int, default=100)
    p_build.add_argument("--items", type=int, default=50)
    p_build.add_argument("--seed", type=int, default=1)
    p_mutate = commands.add_parser("mutate", help="add 5 items to a fraction of the feeds")
    p_mutate.add_argument("--dir", type=Path, required=True)
    p_mutate.add_argument("--fraction", type=float, default=0.1)
    p_mutate.add_argument("--seed", type=int, default=2)
    p_serve = commands.add_parser("serve", help="serve FOLDER/feeds on 127.0.0.1")
    p_serve.add_argument("--dir", type=Path, required=True)
    p_serve.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "build":
        paths = build(args.dir, args.sources, args.items, args.seed)
        print(f"{len(paths)} feeds of {args.items} items written under {args.dir / 'feeds'}")
    elif args.command == "mutate":
        changed = mutate(args.dir, args.fraction, args.seed)
        print(f"{len(changed)} feeds changed")
    else:
        serve(args.dir, args.port)


if __name__ == "__main__":
    main()

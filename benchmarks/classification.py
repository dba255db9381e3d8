"""Accuracy of the country classifier on the labelled headline sets.

    python -m benchmarks.classification [-v]

Prints, per data set, how many items are exactly right, the precision and
recall of country labels (kz kg tj tm uz), of the regional flag, and of the
drop decision, and lists the wrong ones with -v. A *wrong country* (a label
the item does not have) is the error readers see; a *missed* label only
loses an item from one feed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aggregator.classify import Classifier
from aggregator.types import COUNTRIES, REGION, Entry

DATA = Path(__file__).parent.parent / "tests" / "data" / "classification"


@dataclass(frozen=True)
class Labelled:
    title: str
    summary: str | None
    expected: frozenset[str]  # country codes, "region"; empty = drop
    hint: str | None = None  # the source's country: (the audit set's source_country)


@dataclass
class Score:
    items: int = 0
    exact: int = 0
    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0
    region_tp: int = 0
    region_fp: int = 0
    region_fn: int = 0
    wrong: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.true_pos / max(1, self.true_pos + self.false_pos)

    @property
    def recall(self) -> float:
        return self.true_pos / max(1, self.true_pos + self.false_neg)


def load(name: str) -> list[Labelled]:
    """A labelled set from tests/data/classification (three formats)."""
    data = json.loads((DATA / name).read_text(encoding="utf-8"))
    raw: list[dict[str, object]] = []
    if "feeds" in data:
        for feed in data["feeds"].values():
            raw.extend(feed["items"])
    else:
        raw = data["items"]
    return [
        Labelled(
            str(i["title"]),
            i.get("summary") if isinstance(i.get("summary"), str) else None,  # type: ignore[arg-type]
            frozenset(str(x).lower() for x in i["expected"]) - {"drop"},  # type: ignore[union-attr]
            i.get("source_country"),  # type: ignore[arg-type]
        )
        for i in raw
    ]


def evaluate(items: list[Labelled], classifier: Classifier) -> Score:
    score = Score()
    for item in items:
        entry = Entry(source_url="eval:", guid=item.title, link=None, title=item.title,
                      summary=item.summary)  # fmt: skip
        result = classifier.classify(entry, item.hint)
        got = set(result.countries)
        want = {x for x in item.expected if x in COUNTRIES}
        score.items += 1
        score.true_pos += len(got & want)
        score.false_pos += len(got - want)
        score.false_neg += len(want - got)
        got_region, want_region = result.regional, REGION in item.expected
        score.region_tp += got_region and want_region
        score.region_fp += got_region and not want_region
        score.region_fn += want_region and not got_region
        labels = sorted(result.labels)
        if got == want and got_region == want_region:
            score.exact += 1
        elif got - want or (got_region and not item.expected):
            score.wrong.append(f"{item.title!r}: got {labels}, want {sorted(item.expected)}")
        else:
            score.missed.append(f"{item.title!r}: got {labels}, want {sorted(item.expected)}")
    return score


SETS = (
    "real-headlines.json",
    "synthetic-expected-labels.json",
    "headlines-eval.json",
    "adversarial.json",
    "adversarial-fr-ru.json",
)


def scores(classifier: Classifier | None = None) -> Iterator[tuple[str, Score]]:
    classifier = classifier or Classifier()
    for name in SETS:
        if (DATA / name).exists():
            yield name, evaluate(load(name), classifier)


def main(argv: list[str]) -> None:
    verbose = "-v" in argv
    print(f"{'set':<34}{'items':>6}{'exact':>8}{'country P':>11}{'country R':>11}"
          f"{'wrong':>7}{'missed':>8}")  # fmt: skip
    for name, s in scores():
        print(f"{name:<34}{s.items:>6}{s.exact / s.items:>8.1%}{s.precision:>11.3f}"
              f"{s.recall:>11.3f}{len(s.wrong):>7}{len(s.missed):>8}")  # fmt: skip
        if verbose:
            for line in s.wrong:
                print(f"    WRONG  {line}")
            for line in s.missed:
                print(f"    missed {line}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Accuracy of near-duplicate story detection on labelled pairs.

    python -m benchmarks.dedupe_pairs [-v]

Reads tests/data/dedupe/pairs.json (same story or not, fr/en/ru, copies,
rewordings, translations, same-topic different events), indexes every item
(so feature weights come from a realistic mix), decides each pair as the
pipeline does, and prints merge precision and recall overall, per kind, and
for the two halves of the set (even pairs were used to tune, odd ones not).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator import cluster
from aggregator.classify import Classifier
from aggregator.prepare import title_places
from aggregator.types import Entry

PAIRS = Path(__file__).parent.parent / "tests" / "data" / "dedupe" / "pairs.json"
#: Pairs written to trap the clustering (an audit): reported apart.
AUDIT = PAIRS.with_name("audit-pairs.json")
ORIGIN = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    kind: str
    same: bool
    merged: bool
    similarity: float
    conflict: bool
    index: int


CLASSIFIER = Classifier()


def doc(n: int, item: dict[str, object]) -> cluster.Doc:
    """A pair's item as the pipeline would index it."""
    title, summary = str(item["title"]), str(item.get("summary") or "")
    entry = Entry(source_url=f"source-{n}", guid=str(n), link=None, title=title, summary=summary)
    classification = CLASSIFIER.classify(entry)
    return cluster.Doc(
        item_id=n,
        story_id=n,
        source=f"source-{n}",
        at=ORIGIN + timedelta(hours=float(item["hours"])),  # type: ignore[arg-type]
        signature=cluster.signature(title, summary, title_places(classification)),
        countries=cluster.countries(classification.countries),
    )


def decide_all(pairs: list[dict[str, object]]) -> list[Outcome]:
    index = cluster.StoryIndex()
    docs = []
    for n, pair in enumerate(pairs):
        a, b = doc(2 * n, pair["a"]), doc(2 * n + 1, pair["b"])  # type: ignore[arg-type]
        index.add(a)
        index.add(b)
        docs.append((a, b))
    outcomes = []
    for n, (pair, (a, b)) in enumerate(zip(pairs, docs, strict=True)):
        conflict = cluster.conflicting(a, b)
        similarity = index.similarity(a.features, b.features)

        def words(a: cluster.Doc = a, b: cluster.Doc = b) -> float:
            return index.similarity(a.signature.words, b.signature.words)

        merged = cluster.same_story(a, b, similarity, words)
        outcomes.append(Outcome(str(pair["kind"]), bool(pair["same"]), merged, similarity,
                                conflict, n))  # fmt: skip
    return outcomes


def precision_recall(outcomes: list[Outcome]) -> tuple[float, float]:
    tp = sum(o.merged and o.same for o in outcomes)
    fp = sum(o.merged and not o.same for o in outcomes)
    fn = sum(o.same and not o.merged for o in outcomes)
    return tp / max(1, tp + fp), tp / max(1, tp + fn)


def load(path: Path = PAIRS) -> list[dict[str, object]]:
    data: list[dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))["pairs"]
    return data


def main(argv: list[str]) -> None:
    pairs = load()
    outcomes = decide_all(pairs)
    for name, part in (
        ("all pairs", outcomes),
        ("even (tuning) half", [o for o in outcomes if o.index % 2 == 0]),
        ("odd (held-out) half", [o for o in outcomes if o.index % 2 == 1]),
    ):
        p, r = precision_recall(part)
        print(f"{name:<22} {len(part):>4} pairs  merge precision {p:.3f}  recall {r:.3f}")
    merged = Counter(o.kind for o in outcomes if o.merged)
    total = Counter(o.kind for o in outcomes)
    for kind in sorted(total):
        print(f"  {kind:<32} {merged[kind]:>3}/{total[kind]:<3} merged")
    audit = decide_all(load(AUDIT))
    p, r = precision_recall(audit)
    print(f"{'audit pairs':<22} {len(audit):>4} pairs  merge precision {p:.3f}  recall {r:.3f}"
          f"  ({sum(o.merged and not o.same for o in audit)} false merges)")  # fmt: skip
    if "-v" in argv:
        for o in outcomes:
            if o.merged != o.same:
                pair = pairs[o.index]
                a, b = pair["a"], pair["b"]  # type: ignore[index]
                print(f"\n{'FALSE MERGE' if o.merged else 'missed'} {o.kind}"
                      f" sim={o.similarity:.2f} conflict={o.conflict}"
                      f"\n  a: {a['title']}\n  b: {b['title']}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])

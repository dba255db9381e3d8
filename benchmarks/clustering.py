"""Speed of story clustering: N stored items, M new ones.

    python -m benchmarks.clustering [--stored 50000] [--new 5000] [--seed 1]

Generates synthetic items (Zipf-distributed vocabulary of French-, English-
and Russian-like words, titles of 8-12 words, summaries of 25-40, one new
item in ten a reworded copy of a stored one), all inside the 72-hour window
(the worst case: every stored item is a candidate), then times:

1. clustering alone: building the index of the stored items from their saved
   features, and finding the story of each new item (features included);
2. the whole ingest of the new items into a real SQLite store that holds the
   stored ones (URL and fingerprint look-ups, classification, inserts).

Prints seconds and items per second for each, and how many new items joined
an existing story. Target (issue 4): 50,000 + 5,000 in under 10 s.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator import cluster
from aggregator.classify import Classifier
from aggregator.pipeline import Ingester
from aggregator.store import Placement, open_store
from aggregator.types import Entry, Source

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
SYLLABLES = "ka ta ra na ma sa la ba da za pa ko to ro no mo so lo bo do zo ki ti ri ni mi".split()
CYRILLIC = "ка та ра на ма са ла ба да за ко то ро но мо со ло бо до ки ти ри ни ми".split()


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words = set()
    while len(words) < size:
        parts = CYRILLIC if rng.random() < 0.35 else SYLLABLES
        words.add("".join(rng.choice(parts) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def text(rng: random.Random, words: list[str], weights: list[float], n: int) -> str:
    return " ".join(rng.choices(words, weights, k=n))


def items(rng: random.Random, count: int, source: str, words: list[str]) -> list[Entry]:
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf
    out = []
    for n in range(count):
        title = text(rng, words, weights, rng.randint(8, 12))
        summary = text(rng, words, weights, rng.randint(25, 40))
        published = NOW - timedelta(minutes=rng.randint(0, 70 * 60))
        out.append(
            Entry(
                source_url=source,
                guid=f"{source}#{n}",
                link=f"{source}/a/{n}",
                title=title,
                summary=summary,
                published=published,
            )  # fmt: skip
        )
    return out


def reword(rng: random.Random, entry: Entry, n: int, source: str) -> Entry:
    words = (entry.summary or "").split()
    rng.shuffle(words)
    kept = words[: int(len(words) * 0.7)]
    return Entry(source_url=source, guid=f"{source}#copy{n}", link=f"{source}/copy/{n}",
                 title=entry.title, summary=" ".join(kept), published=entry.published)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=50_000)
    parser.add_argument("--new", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    words = vocabulary(rng, 30_000)
    stored = items(rng, args.stored, "https://old.example", words)
    fresh = items(rng, args.new, "https://new.example", words)
    for n in range(0, len(fresh), 10):
        fresh[n] = reword(rng, rng.choice(stored), n, "https://new.example")

    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "bench.sqlite")
        print(f"setting up a store of {args.stored} items...", flush=True)
        with store.transaction():
            store.ensure_source(Source("old", "https://old.example"))
            store.ensure_source(Source("new", "https://new.example"))
            # Every item is about the region: the others are never compared.
            kazakhstan = Classifier().classify_text("Kazakhstan")
            for entry in stored:
                signature = cluster.signature(entry.title, entry.summary)
                story = store.new_story(entry.guid, NOW)
                store.insert_item(
                    entry, placement=Placement(story), canonical_url=entry.link,
                    fingerprint=None, content_hash=entry.guid, signature=signature.dumps(),
                    classification=kazakhstan, now=NOW,
                )  # fmt: skip

        # 1. clustering alone
        started = time.perf_counter()
        ingester = Ingester(store, Classifier(), timedelta(days=30))
        index = ingester.index(NOW)
        built = time.perf_counter() - started
        joined = 0
        for n, entry in enumerate(fresh):
            signature = cluster.signature(entry.title, entry.summary)
            doc = cluster.Doc(-1 - n, -1 - n, entry.source_url, entry.published or NOW, signature)
            joined += index.find(doc) is not None
        alone = time.perf_counter() - started
        print(f"clustering: index of {len(index.docs)} items built in {built:.2f} s;"
              f" {args.new} new items placed in {alone:.2f} s in all"
              f" ({args.new / alone:,.0f} items/s); {joined} joined a story")  # fmt: skip

        # 2. the whole ingest, in a fresh ingester
        started = time.perf_counter()
        with store.transaction():
            counts = Ingester(store, Classifier(), timedelta(days=30)).ingest(
                "https://new.example",
                fresh,
                NOW,
                hint="kz",  # about the region, as above
            )
        whole = time.perf_counter() - started
        print(f"ingest: {counts.new} new items into a store of {args.stored} in {whole:.2f} s"
              f" ({counts.new / whole:,.0f} items/s), classification included")  # fmt: skip
        store.close()
    verdict = "meets" if alone < 10 else "MISSES"
    print(f"target: clustering {args.stored} + {args.new} under 10 s: {verdict}")


if __name__ == "__main__":
    main()

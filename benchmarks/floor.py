"""A refresh with no language work: imported first by the ``floor`` phase of
``python -m benchmarks.refresh --floor``, and by the server its worker
processes are forked from (it patches each process that imports it).

Every entry is stored as not about the region, without being classified,
signed for story clustering or fingerprinted. Everything else runs as in a
real refresh: fetching, parsing and sanitizing, content hashes, canonical
URLs and story ids, sending entries between processes, storing them one by
one, publishing. So its time is the least a cold refresh of this design can
take, however fast classification and clustering became (in native code, say).

Never imported by the aggregator itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from aggregator import prepare
from aggregator.classify import Classifier, decide
from aggregator.dedupe import canonical_url, story_uid
from aggregator.store import explanation_json
from aggregator.types import Entry

#: The outcome given to every entry: about nowhere, so dropped.
NOWHERE = decide(())


def bare_entries(
    entries: Sequence[tuple[Entry, str]],
    classifier: Classifier,
    hint: str | None = None,
    matches: bool = True,
) -> list[prepare.Prepared]:
    """:func:`aggregator.prepare.prepare_entries` without its language work
    (no matches to send either way)."""
    explanation = explanation_json(NOWHERE)
    return [
        prepare.Prepared(
            entry=entry,
            digest=digest,
            classification=NOWHERE,
            canonical=canonical_url(entry.link) if entry.link else None,
            fingerprint=None,
            signature=None,
            signature_json=None,
            explanation=explanation,
            story_uid=story_uid(entry),
        )
        for entry, digest in entries
    ]


prepare.prepare_entries = bare_entries  # type: ignore[assignment]
# The worker processes are forked from a server that imports this module too.
prepare._workers_context().set_forkserver_preload(["aggregator.preload", __name__])

"""When to fetch each source next (pure).

After a success, a source is fetched again after the configured interval, or
later if the server or the feed asks for it (``Cache-Control: max-age``, RSS
``<ttl>``), within the configured floor and ceiling. After a failure, retries
back off exponentially from the floor, with jitter so that sources failing
together do not retry together, up to the ceiling, and never give up; a
``Retry-After`` is honoured (within the ceiling). A source is due a little
before its time, so that a cron job every N minutes fetches a source with an
N-minute interval every time, not every other time.

Nothing here fetches or stores: the pipeline asks and records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .types import Config, Source

#: The most a successful source's next fetch is pushed back, as a factor.
JITTER_AFTER_SUCCESS = 1.05


@dataclass(frozen=True)
class Policy:
    """The scheduling settings of a configuration."""

    interval: timedelta
    floor: timedelta
    ceiling: timedelta

    @classmethod
    def from_config(cls, config: Config) -> Policy:
        floor = timedelta(minutes=config.min_interval_minutes)
        ceiling = max(floor, timedelta(minutes=config.max_interval_minutes))
        return cls(timedelta(minutes=config.interval_minutes), floor, ceiling)

    def clamp(self, delay: timedelta) -> timedelta:
        return min(self.ceiling, max(self.floor, delay))

    def for_source(self, source: Source) -> Policy:
        """This policy with the source's own ``interval_minutes``, if it has one."""
        if source.interval_minutes is None:
            return self
        return replace(self, interval=timedelta(minutes=source.interval_minutes))


def after_success(
    now: datetime,
    policy: Policy,
    max_age: float | None = None,
    ttl: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """The next fetch after a success: the interval, or the source's own
    max-age (seconds) or ttl (minutes) if longer, within floor and ceiling,
    plus up to 5 % of jitter (never earlier) so that sources added together
    drift apart."""
    rng = rng or random.Random()
    delay = policy.interval
    if max_age:
        delay = max(delay, timedelta(seconds=max_age))
    if ttl:
        delay = max(delay, timedelta(minutes=ttl))
    return now + policy.clamp(delay * rng.uniform(1.0, JITTER_AFTER_SUCCESS))


def after_failure(
    now: datetime,
    policy: Policy,
    failures: int,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """The next attempt after the ``failures``-th consecutive failure:
    floor x 2^(failures - 1), +-25 % jitter, at least ``retry_after`` seconds,
    at most the ceiling."""
    rng = rng or random.Random()
    exponent = min(max(failures, 1) - 1, 32)
    delay: timedelta = policy.floor * float(2**exponent) * rng.uniform(0.75, 1.25)
    if retry_after:
        delay = max(delay, timedelta(seconds=retry_after))
    return now + min(policy.ceiling, delay)


def is_due(next_attempt: datetime | None, now: datetime, policy: Policy) -> bool:
    """True when a source should be fetched now, allowing a tenth of the
    interval (at least a minute) of slack for runs that start a little early."""
    if next_attempt is None:
        return True
    slack = max(timedelta(minutes=1), policy.interval / 10)
    return next_attempt - now <= slack

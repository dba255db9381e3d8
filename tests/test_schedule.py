"""aggregator.schedule: when each source is fetched next (pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.schedule import Policy, after_failure, after_success, is_due

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
POLICY = Policy(
    interval=timedelta(minutes=30), floor=timedelta(minutes=5), ceiling=timedelta(hours=24)
)


@pytest.mark.parametrize(
    ("max_age", "ttl", "delay"),
    [
        (None, None, timedelta(minutes=30)),  # the interval
        (7200, None, timedelta(hours=2)),  # the server asks for longer
        (60, None, timedelta(minutes=30)),  # shorter than the interval: ignored
        (None, 120, timedelta(hours=2)),  # RSS <ttl> in minutes
        (7200, 240, timedelta(hours=4)),  # the longer of the two
        (10 * 86400, None, timedelta(hours=24)),  # within the ceiling
    ],
)
def test_after_success(max_age: float | None, ttl: float | None, delay: timedelta) -> None:
    next_time = after_success(NOW, POLICY, max_age, ttl, rng=random.Random(3))
    assert NOW + delay <= next_time <= NOW + min(delay * 1.05, POLICY.ceiling)


def test_sources_succeeding_together_drift_apart() -> None:
    rng = random.Random(2)
    assert len({after_success(NOW, POLICY, rng=rng) for _ in range(10)}) == 10


def test_after_failure_backs_off_exponentially_with_jitter_up_to_the_ceiling() -> None:
    rng = random.Random(7)
    delays = [after_failure(NOW, POLICY, n, rng=rng) - NOW for n in range(1, 12)]

    for n, delay in enumerate(delays, start=1):
        expected = POLICY.floor * 2 ** (n - 1)
        assert min(expected * 0.75, POLICY.ceiling) <= delay <= min(expected * 1.25, POLICY.ceiling)
    assert delays[-1] == POLICY.ceiling
    assert len({round(d.total_seconds()) for d in delays[:5]}) == 5


def test_jitter_spreads_sources_that_fail_together() -> None:
    rng = random.Random(1)
    times = {after_failure(NOW, POLICY, 3, rng=rng) for _ in range(20)}
    assert len(times) == 20


def test_retry_after_is_honoured_within_the_ceiling() -> None:
    assert after_failure(NOW, POLICY, 1, retry_after=3600) - NOW == timedelta(hours=1)
    assert after_failure(NOW, POLICY, 1, retry_after=10**7) - NOW == POLICY.ceiling


@pytest.mark.parametrize(
    ("next_attempt", "due"),
    [
        (None, True),
        (NOW - timedelta(minutes=1), True),
        (NOW + timedelta(minutes=2), True),  # a cron run a little early
        (NOW + timedelta(minutes=10), False),
    ],
)
def test_is_due(next_attempt: datetime | None, due: bool) -> None:
    assert is_due(next_attempt, NOW, POLICY) is due

"""The refresh benchmark runs end to end at a tiny size (its figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def run_benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.refresh`` with ``args``, checked to exit 0."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.refresh", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_refresh_benchmark_runs(backend: str, request: pytest.FixtureRequest) -> None:
    more = []
    if backend == "postgresql":
        more = ["--postgresql", request.getfixturevalue("postgres_server")]
    result = run_benchmark("--sizes", "3", "--items", "5", *more)
    rows = [line.split() for line in result.stdout.splitlines()]
    phases = {row[2] for row in rows if len(row) > 3 and row[:2] == ["3", "5"]}
    assert {"cold", "warm", "changed", "publish"} <= phases, result.stdout
    assert "!" not in result.stdout, result.stdout  # no unexpected counts or failures
    assert "targets:" in result.stdout


def test_refresh_benchmark_repeats_cold_and_warm_runs() -> None:
    result = run_benchmark("--sizes", "2", "--items", "3", "--repeat", "2")
    assert result.stdout.count("(median of 2 runs; wall") == 2, result.stdout  # cold, warm
    assert "!" not in result.stdout, result.stdout  # every run stored what it should


def test_refresh_benchmark_floor_skips_language_work_in_every_process() -> None:
    # 30 sources never fetched: the refresh prepares them in worker processes,
    # which must get the stand-in too (the benchmark notes it with "!" if not).
    result = run_benchmark("--sizes", "30", "--items", "2", "--floor")
    rows = [line.split() for line in result.stdout.splitlines()]
    phases = [row[2] for row in rows if len(row) > 3 and row[:2] == ["30", "2"]]
    assert phases[:2] == ["floor", "cold"], result.stdout
    assert "!" not in result.stdout, result.stdout

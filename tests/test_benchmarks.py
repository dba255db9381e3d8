"""The benchmark commands run (at a tiny size): their figures live in the README, not here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # Items stored and placed, and the reworded copies found (6 of the 60).
        (["benchmarks.clustering", "--stored", "300", "--new", "60"], "index of 300 items"),
        (["benchmarks.clustering", "--stored", "300", "--new", "60"], "6 joined a story"),
        (["benchmarks.classification"], "headlines-eval.json"),
        (["benchmarks.dedupe_pairs"], "merge precision"),
        (
            ["benchmarks.stages", "--sources", "3", "--items", "4", "--repeat", "1"],
            "prepare_entries",
        ),
    ],
)
def test_benchmark_runs(args: list[str], expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout

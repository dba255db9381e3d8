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
        (["benchmarks.clustering", "--stored", "300", "--new", "60"], "new items placed in"),
        (["benchmarks.classification"], "headlines-eval.json"),
        (["benchmarks.dedupe_pairs"], "merge precision"),
        (["benchmarks.stages", "--sources", "3", "--items", "4", "--repeat", "1"], "prepare_entry"),
    ],
)
def test_benchmark_runs(args: list[str], expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout

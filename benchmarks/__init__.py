"""Measurements anyone can run: ``python -m benchmarks.<name>``. Never run as timed tests."""

"""Curated news feeds about Central Asia: pull, deduplicate, classify, republish."""

__version__ = "0.1.0"

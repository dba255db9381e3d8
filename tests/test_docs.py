"""The docs are tested: README examples load, commands exist, the bundled config is sound."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from aggregator.cli import cli
from aggregator.config import load_config, parse_config

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)


def test_readme_feeds_yaml_examples_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every YAML example loads; a partial one (e.g. outputs:) joins the full one."""
    monkeypatch.setenv("AGGREGATOR_DATABASE", "postgresql://news:secret@db.internal/news")
    blocks = [yaml.safe_load(b) for b in yaml_blocks(README)]
    full = next(b for b in blocks if "sources" in b)
    assert len(blocks) >= 2
    for block in blocks:
        config = parse_config({**full, **block}, tmp_path / "feeds.yaml")
        assert config.sources


def test_readme_lists_every_command_and_only_real_ones() -> None:
    documented = set(re.findall(r"^\| `aggregator (\w+)", README, re.MULTILINE))
    assert documented == set(cli.commands)


def test_the_two_commands_are_make_targets_and_ci_runs_the_test_one() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("run", "test"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_bundled_feeds_yaml_is_valid_french_first_and_commented() -> None:
    config = load_config(ROOT / "feeds.yaml")

    assert len(config.sources) >= 12
    assert config.sources[0].language == "fr"
    assert {s.language for s in config.sources} >= {"fr", "en", "ru"}
    assert config.output.dir == ROOT / "output"
    text = (ROOT / "feeds.yaml").read_text(encoding="utf-8")
    languages = re.findall(r"^\s+language: \w+\s+# \S", text, re.MULTILINE)
    assert len(languages) == len(config.sources)  # every source says what it covers

# Two commands do all the set-up: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= feeds.yaml

.PHONY: run test lint demo clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files: reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/aggregator refresh --config $(CONFIG)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check aggregator tests benchmarks
	$(BIN)/ruff format --check aggregator tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) output demo-output *.egg-info

demo: $(VENV)/.installed
	$(BIN)/python -m aggregator.demo --samples demo --output demo-output

bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks.refresh --reader

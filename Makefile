# Two commands do all the set-up: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= feeds.yaml

.PHONY: run test lint demo clean bench postgresql-server

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

test: lint postgresql-server
	$(BIN)/pytest

# The tests start a PostgreSQL server of their own (tests/postgres.py) from
# Debian's packages, installed here when missing; AGGREGATOR_TEST_POSTGRES
# (a postgresql:// URI) uses an existing server instead.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
postgresql-server:
	@if [ -z "$$AGGREGATOR_TEST_POSTGRES" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing PostgreSQL (Debian package postgresql) for the tests"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi

clean:
	rm -rf $(VENV) output demo-output *.egg-info

demo: $(VENV)/.installed
	$(BIN)/python -m aggregator.demo --samples demo --output demo-output

bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks.refresh --reader --floor

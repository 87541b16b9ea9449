# The two commands: `make run` (serve the seed content) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2

.PHONY: install run dev test lint pytest fuzz bench bench-quick bench-peers openapi screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/cms serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

dev: install
	$(BIN)/cms serve --dev --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check cms tests
	$(BIN)/ruff format --check cms tests
	$(BIN)/mypy cms

pytest: install
	$(BIN)/pytest

test: lint pytest

# benchmarks: a table of ratios against baselines measured in the same run (OUTPUT=file.json)
OUTPUT ?= bench-results.json
bench: install
	$(BIN)/python tests/bench/bench.py --output $(OUTPUT)

bench-quick: install
	$(BIN)/python tests/bench/bench.py --quick --output $(OUTPUT)

# this CMS against Kinto on PostgreSQL, side by side (optional, not in CI; needs PostgreSQL at
# CMS_PEERS_POSTGRES, default postgresql://postgres@127.0.0.1:5432); Kinto lives in its own venv
PEERS := .venv-peers
bench-peers: install
	test -x $(PEERS)/bin/kinto || ($(PYTHON) -m venv $(PEERS) && \
		$(PEERS)/bin/python -m pip install --quiet 'kinto[postgresql]==26.5.*' 'gunicorn>=23,<28')
	$(BIN)/python tests/bench/peers.py --kinto $(PEERS)/bin --output peers-results.json

# a deeper schemathesis pass than the one in the test suite
fuzz: install
	CMS_FUZZ_EXAMPLES=$${CMS_FUZZ_EXAMPLES:-300} $(BIN)/pytest -q tests/test_fuzz.py

openapi: install
	$(BIN)/cms openapi

# the README's pictures of the editor app, taken by its browser tests
screenshots: install
	CMS_UPDATE_DOCS=1 $(BIN)/pytest -q tests/test_editor_app.py -k "sqlite and (typo or overwrite)"

clean:
	rm -rf $(VENV) $(PEERS) instance .pytest_cache .ruff_cache .mypy_cache

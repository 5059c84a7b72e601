# The two commands of the README: `make run` and `make test`. Both need only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Parallel workers for the test suite; the suite's wall time roughly halves on 2 cores.
TEST_WORKERS ?= 2

.PHONY: run test lint typecheck check install clean bench screenshots

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## run: the service on 127.0.0.1:8000 with SQLite, the Tavus simulator and the dev token issuer
run: $(STAMP)
	$(BIN)/facetoface migrate
	$(BIN)/facetoface seed-demo
	$(BIN)/facetoface serve

## test: lint, type-check and the whole test suite (SQLite and PostgreSQL)
test: $(STAMP) lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -q

## screenshots: run the browser tests and refresh the README's docs/console/*.png
screenshots: $(STAMP)
	UPDATE_DOCS_SCREENSHOTS=1 $(BIN)/pytest -q tests/console/test_console_browser.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## bench: the benchmark (not part of `make test`; PostgreSQL on 127.0.0.1:5432); see bench/README.md
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

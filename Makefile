# PoZapisi — every set-up step a newcomer needs lives here; .ci/run calls `make lint` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.lock pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint fmt bench loadtest landing lock catalogs messages browser redis pgbouncer wrk conformance clean

$(STAMP): requirements/dev.lock requirements/tools.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/tools.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r requirements/dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP) catalogs

catalogs: $(STAMP)
	@if ls app/locale/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
	  $(BIN)/pybabel -q compile -d app/locale -D messages || exit 1; fi

# Extract marked strings and merge them into the ru/kk/en catalogs (then translate ru and kk).
messages: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k N_ -k gettext -k ngettext:1,2 -k pgettext:1c,2 \
	  --no-location --sort-output --project PoZapisi -o app/locale/messages.pot .
	$(BIN)/pybabel -q update -i app/locale/messages.pot -d app/locale -D messages --no-fuzzy-matching

run: install
	$(BIN)/pozapisi run --host $(HOST) --port $(PORT)

# What the tests need beyond Python, from Debian's packages (tools/debian-package.sh installs
# one when missing and we are root): Chromium for the browser tests (Playwright cannot download
# browsers here); redis-server and pgbouncer, which the queue and scale-out tests start on
# free loopback ports of their own (no system service is used); wrk, under which a test runs
# make loadtest's request script.
browser:
	@sh tools/debian-package.sh chromium "the browser tests" chromium chromium-browser

redis:
	@sh tools/debian-package.sh redis-server "the Redis queue tests" redis-server

pgbouncer:
	@sh tools/debian-package.sh pgbouncer "the PgBouncer tests" pgbouncer

wrk:
	@sh tools/debian-package.sh wrk "the load test's wrk script test" wrk

landing: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet

test: install browser redis pgbouncer wrk landing
	@export TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$($(BIN)/python -m app.db.probe 127.0.0.1 5432)}"; \
	echo "external PostgreSQL for tests: $${TEST_DATABASE_URL:-none (embedded server only)}"; \
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider $(PYTEST_ARGS)

# lint-imports keeps the layers .importlinter names (routes -> security -> domain -> db).
lint: install
	$(BIN)/ruff check app workers tests bench landing_hooks tools
	$(BIN)/ruff format --check app workers tests bench landing_hooks tools
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff check --fix app workers tests bench landing_hooks tools
	$(BIN)/ruff format app workers tests bench landing_hooks tools

bench: install
	$(BIN)/python -m bench

# Mixed traffic over 100 businesses on an embedded PostgreSQL of its own, restarted once under
# load while a worker is killed (bench/loadtest.py); fails if an acknowledged booking is lost.
loadtest: install
	$(BIN)/python -m bench.loadtest

# docs/policy-conformance.md: every policy clause with the tests marked for it (collected, not
# run: no database needed) or its deployment check; tests/privacy/test_conformance.py compares.
conformance: install
	$(BIN)/python tools/conformance.py

# Regenerate the hashed locks (records no index host).
lock:
	uv pip compile --quiet --generate-hashes --python-version 3.11 --extra dev pyproject.toml -o requirements/dev.lock
	uv pip compile --quiet --generate-hashes --python-version 3.11 requirements/tools.in -o requirements/tools.lock

clean:
	rm -rf $(VENV) site .pozapisi

# Chat Connect — every command a developer or CI needs. `make` alone lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(PY) -m flask --app wsgi
PYTEST := $(PY) -m pytest
STAMP := $(VENV)/.installed
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: help install run test lint fmt typecheck test-sqlite test-postgres test-e2e db-check \
        db-upgrade db-revision requirements i18n bench browser e2e-deps clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned dependencies

run: $(STAMP) ## Serve the portal, sandbox providers and worker with demo data (http://127.0.0.1:5000)
	@mkdir -p instance
	$(FLASK) db upgrade
	$(FLASK) demo load
	$(PY) scripts/run_dev.py

test: $(STAMP) lint typecheck test-sqlite test-postgres db-check test-e2e ## Everything CI runs
	@echo "make test: all checks passed"

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(STAMP) ## Format and fix imports
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(STAMP) ## mypy (strict)
	$(VENV)/bin/mypy

test-sqlite: $(STAMP) ## Test suite on SQLite, with coverage
	$(PYTEST) -q --ignore=tests/e2e --cov=portal --cov-report=term:skip-covered

test-postgres: $(STAMP) ## Test suite on PostgreSQL (127.0.0.1:5432; the test database is created)
	@$(PY) scripts/require_postgres.py "$(PG_URL)"
	TEST_DATABASE_URL="$(PG_URL)" $(PYTEST) -q --ignore=tests/e2e --ignore=tests/sandbox

db-check: $(STAMP) ## Migrations: upgrade an empty database, then `flask db check`
	@rm -f /tmp/chat-connect-dbcheck.sqlite3
	DATABASE_URL=sqlite:////tmp/chat-connect-dbcheck.sqlite3 $(FLASK) db upgrade
	DATABASE_URL=sqlite:////tmp/chat-connect-dbcheck.sqlite3 $(FLASK) db check
	@rm -f /tmp/chat-connect-dbcheck.sqlite3

browser: ## Install Debian's Chromium and a Japanese font when missing (root)
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi ipagothic; then \
	  echo "Installing chromium and fonts-ipafont-gothic with apt…"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-ipafont-gothic >/dev/null; \
	fi
	@test -x /usr/bin/chromium || { echo "Chromium is unavailable: browser tests cannot run"; exit 1; }

# axe-core for the accessibility checks, at the version pinned in tests/e2e/package-lock.json.
E2E_NODE := tests/e2e/node_modules/.package-lock.json
$(E2E_NODE): tests/e2e/package.json tests/e2e/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing (apt-get install npm): browser tests cannot run"; exit 1; }
	npm ci --prefix tests/e2e --ignore-scripts --no-audit --no-fund
	@touch $(E2E_NODE)

e2e-deps: $(E2E_NODE) ## Install the browser tests' npm packages (axe-core) from the lock file

test-e2e: $(STAMP) browser e2e-deps ## Browser tests in headless Chromium (screenshots in artifacts/)
	$(PYTEST) -q tests/e2e

db-upgrade: $(STAMP) ## Apply migrations to the configured database
	$(FLASK) db upgrade

db-revision: $(STAMP) ## New migration: make db-revision m="what changed"
	$(FLASK) db migrate -m "$(m)"

i18n: $(STAMP) ## Re-extract messages into the catalogs (then translate ja)
	$(PY) scripts/i18n.py update

requirements: ## Re-compile requirements*.txt from the .in files in a clean venv
	rm -rf /tmp/cc-req && python3 -m venv /tmp/cc-req
	/tmp/cc-req/bin/pip install --quiet -r requirements.in
	(echo "# Generated from requirements.in by 'make requirements'. Do not edit by hand."; \
	  /tmp/cc-req/bin/pip freeze --exclude pip) > requirements.txt
	/tmp/cc-req/bin/pip install --quiet -r requirements-dev.in
	(echo "# Generated from requirements-dev.in by 'make requirements'. Do not edit by hand."; \
	  echo "-r requirements.txt"; /tmp/cc-req/bin/pip freeze --exclude pip | grep -vxFf requirements.txt) > requirements-dev.txt

bench: $(STAMP) ## Every benchmark, short settings, one table (make bench BENCH_ARGS=--full for the published figures)
	$(PY) bench/all.py $(BENCH_ARGS)

clean: ## Remove caches and local databases (keeps .venv)
	rm -rf instance/*.sqlite3* artifacts .pytest_cache .mypy_cache .ruff_cache .coverage

# Every target installs what it needs into .venv (and client/node_modules) first.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
SPEED ?= 4
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help run docs test test-unit test-py test-client lint client install clean redis-server nginx chromium bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found (Python 3.11 is required)" >&2; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,fast]'
	@touch $@

install: $(STAMP) ## create .venv and install the package with test tools

client/node_modules/.installed: client/package-lock.json
	cd client && npm ci --no-audit --no-fund
	@touch $@

client: client/node_modules/.installed ## build the demo page and the /docs page into realtime/static
	cd client && npm run build

run: install client ## start the service (SQLite, demo mode) and the demo worker on $(PORT)
	@echo "realtime on http://127.0.0.1:$(PORT)  (demo worker at --speed $(SPEED); Ctrl-C stops both)"
	@$(BIN)/python -m realtime migrate >/dev/null
	@$(BIN)/python -m realtime worker --speed $(SPEED) & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	PORT=$(PORT) $(BIN)/python -m realtime serve --demo

redis-server: ## install Debian's redis-server when missing (tests start private ones)
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }

nginx: ## install Debian's nginx when missing (the production-guide test)
	@command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }

chromium: ## install Debian's chromium when missing (browser tests)
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

lint: install ## ruff, mypy --strict, and the import-linter contracts (arrows point inward)
	$(BIN)/ruff format --check realtime tests bench
	$(BIN)/ruff check realtime tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m realtime.web.reference --check

docs: install ## regenerate docs/socketio.md and docs/configuration.md from the code
	$(BIN)/python -m realtime.web.reference

test-unit: install ## the fast loop: pure unit tests only (no database, no sockets), ~1 s
	$(BIN)/pytest -q -p no:cacheprovider tests/unit

test-py: install redis-server nginx client/node_modules/.installed ## the Python suites (unit, integration, e2e; the drain test drives Node clients)
	$(BIN)/pytest -q -p no:cacheprovider

test-client: install client chromium ## the client's type check, unit tests and browser tests
	cd client && npm run typecheck && npm test && npm run e2e && npm run test:package

test: lint test-py test-client ## everything CI runs

bench: install redis-server ## ours vs bare python-socketio vs Node socket.io, then ours on a Redis Cluster, bench.receive and bench.memory (~15 min; BENCH_ARGS=--quick ~3 min, BENCH_ARGS=--pin pins the server to CPU 0)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: ## remove build products (keeps .venv)
	rm -rf build dist *.egg-info realtime/static client/dist

# The two commands: `make run` (the shop on the embedded Klevu simulator) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 5000
SIMULATOR_PORT ?= 5001

.PHONY: run test lint install install-test system-test-deps system-bench-deps bench clean screenshots

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,lint]'
	touch $@

install: $(VENV)/.installed
## Klevu's own SDK, the reference tests/integration/test_klevu_core_differential.py runs
## (the version pinned in package.json, exactly as package-lock.json resolves it).
node_modules/.installed: package.json package-lock.json | system-test-deps
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install-test: $(VENV)/.installed-test node_modules/.installed

## Start the Klevu simulator and the shop; Ctrl-C stops both. PACK=<scenario pack name or file>
## starts the simulator in that scenario pack (a recorded one too: `flask klevu record`).
run: install
	$(PY) -m storefront --host $(HOST) --port $(PORT) --simulator-port $(SIMULATOR_PORT) \
	  $(if $(PACK),--pack $(PACK))

## Debian's Chromium for Playwright (its own browser download cannot work here), Redis, and
## Node.js with npm (Klevu's SDK runs in it).
system-test-deps:
	@command -v chromium >/dev/null && command -v redis-server >/dev/null && command -v npm >/dev/null || { \
	  echo "make system-test-deps: installing Debian's chromium, redis-server and npm with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server nodejs npm >/dev/null; }

## wrk, the load generator of `make bench` (C: it costs the shared cores little next to the shop),
## and valgrind, whose callgrind counts the instructions of a page (bench/bench_instructions.py).
system-bench-deps:
	@command -v wrk >/dev/null && command -v callgrind_control >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk valgrind >/dev/null; }

## ruff (lint and format) and mypy; settings and the reasons for the rule set in pyproject.toml.
lint: install-test
	$(VENV)/bin/ruff check storefront bench tests
	$(VENV)/bin/ruff format --check storefront bench tests
	$(VENV)/bin/mypy

test: system-test-deps lint
	$(PY) -m pytest

## Redo the README's screenshots of the inspector and the demo console from the running shop.
screenshots: install-test system-test-deps
	$(PY) -m pytest -q tests/e2e/test_demo_screens.py tests/e2e/test_demo_tools.py --update-screenshots

## One table: banner pages vs plain pages, Klevu slow/hung/down, the beacon (~2 min).
## Banner rendering (V8 vs QuickJS, sandbox probes; ~20 s), then pages under Klevu latency,
## then instructions per page under callgrind (~1.5 min), then the outbox's durable events/s,
## SQLite vs Redis Streams (~2 min).
bench: install-test system-bench-deps
	$(PY) -m bench.bench_render
	$(PY) -m bench.bench_pages
	$(PY) -m bench.bench_instructions
	$(PY) -m bench.bench_outbox

clean:
	rm -rf $(VENV) instance .pytest_cache node_modules

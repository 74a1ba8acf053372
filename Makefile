# The two commands: `make run` (the shop on the embedded Klevu simulator) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 5000
SIMULATOR_PORT ?= 5001

.PHONY: run test lint install install-test system-test-deps bench clean screenshots

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,lint]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Start the Klevu simulator and the shop; Ctrl-C stops both.
run: install
	$(PY) -m storefront --host $(HOST) --port $(PORT) --simulator-port $(SIMULATOR_PORT)

## Debian's Chromium for Playwright (its own browser download cannot work here), and Redis.
system-test-deps:
	@command -v chromium >/dev/null && command -v redis-server >/dev/null || { \
	  echo "make system-test-deps: installing Debian's chromium and redis-server with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server >/dev/null; }

## ruff (lint and format) and mypy; settings and the reasons for the rule set in pyproject.toml.
lint: install-test
	$(VENV)/bin/ruff check storefront bench tests
	$(VENV)/bin/ruff format --check storefront bench tests
	$(VENV)/bin/mypy

test: system-test-deps lint
	$(PY) -m pytest

## Redo the README's screenshots of the inspector and the demo console from the running shop.
screenshots: install-test system-test-deps
	$(PY) -m pytest -q tests/e2e/test_demo_screens.py --update-screenshots

## One table: banner pages vs plain pages, Klevu slow/hung/down, the beacon (~2 min).
## Banner rendering (V8 vs QuickJS, sandbox probes; ~20 s), then pages under Klevu latency,
## then the outbox's durable events/s, SQLite vs Redis Streams (~30 s).
bench: install-test
	$(PY) -m bench.bench_render
	$(PY) -m bench.bench_pages
	$(PY) -m bench.bench_outbox

clean:
	rm -rf $(VENV) instance .pytest_cache

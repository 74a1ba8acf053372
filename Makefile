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
install-test: $(VENV)/.installed-test

## Start the Klevu simulator and the shop; Ctrl-C stops both.
run: install
	$(PY) -m storefront --host $(HOST) --port $(PORT) --simulator-port $(SIMULATOR_PORT)

## Debian's Chromium for Playwright (its own browser download cannot work here), and Redis.
system-test-deps:
	@command -v chromium >/dev/null && command -v redis-server >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server >/dev/null; }

## wrk, the load generator of `make bench` (C: it costs the shared cores little next to the shop).
system-bench-deps:
	@command -v wrk >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

## ruff (lint and format) and mypy; settings and the reasons for the rule set in pyproject.toml.
lint: install-test
	$(VENV)/bin/ruff check storefront bench tests
	$(VENV)/bin/ruff format --check storefront bench tests
	$(VENV)/bin/mypy

test: lint system-test-deps
	$(PY) -m pytest

## Redo the README's screenshots of the inspector and the demo console from the running shop.
screenshots: install-test system-test-deps
	$(PY) -m pytest -q tests/e2e/test_demo_screens.py --update-screenshots

## One table: banner pages vs plain pages, Klevu slow/hung/down, the beacon (~2 min).
## Banner rendering (V8 vs QuickJS, sandbox probes; ~20 s), then pages under Klevu latency.
bench: install-test system-bench-deps
	$(PY) bench/bench_render.py
	$(PY) bench/bench_pages.py

clean:
	rm -rf $(VENV) instance .pytest_cache

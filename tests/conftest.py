"""Fixtures shared by unit, integration and browser tests.

Real parts: the Klevu simulator runs as its own process on a free loopback port, and the shop
under test is served by a real Werkzeug server in a thread, so every Klevu call and every page
goes over real HTTP. Chromium is Debian's (Playwright cannot download its own here).
"""

from __future__ import annotations

import os
import time

import pytest

from storefront import create_app
from tests.helpers import CHROMIUM, LiveServer, app_config, free_port, start_redis, start_simulator

# Banner templates print dates in the process's time zone, as a browser does in its computer's;
# the template corpus expects UTC. Set before any engine starts (V8 reads TZ once).
os.environ["TZ"] = "UTC"
time.tzset()


@pytest.fixture(scope="session")
def simulator():
    sim = start_simulator()
    yield sim
    sim.process.terminate()
    sim.process.wait(timeout=10)


@pytest.fixture
def sim(simulator):
    """The session's simulator, reset (state, faults) before the test."""
    simulator.reset()
    yield simulator
    simulator.reset()


@pytest.fixture
def app(tmp_path):
    """An app whose Klevu is unreachable (a closed port): pages must still render."""
    app = create_app(
        app_config(f"http://127.0.0.1:{free_port()}", tmp_path, OUTBOX_RELAY_IN_APP=False)
    )
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_shop(simulator, tmp_path_factory):
    """The shop on a real socket, talking to the simulator over real HTTP."""
    # Klevu answers uncached: these tests read what each page asked Klevu for in the
    # simulator's journal (the answers cache has its own tests, test_answers*.py).
    app = create_app(
        app_config(
            simulator.url,
            tmp_path_factory.mktemp("shop-data"),
            KLEVU_CONFIG_TTL="0",
            KLEVU_SEARCH_TTL="0",
        )
    )
    server = LiveServer(app)
    yield server
    server.stop()


# -- Playwright: Debian's Chromium, the live shop as base_url ----------------------------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session")
def base_url(live_shop):
    return live_shop.url


def pytest_addoption(parser):
    parser.addoption(
        "--update-screenshots",
        action="store_true",
        help="copy the demo screens' screenshots into docs/ (README images)",
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


# -- Redis: a real redis-server for the shared cache (segments across app processes) -----------
# Used by tests/integration/test_segments_http.py (several app processes share one cache).
@pytest.fixture(scope="session")
def redis_server():
    """A throwaway redis-server for the session (several app processes share one cache)."""
    try:
        process, url = start_redis()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server):
    """The session's redis-server, emptied before the test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    client.close()
    return redis_server

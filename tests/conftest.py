"""Fixtures shared by unit, integration and browser tests.

Real parts: the Klevu simulator runs as its own process on a free loopback port, and the shop
under test is served by a real Werkzeug server in a thread, so every Klevu call and every page
goes over real HTTP. Chromium is Debian's (Playwright cannot download its own here).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from werkzeug.serving import make_server

from storefront import create_app
from storefront.config import from_env

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Simulator:
    """A running simulator process and its control endpoints (``/_sim/...``)."""

    def __init__(self, url: str, process: subprocess.Popen):
        self.url = url
        self.process = process

    def reset(self) -> None:
        requests.post(f"{self.url}/_sim/reset", timeout=5).raise_for_status()

    def state(self) -> dict:
        return requests.get(f"{self.url}/_sim/state", timeout=5).json()

    def events(self) -> dict:
        return requests.get(f"{self.url}/_sim/events", timeout=5).json()

    def faults(self, **faults) -> None:
        requests.post(f"{self.url}/_sim/faults", json=faults, timeout=5).raise_for_status()

    def settings(self, **settings) -> None:
        requests.post(f"{self.url}/_sim/settings", json=settings, timeout=5).raise_for_status()


def start_simulator(port: int | None = None) -> Simulator:
    port = port or free_port()
    process = subprocess.Popen([sys.executable, "-m", "storefront.simulator", "--host",
                                "127.0.0.1", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/healthz")
    return Simulator(url, process)


@pytest.fixture(scope="session")
def simulator():
    sim = start_simulator()
    yield sim
    sim.process.terminate()
    sim.process.wait(timeout=10)


@pytest.fixture()
def sim(simulator):
    """The session's simulator, reset (state, faults) before the test."""
    simulator.reset()
    yield simulator
    simulator.reset()


def app_config(simulator_url: str, data_dir, **overrides) -> dict:
    env = {"KLEVU_SIMULATOR_URL": simulator_url, "STOREFRONT_DATA_DIR": str(data_dir)}
    env.update({k: v for k, v in overrides.items() if k.isupper() and isinstance(v, str)})
    config = from_env(env)
    config.update({"TESTING": True, "SECRET_KEY": "test-secret"})
    config.update({k: v for k, v in overrides.items() if not isinstance(v, str)})
    return config


@pytest.fixture()
def app(tmp_path):
    """An app whose Klevu is unreachable (a closed port): pages must still render."""
    app = create_app(app_config(f"http://127.0.0.1:{free_port()}", tmp_path,
                                OUTBOX_RELAY_IN_APP=False))
    yield app


@pytest.fixture()
def client(app):
    return app.test_client()


class LiveServer:
    def __init__(self, app, host="127.0.0.1"):
        self.app = app
        self.server = make_server(host, 0, app, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture(scope="session")
def live_shop(simulator, tmp_path_factory):
    """The shop on a real socket, talking to the simulator over real HTTP."""
    app = create_app(app_config(simulator.url, tmp_path_factory.mktemp("shop-data")))
    server = LiveServer(app)
    yield server
    server.stop()


# -- Playwright: Debian's Chromium, the live shop as base_url ----------------------------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync"]}


@pytest.fixture(scope="session")
def base_url(live_shop):
    return live_shop.url


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


# -- Redis: a real redis-server for the shared cache (segments across app processes) -----------
# Used by tests/integration/test_segments_http.py (several app processes share one cache).
@pytest.fixture(scope="session")
def redis_server():
    """A throwaway redis-server on a free loopback port, without persistence; its URL."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (`make test` installs it)")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not come up") from None
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture()
def redis_url(redis_server):
    """The session's redis-server, emptied before the test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    client.close()
    return redis_server

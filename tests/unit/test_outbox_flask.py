"""The Flask side: the extension, the in-app relay's start, and ``flask relay``."""

from __future__ import annotations

import os
import threading
import time

import pytest
from flask import Flask

from storefront.config import from_env
from storefront.klevu import CLIENT, klevu_client
from storefront.klevu.analytics import delivery
from storefront.klevu.analytics.delivery import outbox, relay_runner
from storefront.klevu.analytics.outbox import OutboxStore
from storefront.klevu.analytics.relay import RelayRunner, lock_holder
from tests.helpers import DEMO_ENV, wait_until


class FakeKlevuClient:
    def __init__(self):
        self.delivered: list[str] = []

    def collect(self, events: list[dict], event_ids: list[str] | None = None) -> None:
        self.delivered.extend(event_ids or [])


def fake_client(app: Flask) -> FakeKlevuClient:
    client = klevu_client(app)
    assert isinstance(client, FakeKlevuClient)
    return client


def make_app(data_dir, **config) -> Flask:
    app = Flask(__name__)
    app.config.update(from_env({**DEMO_ENV, "STOREFRONT_DATA_DIR": str(data_dir)}), **config)
    app.extensions[CLIENT] = FakeKlevuClient()  # before the relay binds to the app
    delivery.init_app(app)  # registers `flask relay` too

    @app.get("/ping")
    def ping():
        return "pong"

    return app


@pytest.fixture
def runners():
    """Stops every in-app relay a test started, so no thread outlives its temp dir."""
    started: list[RelayRunner] = []
    yield started
    for runner in started:
        runner.stop()


def test_init_app_registers_the_store_the_relay_and_the_command(tmp_path):
    app = make_app(tmp_path)
    assert isinstance(outbox(app), OutboxStore)
    assert isinstance(relay_runner(app), RelayRunner)
    assert app.config["OUTBOX_RELAY_IN_APP"] is True
    assert outbox(app).max_events == app.config["OUTBOX_MAX_EVENTS"] == 100_000
    assert "relay" in app.cli.commands
    assert outbox(app).path == os.path.join(tmp_path, "outbox.sqlite3")


def test_the_relay_starts_with_the_first_request_and_delivers(tmp_path, runners):
    app = make_app(tmp_path)
    runners.append(relay_runner(app))
    outbox(app).put([("e1", {"event": "view_recs_list"})])
    others = {t for t in threading.enumerate() if t.name == "outbox-relay"}  # other tests' apps
    assert lock_holder(outbox(app).lock_path) is None, "no relay before a request"
    assert app.test_client().get("/ping").data == b"pong"
    client = fake_client(app)
    wait_until(lambda: client.delivered == ["e1"])
    wait_until(lambda: lock_holder(outbox(app).lock_path) == os.getpid())
    app.test_client().get("/ping")
    relay_threads = [
        t for t in threading.enumerate() if t.name == "outbox-relay" and t not in others
    ]
    assert len(relay_threads) == 1, "later requests must not start more relays"


def test_the_in_app_relay_can_be_switched_off(tmp_path):
    app = make_app(tmp_path, OUTBOX_RELAY_IN_APP=False)
    outbox(app).put([("e1", {})])
    app.test_client().get("/ping")
    time.sleep(0.2)
    assert fake_client(app).delivered == []
    assert lock_holder(outbox(app).lock_path) is None


def test_flask_relay_delivers_in_the_foreground_until_stopped(tmp_path):
    app = make_app(tmp_path, OUTBOX_RELAY_IN_APP=False)
    outbox(app).put([("e1", {}), ("e2", {})])
    client = fake_client(app)
    runner = relay_runner(app)

    def stop_when_delivered():
        wait_until(lambda: len(client.delivered) == 2)
        runner.stop()

    stopper = threading.Thread(target=stop_when_delivered)
    stopper.start()
    result = app.test_cli_runner().invoke(args=["relay"])
    stopper.join()
    assert result.exit_code == 0, result.output
    assert "relaying" in result.output
    assert client.delivered == ["e1", "e2"]
    assert lock_holder(outbox(app).lock_path) is None

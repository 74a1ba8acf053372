"""Step 4's Flask glue: the app's outbox, its relay to Klevu's collector, and ``flask relay``.

The queue (``outbox.py``) knows nothing of who empties it, and the relay (``relay.py``)
nothing of Flask: this extension binds the two to an app, as sentry-python's transport hands
its queue to a worker. It registers its own CLI command, as flaskr's database extension does.

The in-app relay (``relay_runner()``) starts on the
process's first request rather than here, because only serving processes should relay: not
the Werkzeug reloader's watcher, not a gunicorn master that preloads the app, not ``flask
routes``. Every serving process then competes for the lock, so exactly one relays and a dead
one is replaced. It sends through ``klevu_client(app)``, looked up at each send, so a client
replaced after start-up (as tests do) is the one used.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .. import klevu_client
from .outbox import OutboxStore, Store
from .relay import Relay, RelayRunner, lock_holder

OUTBOX, RELAY = "klevu.outbox", "klevu.relay"  # app.extensions keys, read through the accessors


def open_store(config: Mapping) -> Store:
    """``OUTBOX_URL``'s queue: Redis Streams for a redis:// URL, else SQLite in the directory
    it names (the data directory when unset)."""
    url, data_dir = config["OUTBOX_URL"], config["STOREFRONT_DATA_DIR"]
    max_events, client_share = config["OUTBOX_MAX_EVENTS"], config["OUTBOX_CLIENT_SHARE"] / 100
    if url and "://" in url:
        from .outbox_redis import RedisOutbox

        return RedisOutbox(url, data_dir, max_events=max_events, client_share=client_share)
    return OutboxStore(url or data_dir, max_events=max_events, client_share=client_share)


def init_app(app: Flask) -> None:
    store = open_store(app.config)

    def send(events: list[dict], event_ids: list[str]) -> None:
        klevu_client(app).collect(events, event_ids)

    runner = RelayRunner(
        Relay(
            store,
            send,
            max_attempts=app.config["OUTBOX_MAX_ATTEMPTS"],
            max_age=app.config["OUTBOX_MAX_AGE"],
            lease_seconds=app.config["OUTBOX_LEASE_SECONDS"],
        )
    )
    app.extensions[OUTBOX] = store
    app.extensions[RELAY] = runner
    if app.config["OUTBOX_RELAY_IN_APP"]:
        app.before_request(runner.start)
    app.cli.add_command(relay_command)


def outbox(app: Flask | None = None) -> Store:
    """The app's durable event queue (``current_app``'s by default)."""
    return (app or current_app).extensions[OUTBOX]


def relay_runner(app: Flask | None = None) -> RelayRunner:
    """The app's relay, started on a serving process's first request."""
    return (app or current_app).extensions[RELAY]


def health() -> dict:
    """The outbox's numbers and which process relays it, for ``/healthz``."""
    store = outbox()
    pid = lock_holder(store.lock_path)
    return {**store.stats(), "relay": {"running": pid is not None, "pid": pid or None}}


@click.command("relay")
@with_appcontext
def relay_command() -> None:
    """Deliver the analytics outbox to Klevu, in the foreground, until Ctrl-C or SIGTERM.

    Waits as a standby while another process (an app worker) holds the relay lock.
    """
    runner = relay_runner()
    previous = signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    click.echo(f"relaying {runner.relay.store.path} (pid {os.getpid()}); Ctrl-C stops")
    try:
        runner.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)

"""Every accepted event reaches the collector, over real sockets, through faults and kill -9.

The collector is a small WSGI app on 127.0.0.1 (a thread of this test) that fails a third of
requests (500, or 503 with ``Retry-After: 1``), rejects any batch holding a "poison" event
with 400, and is switched off for a while (connection refused). Two app workers (this file
run as a script: a Flask app with the ``Delivery`` extension and the real ``KlevuClient``,
served by Werkzeug) share one data directory; the test posts events to them as a beacon
would, retrying on the other worker when one does not answer. Twice, the collector records
a batch and then SIGKILLs the worker that sent it before answering 200 (the worst moment:
delivered, but the relay never learns it), and the test restarts that worker.

Accepted means a worker answered 202. Every accepted event must arrive at least once;
duplicates may only come from the two interrupted batches, and are counted and printed. The
same test through the real app and the simulator only swaps the worker app and the collector.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from storefront.klevu.analytics.outbox import OutboxStore
from storefront.klevu.analytics.relay import lock_holder
from storefront.klevu.client import EVENT_IDS_HEADER
from tests.helpers import wait_until

RUN_SECONDS = 5.0
POISON_EVERY = 97


class Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class Collector:
    """Klevu's collect endpoint with faults; counts what it received per event id."""

    def __init__(self, seed: int = 1):
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.flaky = True
        self.received: Counter[str] = Counter()
        # status codes answered, by self.flaky
        self.answers: dict[bool, Counter[int]] = {True: Counter(), False: Counter()}
        self.in_flight = 0
        self.max_in_flight = 0
        # called once, after recording, before the 200
        self.on_delivery: Callable[[], None] | None = None
        self.interrupted: list[list[str]] = []
        self.server: BaseWSGIServer | None = None
        self.port = 0

    def __call__(self, environ, start_response):
        request = Request(environ)
        events = json.loads(request.get_data())
        ids = request.headers.get(EVENT_IDS_HEADER, "").split(",")
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            roll = self.rng.random()
        try:
            time.sleep(0.002)  # a request takes a little time
            if any(event.get("poison") for event in events):
                response = Response("bad event", status=400)
            elif self.flaky and roll < 1 / 6:
                response = Response("boom", status=500)
            elif self.flaky and roll < 1 / 3:
                response = Response("busy", status=503, headers={"Retry-After": "1"})
            else:
                response = Response(status=200)
                with self.lock:
                    self.received.update(ids)
                    interrupt, self.on_delivery = self.on_delivery, None
                if interrupt:
                    self.interrupted.append(ids)
                    interrupt()
            with self.lock:
                self.answers[self.flaky][response.status_code] += 1
            return response(environ, start_response)
        finally:
            with self.lock:
                self.in_flight -= 1

    def up(self) -> None:
        self.server = make_server(
            "127.0.0.1", self.port, self, threaded=True, request_handler=Quiet
        )
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        assert self.server is not None, "down() before up()"
        self.server.shutdown()
        self.server.server_close()


class Worker:
    """An app worker process; its port comes on its first line of output."""

    def __init__(self, data_dir: str, collector_url: str):
        with open(os.path.join(data_dir, "workers.err"), "a") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, data_dir, collector_url],
                stdout=subprocess.PIPE,
                cwd=Path(__file__).parents[2],
                stderr=errors,
                text=True,
            )
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


class Producer:
    """Posts events like the beacon: 1-4 per post, the same ids again on another worker when
    a post gets no 202 (the event may or may not have been stored: ids make that safe)."""

    def __init__(self, workers: list[Worker], name: str):
        self.workers = workers
        self.name = name
        self.accepted: set[str] = set()
        self.poison: set[str] = set()
        self.failed_posts = 0
        self.http = requests.Session()

    def run(self, stop: threading.Event) -> None:
        rng = random.Random(self.name)
        counter = itertools.count()
        while not stop.is_set():
            batch = []
            for _ in range(rng.randint(1, 4)):
                n = next(counter)
                event_id = f"{self.name}-{n}"
                payload: dict[str, Any] = {
                    "event": "select_recs_list",
                    "event_data": {"list_id": event_id},
                }
                if n % POISON_EVERY == POISON_EVERY - 1:
                    payload["poison"] = True
                batch.append((event_id, payload))
            for attempt in range(20):
                worker = self.workers[(n + attempt) % len(self.workers)]
                try:
                    if (
                        self.http.post(f"{worker.url}/events", json=batch, timeout=2).status_code
                        == 202
                    ):
                        break
                except requests.RequestException:
                    pass
                self.failed_posts += 1
                time.sleep(0.05)
            else:
                continue
            for event_id, payload in batch:
                (self.poison if payload.get("poison") else self.accepted).add(event_id)
            time.sleep(0.004)


def kill_the_relay_mid_delivery(
    collector: Collector,
    workers: list[Worker],
    store: OutboxStore,
    data_dir: str,
    collector_url: str,
) -> None:
    killed = threading.Event()
    victims: list[Worker] = []

    def kill_sender() -> None:
        holder = lock_holder(store.lock_path)
        assert holder is not None, "a delivery without a relay holding the lock"
        victims.extend(worker for worker in workers if worker.process.pid == holder)
        os.kill(holder, signal.SIGKILL)
        killed.set()

    collector.on_delivery = kill_sender
    assert killed.wait(10), "no delivery to interrupt"
    victims[0].kill()
    workers[workers.index(victims[0])] = Worker(data_dir, collector_url)


def test_every_accepted_event_arrives_through_faults_and_kill_9(tmp_path):
    data_dir = str(tmp_path)
    collector = Collector()
    collector.up()
    collector_url = f"http://127.0.0.1:{collector.port}"
    store = OutboxStore(data_dir)
    workers = [Worker(data_dir, collector_url) for _ in range(2)]
    producers = [Producer(workers, name) for name in ("a", "b")]
    stop = threading.Event()
    threads = [threading.Thread(target=p.run, args=(stop,)) for p in producers]
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()

        def kill():
            kill_the_relay_mid_delivery(collector, workers, store, data_dir, collector_url)

        timeline = [(1.0, kill), (2.0, collector.down), (3.5, collector.up), (4.0, kill)]
        for at, action in timeline:
            time.sleep(max(0.0, started + at - time.monotonic()))
            action()
        time.sleep(max(0.0, started + RUN_SECONDS - time.monotonic()))
        stop.set()
        for thread in threads:
            thread.join()
        collector.flaky = False
        accepted = set().union(*(p.accepted for p in producers))
        poison = set().union(*(p.poison for p in producers))
        wait_until(
            lambda: accepted <= set(collector.received) and not store.stats()["depth"],
            30,
            "the outbox did not drain within 30 s of the collector's recovery",
        )
        drained = time.monotonic() - started - RUN_SECONDS
        stats = store.stats()
    finally:
        stop.set()
        for worker in workers:
            worker.kill()
        collector.down()

    missing = accepted - set(collector.received)
    duplicates = {event_id: n - 1 for event_id, n in collector.received.items() if n > 1}
    print(
        f"\naccepted {len(accepted)} events (+{len(poison)} poison) in {RUN_SECONDS:.0f} s; "
        f"posts retried on the other worker: {sum(p.failed_posts for p in producers)}\n"
        f"collector answers while faulty {dict(collector.answers[True])} (and down 1.5 s), "
        f"then {dict(collector.answers[False])}\n"
        f"relay killed mid-delivery twice, in batches of "
        f"{[len(ids) for ids in collector.interrupted]} events\n"
        f"delivered {len(accepted) - len(missing)} of {len(accepted)}, missing {len(missing)}, "
        f"duplicates {sum(duplicates.values())} ({len(duplicates)} events); "
        f"drained {drained:.1f} s after the last post\n"
        f"max concurrent collector requests {collector.max_in_flight}\n"
        f"outbox: {json.dumps(stats)}"
    )
    assert not missing, sorted(missing)[:20]
    assert set(duplicates) <= {i for ids in collector.interrupted for i in ids}
    assert not poison & set(collector.received)
    assert stats["depth"] == 0
    assert stats["drops"] == {
        "full": 0,
        "client_share": 0,
        "dead_letter_attempts": 0,
        "dead_letter_age": 0,
        "rejected_4xx": len(poison),
    }
    assert stats["dead_letters"] == len(poison)
    assert collector.max_in_flight == 1, "two relays sent at once"


def worker_main(data_dir: str, collector_url: str) -> None:
    """One app worker: the Delivery extension, the real KlevuClient, Werkzeug on a free port."""
    import logging

    from flask import Flask, request

    from storefront.config import KlevuSettings, from_env
    from storefront.klevu import CLIENT
    from storefront.klevu.analytics import delivery
    from storefront.klevu.analytics.delivery import outbox
    from storefront.klevu.analytics.outbox import OutboxError
    from storefront.klevu.client import KlevuClient
    from storefront.simulator.account import shop_environment

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {os.getpid()} %(message)s")
    app = Flask("fault-worker")
    app.config.update(
        from_env({**shop_environment(collector_url), "STOREFRONT_DATA_DIR": data_dir})
    )
    app.extensions[CLIENT] = KlevuClient(
        KlevuSettings(
            api_key="klevu-test",
            visitor_url=collector_url,
            config_url=collector_url,
            search_url=None,
            stats_url=f"{collector_url}/analytics/collect",
        )
    )
    delivery.init_app(app)

    @app.post("/events")
    def events():
        try:
            new = outbox(app).put([(i, p) for i, p in request.get_json()])
        except OutboxError as exc:
            return {"error": str(exc)}, 503
        return {"new": new}, 202

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    worker_main(*sys.argv[1:3])

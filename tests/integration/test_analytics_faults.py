"""Every beacon event the shop accepts reaches Klevu's collector, through collector faults and a
kill -9 of the whole shop: the real app, the simulator, and real HTTP between all three.

The shop runs as in production: gunicorn with two gthread workers serving ``create_app``,
configured from the environment (a temporary ``STOREFRONT_DATA_DIR``, the simulator as Klevu, a
fixed ``SECRET_KEY``), relaying its outbox in-app. Shoppers (threads of this test, a fresh
browser per page) open pages, take the banner tokens from the HTML and post what ``beacon.js``
would: each banner's impression and clicks on two of its products. A post that gets no 202 is
sent again, as a careful client would (event ids make that safe). Meanwhile the simulator's
collector is slow and fails every third request; the shop is SIGKILLed (master and workers at
once, as a crashed host loses them) while its relay has a batch out, and started again on the
same data dir; then the collector is down for a while, then slow and failing again.

Accepted means the shop answered 202. Every accepted event must reach the collector, matched by
the ids the outbox sends in ``X-Storefront-Event-Ids``. Delivery is at least once, and a
duplicate can come only from the crash (the batch the killed relay had sent but not yet seen
confirmed), so duplicates must be events the first shop accepted, one batch at most. The
figures are printed (``pytest -s``). tests/integration/test_relay_faults.py is the same check
one level down: the outbox and relay alone, with a collector that kills the relay on purpose.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

import requests

from storefront.catalog import load_catalog
from storefront.klevu.analytics import tokens
from storefront.klevu.analytics.events import SELECT, VIEW
from storefront.klevu.analytics.relay import BATCH_SIZE
from storefront.simulator.account import shop_environment
from tests.helpers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "analytics-faults-secret"
TARGET = 300  # accepted events
KILL_AT, DOWN_AT, UP_AT = 100, 160, 220  # accepted events at each step of the timeline
SHOPPERS = 2
CLICKS_PER_BANNER = 2
TIME_LIMIT = 30.0  # seconds for the whole run, drain included
# Slow enough that the kill, made while a batch is out, finds it still at the collector.
FLAKY = {"fail_every": 3, "status": 500, "latency_ms": 150}
DOWN = {"down": True, "status": 503}
PAGES = (
    "/",
    *(f"/c/{c.slug}" for c in load_catalog().categories),
    *(f"/p/{p.id}" for p in load_catalog().products[:12]),
)
TOKEN_RE = re.compile(r'data-klevu-token="([^"]+)"')
BEACON_HEADERS = {"Content-Type": "text/plain;charset=UTF-8", "Sec-Fetch-Site": "same-origin"}
NO_ANSWER = "no answer"
RETRY_LATER = {NO_ANSWER, 429, 503}  # what a beacon post may meet here and try again after


class Shop:
    """The shop under gunicorn, in a process group of its own, so ``kill`` takes every worker.

    ``generation`` counts starts; it goes up before the new processes exist, so a post that
    read generation 1 before it was sent is the only kind the first shop can have answered.
    """

    def __init__(self, data_dir: Path, simulator_url: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "shop.log"
        self.env = {
            **os.environ,
            **shop_environment(simulator_url),
            "STOREFRONT_DATA_DIR": str(data_dir / "shop"),
            "SECRET_KEY": SECRET_KEY,
        }
        for inherited in ("CACHE_REDIS_URL", "OUTBOX_RELAY_IN_APP"):
            self.env.pop(inherited, None)
        self.generation = 0
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.generation += 1
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--worker-class",
                    "gthread",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--no-control-socket",
                    "storefront:create_app()",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        wait_for(f"{self.url}/healthz")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def outbox(self) -> dict:
        return requests.get(f"{self.url}/healthz", timeout=5).json()["outbox"]

    def delivering(self) -> bool:
        """The relay holds a claimed batch: sending it, or about to."""
        return self.outbox()["in_flight"] > 0

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text().splitlines()[-lines:])


@dataclass
class Ledger:
    """What the shoppers sent, shared by their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: dict[str, str] = field(default_factory=dict)  # event id → event name
    first_shop: set[str] = field(default_factory=set)  # ids the first shop may hold
    answered_duplicate: int = 0  # 202s saying "already queued": a retry after a lost answer
    retried: Counter = field(default_factory=Counter)  # by what the post met
    unexpected: list[tuple[int | str, str]] = field(default_factory=list)

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def accept(self, event_id: str, name: str, duplicate: bool, generation: int) -> None:
        with self.lock:
            self.accepted[event_id] = name
            self.answered_duplicate += duplicate
            if generation == 1:
                self.first_shop.add(event_id)


def beacon_events(token: str, rng: random.Random):
    """``(beacon body, the event id the shop derives, event name)`` for one rendered banner."""
    page_view, banner = tokens.read_token(SECRET_KEY, token, 3600, api_key="")
    yield {"type": "view", "token": token}, tokens.impression_id(page_view, banner.recs_key), VIEW
    for item in rng.sample(banner.items, min(CLICKS_PER_BANNER, len(banner.items))):
        yield (
            {"type": "select", "token": token, "item": item.id},
            tokens.click_id(page_view, banner.recs_key, item.id),
            SELECT,
        )


def post_until_accepted(
    browser: requests.Session,
    shop: Shop,
    body: dict,
    event_id: str,
    name: str,
    ledger: Ledger,
    stop: threading.Event,
) -> None:
    """Post one event until the shop answers 202; given up (not accepted) when the run ends."""
    while not stop.is_set():
        generation = shop.generation
        try:
            answer = browser.post(
                f"{shop.url}/klevu/events", data=json.dumps(body), headers=BEACON_HEADERS, timeout=5
            )
        except requests.RequestException:
            outcome: int | str = NO_ANSWER
        else:
            if answer.status_code == 202:
                ledger.accept(event_id, name, answer.json()["duplicate"], generation)
                return
            outcome = answer.status_code
        with ledger.lock:
            if outcome not in RETRY_LATER:
                ledger.unexpected.append((outcome, answer.text))
                return
            ledger.retried[outcome] += 1
        time.sleep(0.05)


def go_shopping(shop: Shop, ledger: Ledger, stop: threading.Event, seed: int) -> None:
    """One shopper thread: a fresh browser per page, every banner's events posted."""
    rng = random.Random(seed)
    while not stop.is_set():
        with requests.Session() as browser:
            browser.cookies.set("shop_consent", "granted")
            try:
                page = browser.get(f"{shop.url}{rng.choice(PAGES)}", timeout=5)
            except requests.RequestException:
                time.sleep(0.05)
                continue
            for token in map(unescape, TOKEN_RE.findall(page.text)):
                for body, event_id, name in beacon_events(token, rng):
                    post_until_accepted(browser, shop, body, event_id, name, ledger, stop)


def test_every_accepted_event_reaches_the_collector_through_faults_and_kill_9(sim, tmp_path):
    shop = Shop(tmp_path, sim.url)
    ledger, stop = Ledger(), threading.Event()
    shoppers = [
        threading.Thread(target=go_shopping, args=(shop, ledger, stop, seed))
        for seed in range(SHOPPERS)
    ]
    started = time.monotonic()
    deadline = started + TIME_LIMIT

    def until(condition, what: str) -> None:
        while not condition():
            assert time.monotonic() < deadline, (
                f"not {what} after {TIME_LIMIT:.0f} s: {ledger.count()} events accepted, "
                f"retries {dict(ledger.retried)}\n{shop.log_tail()}"
            )
            time.sleep(0.01)

    def when_accepted(count: int) -> None:
        until(lambda: ledger.count() >= count, f"{count} events accepted")

    try:
        sim.faults(collect=FLAKY)
        shop.start()
        for thread in shoppers:
            thread.start()
        when_accepted(KILL_AT)
        until(shop.delivering, "delivering")
        shop.kill()
        shop.start()
        when_accepted(DOWN_AT)
        sim.faults(collect=DOWN)
        when_accepted(UP_AT)
        sim.faults(collect=FLAKY)
        when_accepted(TARGET)
        stop.set()
        for thread in shoppers:
            thread.join()
        faults = sim.state()["counts"]["faulted"]
        sim.faults(collect=None)
        stopped = time.monotonic()
        accepted = dict(ledger.accepted)
        while True:  # drained: every accepted event arrived, and nothing is left to send
            journal, outbox = sim.events(), shop.outbox()
            received = Counter(e["event_id"] for e in journal["events"])
            if (
                accepted.keys() <= received.keys() and outbox["depth"] == 0
            ) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        drained = time.monotonic() - stopped
    finally:
        stop.set()
        for thread in shoppers:
            if thread.is_alive():
                thread.join()
        shop.kill()

    missing = accepted.keys() - received.keys()
    duplicates = {event_id: n - 1 for event_id, n in received.items() if n > 1}
    names = {e["event_id"]: e["summary"]["event"] for e in journal["events"]}
    print(
        f"\naccepted {len(accepted)} events ({Counter(accepted.values())}) in "
        f"{stopped - started:.1f} s; answered 'already queued' {ledger.answered_duplicate}; "
        f"posts retried {dict(ledger.retried)}\n"
        f"collector: {faults} requests faulted; received {journal['totals']}\n"
        f"delivered {len(accepted) - len(missing)} of {len(accepted)}, missing {len(missing)}; "
        f"duplicates {sum(duplicates.values())} ({len(duplicates)} events); "
        f"drained {drained:.1f} s after the last post\n"
        f"outbox: {json.dumps(outbox)}"
    )
    assert not ledger.unexpected, ledger.unexpected[:5]
    assert not missing, f"{len(missing)} accepted events never arrived\n{shop.log_tail()}"
    assert received.keys() == accepted.keys(), "the collector got events nobody accepted"
    assert {event_id: names[event_id] for event_id in accepted} == accepted
    assert duplicates.keys() <= ledger.first_shop
    assert sum(duplicates.values()) <= BATCH_SIZE
    assert journal["totals"]["duplicates"] == sum(duplicates.values())
    assert (outbox["depth"], outbox["dead_letters"]) == (0, 0)
    assert not any(outbox["drops"].values()), outbox["drops"]

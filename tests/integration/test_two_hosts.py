"""Two shop hosts, one lost with its disk during a collector outage: with the Redis outbox the
other host delivers every event the lost one accepted; with SQLite they go with its disk.

Each host is gunicorn (gthread, 2 workers) with its own data directory, relaying in-app, as a
container behind a load balancer would run. The collector is down and slow (each failed POST
takes a second, so host A's relay has a batch out when it dies). Shoppers' impressions and
clicks are accepted through host A; host A is killed (``kill -9`` of its process group) and its
data directory deleted; the collector comes back; host B must deliver them all. Duplicates: the
collector only ever answered 503 while host A lived, so none is allowed. The SQLite run prints
what was lost (docs/operations.md, "Several hosts", quotes it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from html import unescape
from pathlib import Path

import pytest
import requests

from storefront.klevu.analytics import tokens
from storefront.simulator.account import shop_environment
from tests.helpers import PERSONAS, browser_session, free_port, start_redis, wait_for, wait_until

SECRET_KEY = "two-hosts-one-secret"
LEASE_SECONDS = 5  # the least the setting allows: longer than a send's timeouts
PAGES = ("/", "/c/outdoor-tents", "/p/10001", "/c/clothing-jackets", "/p/10004", "/checkout")
TOKEN_RE = re.compile(r'data-klevu-token="([^"]+)"')
BEACON_HEADERS = {"Content-Type": "text/plain;charset=UTF-8", "Sec-Fetch-Site": "same-origin"}
pytestmark = pytest.mark.redis


class Host:
    """One shop host: gunicorn in a process group of its own, and its own data directory."""

    def __init__(self, data_dir: Path, env: dict[str, str]):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True)
        with open(data_dir.parent / f"{data_dir.name}.log", "wb") as log:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "gunicorn", "--worker-class", "gthread"),
                    *("--workers", "2", "--threads", "4", "--bind", f"127.0.0.1:{self.port}"),
                    *("--no-control-socket", "storefront:create_app()"),
                ],
                env={**env, "STOREFRONT_DATA_DIR": str(data_dir)},
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            wait_for(f"{self.url}/healthz", 30)
        except AssertionError:
            self.kill()
            raise
        requests.get(f"{self.url}/cart", timeout=5)  # a first request starts its relay

    def outbox(self) -> dict:
        return requests.get(f"{self.url}/healthz", timeout=5).json()["outbox"]

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def shop_through(host: Host, persona: str | None) -> dict[str, str]:
    """A visitor's pages on ``host``, every banner's impression and two clicks posted; the
    accepted event ids (→ "view"/"click")."""
    browser = browser_session(persona)
    accepted: dict[str, str] = {}
    for path in PAGES:
        page = browser.get(f"{host.url}{path}", timeout=10)
        assert page.status_code == 200
        for token in map(unescape, TOKEN_RE.findall(page.text)):
            page_view, banner = tokens.read_token(SECRET_KEY, token, 3600, api_key="")
            posts = [({"type": "view", "token": token}, "view", None)] + [
                ({"type": "select", "token": token, "item": item.id}, "click", item.id)
                for item in banner.items[:2]
            ]
            for body, kind, item in posts:
                answer = browser.post(
                    f"{host.url}/klevu/events",
                    data=json.dumps(body),
                    headers=BEACON_HEADERS,
                    timeout=5,
                )
                assert answer.status_code == 202, answer.text
                event_id = (
                    tokens.impression_id(page_view, banner.recs_key)
                    if item is None
                    else tokens.click_id(page_view, banner.recs_key, item)
                )
                accepted[event_id] = kind
    return accepted


@pytest.mark.parametrize("outbox", ["redis", "sqlite"])
def test_a_host_lost_with_its_disk_during_an_outage(sim, tmp_path, outbox):
    redis_process, redis_url = start_redis(tmp_path / "redis")  # appendonly, fsync always
    env = {
        **os.environ,
        **shop_environment(sim.url),
        "SECRET_KEY": SECRET_KEY,
        "CACHE_REDIS_URL": redis_url,
        "OUTBOX_RELAY_IN_APP": "1",
        "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "STOREFRONT_INSPECTOR": "0",
    }
    if outbox == "redis":
        env["OUTBOX_URL"] = redis_url
    else:
        env.pop("OUTBOX_URL", None)
    hosts: list[Host] = []
    try:
        sim.faults(collect={"down": True, "status": 503, "latency_ms": 1000})
        host_a = Host(tmp_path / "host-a", env)
        host_b = Host(tmp_path / "host-b", env)
        hosts += [host_a, host_b]
        accepted: dict[str, str] = {}
        for persona in (*PERSONAS, None):
            accepted |= shop_through(host_a, persona)
        assert len(accepted) > 50  # more than one batch
        # A relay has a batch out at the collector (a POST takes a second to fail): kill then.
        wait_until(lambda: host_a.outbox()["in_flight"] > 0, 10, "no batch out")
        host_a.kill()
        shutil.rmtree(host_a.data_dir)
        killed_at = time.monotonic()
        sim.faults(collect=None)

        def received() -> Counter:
            return Counter(event["event_id"] for event in sim.events()["events"])

        if outbox == "redis":
            wait_until(lambda: accepted.keys() <= received().keys(), 60, "events missing")
            took = time.monotonic() - killed_at
            wait_until(lambda: host_b.outbox()["depth"] == 0, 10, "host B's queue not empty")
        else:
            time.sleep(LEASE_SECONDS + 5)  # as long as host B would need, and more
            took = time.monotonic() - killed_at
        got = received()
        delivered = accepted.keys() & got.keys()
        duplicates = {event_id: n - 1 for event_id, n in got.items() if n > 1}
        print(
            f"\n{outbox}: accepted through host A {len(accepted)} "
            f"({Counter(accepted.values())}); delivered by host B after host A was lost: "
            f"{len(delivered)} in {took:.1f} s; lost {len(accepted) - len(delivered)}; "
            f"duplicates {sum(duplicates.values())}"
        )
        assert got.keys() <= accepted.keys(), "the collector got events nobody accepted"
        assert not duplicates, "the collector never took a batch while host A lived"
        if outbox == "redis":
            assert delivered == accepted.keys()
        else:
            assert not delivered, "host A's events were on host A's disk only"
    finally:
        for host in hosts:
            host.kill()
        redis_process.kill()
        redis_process.wait()

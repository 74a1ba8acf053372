"""The beacon's queue: durable events/s into each outbox, side by side (``make bench``).

    .venv/bin/python -m bench.bench_outbox [--seconds 3] [--rounds 2] [--writers 16]

16 threads put one event each, as concurrent beacon posts do, while the relay delivers to the
simulator's collector. The stores: SQLite in a temporary data directory (``synchronous=FULL``),
Redis Streams on a redis-server started here with ``appendonly yes`` and ``appendfsync
always`` (nothing a 202 confirmed is lost, as SQLite), and with ``everysec`` (up to about a
second lost on a power loss). Rounds alternate between the stores; the figure is each store's
best round, and its ratio to SQLite's in the same run. docs/performance.md records the figures.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid

from storefront.config import klevu_settings
from storefront.klevu.analytics.outbox import OutboxStore, Store
from storefront.klevu.analytics.outbox_redis import RedisOutbox
from storefront.klevu.analytics.relay import Relay
from storefront.klevu.client import KlevuClient
from storefront.simulator import account
from storefront.simulator.account import shop_environment
from tests.helpers import Simulator, start_redis, start_simulator, wait_until

TARGET = 1500  # durable events/s
PAYLOAD = {
    "event": "select_recs_list",
    "event_apikey": account.API_KEY,
    "event_version": "1.0.0",
    "event_data": {"list_id": "k-home-picks", "items": [{"item_id": "10001"}]},
}


def durable_events(store: Store, sim: Simulator, seconds: float, writers: int = 16):
    """Distinct durable events/s into ``store`` (concurrent puts, one event each), and
    collector POSTs per 20 events sent by the relay meanwhile."""
    client = KlevuClient(klevu_settings(shop_environment(sim.url)))
    relay = Relay(store, client.collect)
    stop_relay = threading.Event()
    relay_thread = threading.Thread(target=relay.run, args=(stop_relay,), daemon=True)
    before = sim.state()["counts"]
    relay_thread.start()
    stop = time.monotonic() + seconds
    accepted = [0] * writers

    def writer(i: int) -> None:
        while time.monotonic() < stop:
            accepted[i] += store.put([(uuid.uuid4().hex, PAYLOAD)])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = sum(accepted)
    wait_until(lambda: store.stats()["depth"] == 0, 60, "the relay did not drain the outbox")
    stop_relay.set()
    store.wake.set()
    relay_thread.join(10)
    after = sim.state()["counts"]
    posts = after["collect_requests"] - before["collect_requests"]
    return events / seconds, posts / (events / 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--writers", type=int, default=16)
    args = parser.parse_args()

    sim = start_simulator()
    servers = {
        fsync: start_redis(tempfile.mkdtemp(prefix=f"bench-redis-{fsync}-"), appendfsync=fsync)
        for fsync in ("always", "everysec")
    }
    try:
        stores: dict[str, Store] = {
            "SQLite (synchronous=FULL)": OutboxStore(tempfile.mkdtemp(prefix="bench-outbox-")),
            **{
                f"Redis Streams (appendfsync {fsync})": RedisOutbox(
                    url, tempfile.mkdtemp(prefix="bench-outbox-")
                )
                for fsync, (_process, url) in servers.items()
            },
        }
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.rounds):
            for name, store in stores.items():
                rate, posts = durable_events(store, sim, args.seconds, args.writers)
                if rate > best.get(name, (0.0, 0.0))[0]:
                    best[name] = (rate, posts)
    finally:
        for process, _url in servers.values():
            process.terminate()
        sim.process.terminate()

    sqlite = next(iter(best.values()))[0]
    print(f"\n{'outbox':36} {'events/s':>9} {'÷ SQLite':>9} {'POSTs/20':>9}  target >= {TARGET:,}")
    for name, (rate, posts) in best.items():
        verdict = "ok" if rate >= TARGET else "BELOW TARGET"
        print(f"{name:36} {rate:9,.0f} {rate / sqlite:9.2f} {posts:9.2f}  {verdict}")


if __name__ == "__main__":
    main()

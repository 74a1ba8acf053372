"""The beacon's queue: durable events/s into each outbox, side by side (``make bench``).

    .venv/bin/python -m bench.bench_outbox [--seconds 3] [--rounds 3] [--writers 16]
                                           [--processes 2]

16 threads put one event each, as concurrent beacon posts do, while the relay delivers to the
simulator's collector: all in one process, then spread over ``--processes`` processes (2 × 8,
as the bench's gunicorn shops serve the beacon). The stores: SQLite in a temporary data
directory (``synchronous=FULL``), Redis Streams on a redis-server started here with
``appendonly yes`` and ``appendfsync always`` (nothing a 202 confirmed is lost, as SQLite),
and with ``everysec`` (up to about a second lost on a power loss). Rounds alternate between
the stores; each figure is the store's best round, and its ratio to SQLite's with the same
writers in the same run. docs/performance.md records the figures.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context

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


def put_events(open_store: Callable[[], Store], start_at: float, seconds: float, threads: int):
    """One process's writers: ``threads`` threads putting one event each, from ``start_at``
    (wall clock, so several processes start together) for ``seconds``; how many were new."""
    store = open_store()
    accepted = [0] * threads
    time.sleep(max(0.0, start_at - time.time()))
    stop = time.monotonic() + seconds

    def writer(i: int) -> None:
        while time.monotonic() < stop:
            accepted[i] += store.put([(uuid.uuid4().hex, PAYLOAD)])

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return sum(accepted)


def durable_events(
    open_store: Callable[[], Store],
    sim: Simulator,
    seconds: float,
    writers: int = 16,
    processes: int = 1,
):
    """Distinct durable events/s into the store (concurrent puts, one event each, from
    ``writers`` threads spread over ``processes`` processes, as gunicorn's workers), and
    collector POSTs per 20 events sent by the relay (in this process) meanwhile."""
    store = open_store()
    client = KlevuClient(klevu_settings(shop_environment(sim.url)))
    relay = Relay(store, client.collect)
    stop_relay = threading.Event()
    relay_thread = threading.Thread(target=relay.run, args=(stop_relay,), daemon=True)
    before = sim.state()["counts"]
    relay_thread.start()
    threads = writers // processes
    if processes == 1:
        events = put_events(open_store, 0.0, seconds, threads)
    else:
        start_at = time.time() + 2.0  # spawned interpreters import the shop first
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
            counts = [
                pool.submit(put_events, open_store, start_at, seconds, threads)
                for _ in range(processes)
            ]
            events = sum(count.result() for count in counts)
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2, help="also spread the writers")
    args = parser.parse_args()

    sim = start_simulator()
    servers = {
        fsync: start_redis(tempfile.mkdtemp(prefix=f"bench-redis-{fsync}-"), appendfsync=fsync)
        for fsync in ("always", "everysec")
    }
    try:
        stores: dict[str, Callable[[], Store]] = {
            "SQLite (synchronous=FULL)": partial(
                OutboxStore, tempfile.mkdtemp(prefix="bench-outbox-")
            ),
            **{
                f"Redis Streams (appendfsync {fsync})": partial(
                    RedisOutbox, url, tempfile.mkdtemp(prefix="bench-outbox-")
                )
                for fsync, (_process, url) in servers.items()
            },
        }
        layouts = (1, args.processes) if args.processes > 1 else (1,)
        best: dict[tuple[str, int], tuple[float, float]] = {}
        for _ in range(args.rounds):
            for processes in layouts:
                for name, open_store in stores.items():
                    rate, posts = durable_events(
                        open_store, sim, args.seconds, args.writers, processes
                    )
                    if rate > best.get((name, processes), (0.0, 0.0))[0]:
                        best[(name, processes)] = (rate, posts)
    finally:
        for process, _url in servers.values():
            process.terminate()
        sim.process.terminate()

    print(f"\n{'outbox':36} {'writers':>12} {'events/s':>9} {'÷ SQLite':>9} {'POSTs/20':>9}")
    for (name, processes), (rate, posts) in best.items():
        sqlite = best[(next(iter(stores)), processes)][0]
        layout = f"{processes}×{args.writers // processes}"
        verdict = "ok" if rate >= TARGET else f"below {TARGET:,}"
        print(f"{name:36} {layout:>12} {rate:9,.0f} {rate / sqlite:9.2f} {posts:9.2f}  {verdict}")


if __name__ == "__main__":
    main()

"""Exactly one relay per data directory across processes, and a standby replaces a dead one.

Two relay processes (this file run as a script) share a data directory; this test puts events
from its own process, kills the lock holder with SIGKILL, restarts it, and checks from the
delivery log who delivered what. Real processes, real ``flock``, default timings.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from storefront.klevu.analytics.outbox import OutboxStore
from storefront.klevu.analytics.relay import Relay, RelayRunner, lock_holder
from tests.helpers import wait_until


def start_relay(data_dir, log_path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", __name__, str(data_dir), str(log_path)],
        cwd=Path(__file__).parents[2],
        stderr=open(os.path.join(data_dir, "relays.err"), "a"),
    )


def deliveries(log_path) -> list[tuple[int, str]]:
    """(pid, event id) per delivered event, in delivery order."""
    if not os.path.exists(log_path):
        return []
    with open(log_path) as log:
        return [
            (int(pid), event_id) for pid, *ids in (line.split() for line in log) for event_id in ids
        ]


def put_and_wait(store: OutboxStore, log_path, prefix: str, n: int = 100) -> None:
    for start in range(0, n, 10):
        store.put([(f"{prefix}-{i}", {"n": i}) for i in range(start, start + 10)])
        time.sleep(0.01)
    wanted = {f"{prefix}-{i}" for i in range(n)}
    wait_until(lambda: wanted <= {event_id for _, event_id in deliveries(log_path)}, 30)


def delivered_by(log_path, prefix: str) -> set[int]:
    return {pid for pid, event_id in deliveries(log_path) if event_id.startswith(prefix + "-")}


def test_one_relay_per_data_dir_and_a_standby_takes_over_after_kill_9(tmp_path):
    log_path = tmp_path / "deliveries.log"
    store = OutboxStore(str(tmp_path))
    relays = [start_relay(tmp_path, log_path) for _ in range(2)]
    try:
        wait_until(lambda: lock_holder(store.lock_path) in {p.pid for p in relays}, 30)
        holder = lock_holder(store.lock_path)
        put_and_wait(store, log_path, "first")
        assert delivered_by(log_path, "first") == {holder}
        assert lock_holder(store.lock_path) == holder

        victim = next(p for p in relays if p.pid == holder)
        standby = next(p for p in relays if p.pid != holder)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        killed_at = time.monotonic()
        wait_until(lambda: lock_holder(store.lock_path) == standby.pid, 30)
        takeover = time.monotonic() - killed_at
        put_and_wait(store, log_path, "second")
        assert delivered_by(log_path, "second") == {standby.pid}

        relays = [standby, start_relay(tmp_path, log_path)]
        time.sleep(1.5)  # longer than the lock retry interval
        assert lock_holder(store.lock_path) == standby.pid, "a restarted relay must stand by"
        put_and_wait(store, log_path, "third")
        assert delivered_by(log_path, "third") == {standby.pid}

        counts = Counter(event_id for _, event_id in deliveries(log_path))
        duplicates = sum(n - 1 for n in counts.values())
        print(
            f"\n300 events, {len(counts)} delivered, {duplicates} duplicates; "
            f"standby took over {takeover:.2f} s after kill -9 (lock retry 1 s)"
        )
        assert len(counts) == 300
        wait_until(lambda: store.stats()["depth"] == 0, 30)  # acked just after the send returns
    finally:
        for process in relays:
            process.send_signal(signal.SIGTERM)
        for process in relays:
            assert process.wait(timeout=10) == 0, "SIGTERM must stop a relay cleanly"
    assert lock_holder(store.lock_path) is None


def relay_main(data_dir: str, log_path: str) -> None:
    """A relay process whose collector is a log file: one line per batch, pid first."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {os.getpid()} %(message)s")

    def send(events: list[dict], event_ids: list[str]) -> None:
        with open(log_path, "a") as log:  # O_APPEND: whole lines from both processes
            log.write(f"{os.getpid()} {' '.join(event_ids)}\n")

    runner = RelayRunner(Relay(OutboxStore(data_dir), send))
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    runner.run()


if __name__ == "__main__":
    relay_main(*sys.argv[1:3])

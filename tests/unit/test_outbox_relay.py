"""The relay's policy, driven with a fake clock and a fake collector: no sleeping.

``drain`` runs the relay the way its thread does, except that the clock jumps by each wait
instead of sleeping, so an hour of backoff takes microseconds. Each scenario on the ``store``
fixture runs against both stores the relay drives: SQLite, and Redis Streams on a real
redis-server (the one policy must mean the same on either).
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import threading
import time

import pytest
from hypothesis import given, strategies as st

from storefront.klevu.analytics.outbox import OutboxStore, Store
from storefront.klevu.analytics.outbox_redis import RedisOutbox
from storefront.klevu.analytics.relay import Backoff, Relay, RelayRunner, Send, lock_holder
from storefront.klevu.client import KlevuError
from tests.helpers import FakeClock, wait_until


class Collector:
    """A fake ``send``: ``answer(ids)`` returns the exception to raise, or None for a 2xx."""

    def __init__(self, answer=lambda ids: None):
        self.answer = answer
        self.requests: list[list[str]] = []
        self.delivered: list[str] = []

    def __call__(self, events: list[dict], ids: list[str]) -> None:
        assert [event["id"] for event in events] == ids, "payloads and ids travel together"
        self.requests.append(list(ids))
        failure = self.answer(ids)
        if failure is not None:
            raise failure
        self.delivered.extend(ids)


def events(n: int, prefix: str = "e") -> list[tuple[str, dict]]:
    return [
        (f"{prefix}{i:04d}", {"event": "view_recs_list", "id": f"{prefix}{i:04d}"})
        for i in range(n)
    ]


def drain(relay: Relay, clock: FakeClock, steps: int = 10_000) -> None:
    for _ in range(steps):
        if relay.store.next_due() is None:
            return
        clock.now += relay.run_once()
    raise AssertionError("the relay did not empty the outbox")


def attempts(store: Store, n: int = 120) -> list[int]:
    """The attempts counted against each queued event of ``events(n)``, in order."""
    where = store.whereabouts([event_id for event_id, _ in events(n)])
    return [state["attempts"] for _, state in sorted(where.items()) if "attempts" in state]


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request, tmp_path, clock) -> Store:
    if request.param == "redis":
        return RedisOutbox(request.getfixturevalue("redis_url"), str(tmp_path), clock=clock)
    return OutboxStore(str(tmp_path), clock=clock)


def relay_for(store, collector, **options) -> Relay:
    return Relay(store, collector, rng=random.Random(7), **options)


def test_batches_hold_at_most_50_events_oldest_first(store, clock):
    store.put(events(120))
    collector = Collector()
    drain(relay_for(store, collector), clock)
    assert [len(ids) for ids in collector.requests] == [50, 50, 20]
    assert collector.delivered == [event_id for event_id, _ in events(120)]
    assert store.stats()["delivered"] == 120


@given(failures=st.integers(1, 500), seed=st.integers(0, 2**32))
def test_backoff_doubles_up_to_its_cap_and_jitters_within_the_upper_half(failures, seed):
    backoff = Backoff(0.5, 60.0)
    ceiling = min(60.0, 0.5 * 2 ** (failures - 1))
    assert backoff.ceiling(failures) == ceiling
    assert ceiling / 2 <= backoff.delay(failures, random.Random(seed)) <= ceiling


def test_jitter_spreads_retries_across_the_whole_band():
    delays = [Backoff(0.5, 60.0).delay(5, random.Random(seed)) for seed in range(500)]
    assert min(delays) < 4.4 and max(delays) > 7.6  # band [4, 8]


def test_the_relay_pauses_longer_after_each_failure_and_sends_nothing_meanwhile(store, clock):
    store.put(events(3))
    collector = Collector(lambda ids: KlevuError("connection refused"))
    relay = relay_for(store, collector)
    pauses = []
    for failure in range(1, 10):
        pause = relay.run_once()
        assert len(collector.requests) == failure
        ceiling = Backoff(0.5, 60.0).ceiling(failure)
        assert ceiling / 2 <= pause <= ceiling
        pauses.append(pause)
        clock.now += pause - 0.01
        assert relay.run_once() == pytest.approx(0.01)
        assert len(collector.requests) == failure, "sent during a pause"
        clock.now += 0.01
    print("pauses after 1..9 failures:", [round(p, 2) for p in pauses])
    assert pauses[-1] > 30


def test_retry_after_is_honoured_and_capped(store, clock):
    answers = iter(
        [
            KlevuError("HTTP 429", status=429, retry_after=30.0),
            KlevuError("HTTP 503", status=503, retry_after=1e9),
        ]
    )
    collector = Collector(lambda ids: next(answers, None))
    relay = relay_for(store, collector, max_retry_after=3600.0)
    store.put(events(3))
    assert relay.run_once() == pytest.approx(30.0)
    clock.now += 29.9
    relay.run_once()
    assert len(collector.requests) == 1
    clock.now += 0.1
    assert relay.run_once() == pytest.approx(3600.0)
    assert len(collector.requests) == 2
    clock.now += 3600
    drain(relay, clock)
    assert collector.delivered == ["e0000", "e0001", "e0002"]


@pytest.mark.parametrize(
    "failure",
    [
        KlevuError("ConnectionError"),
        KlevuError("ReadTimeout"),
        KlevuError("HTTP 503", status=503),
        KlevuError("HTTP 502", status=502),
        KlevuError("HTTP 429", status=429),
        KlevuError("HTTP 404", status=404),
    ],
    ids=str,
)
def test_an_outage_spends_no_attempts_and_loses_nothing(store, clock, failure):
    store.put(events(120))
    down = True
    collector = Collector(lambda ids: failure if down else None)
    relay = relay_for(store, collector, max_attempts=3)
    for _ in range(200):  # ~2 h of outage at the 60 s cap
        clock.now += relay.run_once()
    assert len(collector.requests) > 100
    assert store.stats()["dead_letters"] == 0
    assert set(attempts(store)) == {0}
    down = False
    drain(relay, clock)
    assert sorted(set(collector.delivered)) == [event_id for event_id, _ in events(120)]
    assert store.stats()["last_error"]["message"] == str(failure)


def test_an_event_the_collector_keeps_failing_on_is_dead_lettered_alone(store, clock):
    store.put([("poison", {"event": "view_recs_list", "id": "poison"}), *events(49)])
    collector = Collector(
        lambda ids: KlevuError("HTTP 500", status=500) if "poison" in ids else None
    )
    drain(relay_for(store, collector, max_attempts=5), clock)
    assert sorted(collector.delivered) == [event_id for event_id, _ in events(49)]
    assert sum("poison" in ids for ids in collector.requests) == 5
    stats = store.stats()
    assert stats["dead_letters"] == 1 and stats["drops"]["dead_letter_attempts"] == 1
    assert store.whereabouts(["poison"]) == {
        "poison": {"state": "dead", "reason": "dead_letter_attempts", "error": "HTTP 500"}
    }


def test_events_older_than_max_age_are_dead_lettered_not_sent(store, clock):
    store.put(events(3))
    collector = Collector(lambda ids: KlevuError("connection refused"))
    relay = relay_for(store, collector, max_age=3600.0)
    while clock.now < 1_700_000_000.0 + 3600:
        clock.now += relay.run_once()
    store.put(events(2, prefix="fresh"))
    collector.answer = lambda ids: None
    drain(relay, clock)
    assert collector.delivered == ["fresh0000", "fresh0001"]
    stats = store.stats()
    assert stats["dead_letters"] == 3 and stats["drops"]["dead_letter_age"] == 3


@pytest.mark.parametrize("bad", [{0}, {37}, {49}, {3, 44}])
def test_a_rejected_batch_is_halved_until_each_bad_event_stands_alone(store, clock, bad):
    store.put(events(50))
    bad_ids = {f"e{i:04d}" for i in bad}
    collector = Collector(
        lambda ids: KlevuError("HTTP 400", status=400) if bad_ids & set(ids) else None
    )
    drain(relay_for(store, collector), clock)
    assert sorted(collector.delivered) == sorted(
        event_id for event_id, _ in events(50) if event_id not in bad_ids
    )
    assert len(collector.delivered) == len(set(collector.delivered)), "no good event twice"
    stats = store.stats()
    assert stats["dead_letters"] == len(bad) and stats["drops"]["rejected_4xx"] == len(bad)
    assert len(collector.requests) <= 1 + 2 * len(bad) * math.ceil(math.log2(50))
    print(f"bad events {sorted(bad)}: {len(collector.requests)} requests")


def test_a_transient_failure_while_halving_keeps_the_unsent_halves_queued(store, clock):
    store.put(events(50))
    answers = iter([KlevuError("HTTP 400", status=400), KlevuError("HTTP 503", status=503)])
    collector = Collector(lambda ids: next(answers, None))
    relay = relay_for(store, collector)
    relay.run_once()
    assert collector.requests == [
        [f"e{i:04d}" for i in range(50)],
        [f"e{i:04d}" for i in range(25)],
    ]
    assert store.stats()["depth"] == 50 and set(attempts(store)) == {0}
    drain(relay, clock)
    assert sorted(collector.delivered) == [event_id for event_id, _ in events(50)]


class Killed(BaseException):
    """The relay process dies mid-send (kill -9): nothing after the send runs."""


def test_a_new_relay_takes_back_what_a_dead_one_claimed(tmp_path, clock):
    first = OutboxStore(str(tmp_path), clock=clock)
    first.put(events(60))

    def die(ids):
        raise Killed

    with pytest.raises(Killed):
        relay_for(first, Collector(die)).run_once()
    assert first.stats()["in_flight"] == 50

    restarted = OutboxStore(str(tmp_path), clock=clock)
    collector = Collector()
    relay = relay_for(restarted, collector)
    assert restarted.recover() == 50
    assert attempts(restarted) == [1] * 50 + [0] * 10, "the fatal attempt still counts"
    drain(relay, clock)
    assert collector.delivered == [event_id for event_id, _ in events(60)]


def test_the_relay_thread_wakes_as_soon_as_this_process_puts(tmp_path):
    store = OutboxStore(str(tmp_path))
    collector = Collector()
    relay = Relay(store, collector, poll_interval=30.0)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        time.sleep(0.1)  # idle, waiting up to 30 s
        started = time.monotonic()
        store.put(events(1))
        while not collector.delivered and time.monotonic() - started < 5:
            time.sleep(0.005)
        latency = time.monotonic() - started
    finally:
        stop.set()
        store.wake.set()
        thread.join(5)
    print(f"put → delivered in {latency * 1000:.1f} ms")
    assert collector.delivered == ["e0000"] and latency < 1.0


def test_two_runners_in_one_process_make_one_relay(tmp_path):
    store = OutboxStore(str(tmp_path))
    senders: dict[str, list[str]] = {"a": [], "b": []}

    def sender(name: str) -> Send:
        return lambda events, ids: senders[name].extend(ids)

    runners = {
        name: RelayRunner(Relay(store, sender(name), poll_interval=0.05), retry=0.05)
        for name in senders
    }
    for runner in runners.values():
        runner.start()
    try:
        store.put(events(20))
        wait_until(
            lambda: len(senders["a"]) + len(senders["b"]) >= 20,
            5,
            "the 20 events were not all sent",
        )
        assert lock_holder(store.lock_path) == os.getpid()
        assert sorted(map(len, senders.values())) == [0, 20], senders
    finally:
        for runner in runners.values():
            runner.stop()
    assert lock_holder(store.lock_path) is None


def test_a_batch_the_collector_confirmed_is_not_sent_again_when_its_deletion_failed(
    store, clock, monkeypatch
):
    """The relay knows these were delivered: a database error after the 2xx must not make
    them due again (the lease would lapse and send them twice)."""
    store.put(events(3))
    collector = Collector()
    relay = relay_for(store, collector)
    real_ack = store.ack

    def ack_fails_once(rows):
        monkeypatch.setattr(store, "ack", real_ack)
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "ack", ack_fails_once)
    with pytest.raises(sqlite3.OperationalError):
        relay.run_once()
    clock.now += 120  # the lease has lapsed
    drain(relay, clock)
    assert collector.requests == [["e0000", "e0001", "e0002"]]
    assert store.stats()["delivered"] == 3

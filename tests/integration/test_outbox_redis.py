"""The Redis Streams outbox keeps the SQLite outbox's promises; a real redis-server.

Idempotency and the bound run against both stores here (``store`` is parametrized), as the
relay's policy does in tests/unit/test_outbox_relay.py. Then what only Redis does: another
host's relay taking over a dead relay's entries after the lease (``XAUTOCLAIM``), acknowledged
entries trimmed, events kept across a ``kill -9`` of redis-server itself with ``appendfsync
always``; and ``flask relay``, ``/healthz`` and the inspector's states on the Redis outbox.
"""

from __future__ import annotations

import random
import signal
import time
from typing import Any

import pytest
import redis

from storefront.klevu.analytics.outbox import ClientShareFull, OutboxFull, OutboxStore, _Put
from storefront.klevu.analytics.outbox_redis import RedisOutbox
from storefront.klevu.analytics.relay import Relay
from tests.helpers import FakeClock, start_redis
from tests.unit.test_outbox_relay import Collector, drain, events

CLAIM: dict[str, Any] = {"lease_seconds": 60.0, "max_attempts": 20, "max_age": 3600.0}
pytestmark = pytest.mark.redis


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path, clock):
    if request.param == "sqlite":
        return OutboxStore(str(tmp_path), max_events=200, clock=clock)
    url = request.getfixturevalue("redis_url")
    return RedisOutbox(url, str(tmp_path), max_events=200, clock=clock)


def relay_for(store, collector, **options) -> Relay:
    return Relay(store, collector, rng=random.Random(7), **options)


def attempts(store, n: int, prefix: str = "e") -> set[int]:
    """The attempts counted against queued events ``e0000``..."""
    where = store.whereabouts([event_id for event_id, _ in events(n, prefix)])
    return {state["attempts"] for state in where.values() if "attempts" in state}


def test_ids_count_once_until_they_expire_and_a_full_queue_refuses_all(store, clock):
    assert store.put(events(3)) == 3
    assert store.put(events(3)) == 0
    assert store.put([("x", {"a": 1}), ("x", {"a": 2})]) == 1
    store.ack(store.claim(50, **CLAIM))
    assert store.put(events(1)) == 0, "delivered, and still remembered"
    clock.now += 3601
    store.forget_seen(clock.now - 3600)
    assert store.put(events(1)) == 1
    store.put(events(195, prefix="fill"))
    with pytest.raises(OutboxFull):
        store.put(events(10, prefix="over"))
    stats = store.stats()
    assert stats["depth"] == 196 and stats["drops"]["full"] == 10
    assert store.whereabouts(["over0000"]) == {}


def test_one_client_fills_only_its_share_and_leaves_it_as_its_events_go(store):
    """During an outage one address cannot fill the queue for every visitor, on either store;
    an event delivered or dead-lettered gives its place in the share back."""
    assert store.put(events(100, prefix="a"), client="10.0.0.1") == 100
    with pytest.raises(ClientShareFull):
        store.put(events(1, prefix="more"), client="10.0.0.1")
    assert store.put(events(1, prefix="b"), client="10.0.0.2") == 1
    assert store.stats()["drops"]["client_share"] == 1
    store.ack([p for p in store.claim(50, **CLAIM) if p.event_id.startswith("a")][:1])
    assert store.put(events(1, prefix="again"), client="10.0.0.1") == 1


def test_in_one_group_a_put_that_does_not_fit_fails_alone_and_ids_count_once(redis_url, tmp_path):
    store = RedisOutbox(redis_url, str(tmp_path), max_events=3)
    first = _Put({"a": "{}", "b": "{}"})
    too_many = _Put({"c": "{}", "d": "{}"})
    repeat = _Put({"a": "{}", "e": "{}"})
    store._commit([first, too_many, repeat])  # one script call
    assert (first.fresh, first.error) == (2, None)
    assert too_many.fresh == 0 and isinstance(too_many.error, OutboxFull)
    assert (repeat.fresh, repeat.error) == (1, None)
    assert store.stats()["depth"] == 3 and store.stats()["drops"]["full"] == 2


# -- what only the Redis store does -------------------------------------------------------------
class Killed(BaseException):
    """The relay process dies mid-send (kill -9): nothing after the send runs."""


def die(ids):
    raise Killed


def test_another_hosts_relay_takes_over_a_dead_relays_entries_after_the_lease(
    redis_url, tmp_path, clock
):
    host_a = RedisOutbox(redis_url, str(tmp_path / "a"), clock=clock)
    host_b = RedisOutbox(redis_url, str(tmp_path / "b"), clock=clock)
    assert host_a.consumer != host_b.consumer
    host_a.put(events(60))
    with pytest.raises(Killed):
        relay_for(host_a, Collector(die), lease_seconds=0.3).run_once()
    assert host_b.stats()["in_flight"] == 50
    collector = Collector()
    relay_b = relay_for(host_b, collector, lease_seconds=0.3)
    relay_b.run_once()
    assert collector.delivered == [f"e{i:04d}" for i in range(50, 60)], "not before the lease"
    time.sleep(0.4)
    drain(relay_b, clock)
    assert sorted(collector.delivered) == [event_id for event_id, _ in events(60)]
    assert host_b.redis.xlen(host_b.keys["stream"]) == 0, "acknowledged entries are trimmed"
    assert host_b.stats() | {"last_delivery_at": None} == host_b.stats() | {
        "depth": 0,
        "in_flight": 0,
        "delivered": 60,
        "last_delivery_at": None,
    }


def test_consumers_of_hosts_gone_are_forgotten_once_they_hold_nothing(redis_url, tmp_path, clock):
    gone = RedisOutbox(redis_url, str(tmp_path / "gone"), clock=clock)
    live = RedisOutbox(redis_url, str(tmp_path / "live"), clock=clock)
    gone.put(events(3))
    gone.claim(2, **CLAIM)  # holds two
    live.ack(live.claim(50, **CLAIM))  # took the third, holds nothing

    def consumers() -> set[str]:
        return {
            c["name"].decode() for c in live.redis.xinfo_consumers(live.keys["stream"], "relays")
        }

    assert consumers() == {gone.consumer, live.consumer}
    time.sleep(0.01)
    live.forget_seen(clock.now)  # forgets consumers idle longer than 0 ms
    assert consumers() == {gone.consumer}, "one that holds entries stays until they are taken"


def test_a_restarted_relay_takes_back_its_own_entries_at_once(redis_url, tmp_path, clock):
    first = RedisOutbox(redis_url, str(tmp_path), clock=clock)
    first.put(events(60))
    with pytest.raises(Killed):
        relay_for(first, Collector(die)).run_once()
    restarted = RedisOutbox(redis_url, str(tmp_path), clock=clock)  # same data dir
    assert restarted.consumer == first.consumer
    assert restarted.recover() == 50
    assert attempts(restarted, 50) == {1}, "the fatal attempt still counts"
    collector = Collector()
    drain(relay_for(restarted, collector), clock)
    assert sorted(collector.delivered) == [event_id for event_id, _ in events(60)]


def test_accepted_events_survive_kill_9_of_redis_with_appendfsync_always(tmp_path):
    process, url = start_redis(tmp_path / "redis")
    try:
        store = RedisOutbox(url, str(tmp_path))
        for start in range(0, 300, 10):
            store.put(events(10, prefix=f"b{start:03d}-"))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process, url = start_redis(tmp_path / "redis", port=int(url.rsplit(":", 1)[1][:-2]))
        assert RedisOutbox(url, str(tmp_path)).stats()["depth"] == 300
    finally:
        process.kill()
        process.wait()


def test_redis_down_is_an_outbox_error_so_the_beacon_answers_503(tmp_path):
    from storefront.klevu.analytics.outbox import OutboxError
    from tests.helpers import free_port

    store = RedisOutbox(f"redis://127.0.0.1:{free_port()}/0", str(tmp_path))
    with pytest.raises(OutboxError):
        store.put(events(1))
    with pytest.raises(redis.RedisError):
        store.claim(50, **CLAIM)
    assert issubclass(redis.ConnectionError, store.failures)


# -- the same interface for the rest of the shop --------------------------------------------------
def test_flask_relay_healthz_and_the_inspector_states_with_the_redis_outbox(
    sim, redis_url, tmp_path
):
    """``flask relay`` (a process of its own) delivers what the app accepted; ``/healthz`` and
    ``whereabouts`` (the inspector's delivery states) read the shared queue."""
    import os
    import subprocess
    import sys

    from storefront import create_app
    from storefront.klevu.analytics import delivery
    from storefront.simulator import account
    from storefront.simulator.account import shop_environment
    from tests.helpers import app_config, wait_until

    app = create_app(app_config(sim.url, tmp_path, OUTBOX_URL=redis_url, OUTBOX_RELAY_IN_APP="0"))
    store = delivery.outbox(app)
    assert isinstance(store, RedisOutbox)
    click = {
        "event": "select_recs_list",
        "event_apikey": account.API_KEY,
        "event_version": "1.0.0",
        "event_data": {"list_id": "k-home-picks", "items": [{"item_id": "10001"}]},
    }
    store.put([(event_id, click) for event_id, _ in events(7)])
    with app.test_client() as client:
        health = client.get("/healthz").get_json()["outbox"]
        assert (health["depth"], health["relay"]["running"]) == (7, False)
        assert client.get("/readyz").status_code == 200
    assert store.whereabouts(["e0000"])["e0000"]["state"] == "queued"
    env = {
        **os.environ,
        **shop_environment(sim.url),
        "OUTBOX_URL": redis_url,
        "STOREFRONT_DATA_DIR": str(tmp_path / "relay-host"),
    }
    relay = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "storefront", "relay"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "relay.log", "wb"),  # noqa: SIM115
    )
    try:
        wait_until(lambda: store.stats()["delivered"] == 7, 20, "see relay.log in tmp_path")
    finally:
        relay.terminate()
        said, _ = relay.communicate(timeout=10)
    assert relay.returncode == 0
    assert f"relaying redis://{redis_url.split('//')[1]}" in said.decode()
    assert store.whereabouts(["e0000"]) == {"e0000": {"state": "delivered"}}
    received = {event["event_id"] for event in sim.events()["events"]}
    assert received == {event_id for event_id, _ in events(7)}

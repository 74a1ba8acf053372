"""The claim rules the visitor service and the answers cache share, over cachelib's
SimpleCache (the store Flask-Caching gives without Redis) and a fake wall clock. Each
race is played out as one of its interleavings; tests/integration/test_segments_http.py and
test_answers_http.py run the same rules between two processes on Redis."""

from __future__ import annotations

import threading
import time

import pytest
from cachelib import SimpleCache

from storefront.klevu.single_flight import (
    FLIGHT_SECONDS,
    Joined,
    SingleFlight,
    claim_name,
    takeover_name,
)
from tests.helpers import FakeClock, run_together

KEY = "klevu:answer:config:abc"
CLAIM = "klevu:flight:answer:config:abc"


def soon() -> float:
    return time.monotonic() + 2


class Interleaving:
    """A store where another worker acts right after this worker's first ``get`` of a
    claim: the gap between reading a claim and acting on it (a round trip over Redis)."""

    def __init__(self, inner, after_get):
        self.inner = inner
        self.after_get = after_get

    def get(self, key):
        value = self.inner.get(key)
        if key.startswith("klevu:flight:") and self.after_get:
            hook, self.after_get = self.after_get, None
            hook()
        return value

    def __getattr__(self, name):
        return getattr(self.inner, name)


class BrokenStore:
    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("cache server down")

        return fail


def test_a_claim_is_named_after_the_key_its_call_fills():
    assert claim_name(KEY) == CLAIM
    assert claim_name("klevu:session:s-1") == "klevu:flight:session:s-1"


def test_of_many_workers_claiming_at_once_one_owns_the_call():
    flights = SingleFlight(SimpleCache())

    owners = run_together(20, lambda: flights.claim(KEY))

    assert owners.count(True) == 1
    assert not flights.claim(KEY)
    flights.release(KEY)
    assert flights.claim(KEY)  # released: the next miss calls again


@pytest.mark.parametrize(
    ("age", "taken_over"), [(FLIGHT_SECONDS - 1, False), (FLIGHT_SECONDS + 1, True)]
)
def test_a_claim_older_than_the_flight_time_is_taken_over(clock, age, taken_over):
    store = SimpleCache()
    store.add(CLAIM, clock() - age)
    flights = SingleFlight(store, clock=clock)

    assert flights.claim(KEY) is taken_over
    assert store.get(CLAIM) == (clock() if taken_over else clock() - age)


@pytest.mark.parametrize("alien", ["2026-12-07T17:00:00", True, [1.0], {"at": 1.0}])
def test_a_claim_that_is_not_a_time_is_taken_over(clock, alien):
    store = SimpleCache()
    store.add(CLAIM, alien)

    assert SingleFlight(store, clock=clock).claim(KEY)
    assert store.get(CLAIM) == clock()


def test_a_whole_second_is_a_time_too(clock):
    store = SimpleCache()
    store.add(CLAIM, int(clock()))  # another writer's int is a live claim, not an alien one

    assert not SingleFlight(store, clock=clock).claim(KEY)


def test_of_many_workers_finding_one_abandoned_claim_one_takes_it_over(clock):
    store = SimpleCache()
    store.add(CLAIM, clock() - FLIGHT_SECONDS - 1)
    flights = SingleFlight(store, clock=clock)

    owners = run_together(20, lambda: flights.claim(KEY))

    assert owners.count(True) == 1


def test_a_worker_that_read_the_abandoned_claim_before_another_took_it_over_does_not_own_it(
    clock,
):
    # Overwriting with set made both owners here; delete-then-add let the late worker delete
    # the new owner's claim and add its own, two owners again.
    shared = SimpleCache()
    shared.add(CLAIM, clock() - FLIGHT_SECONDS - 1)
    other_worker = SingleFlight(shared, clock=clock)
    took_over: list[bool] = []
    ours = SingleFlight(Interleaving(shared, lambda: took_over.append(other_worker.claim(KEY))))

    assert not ours.claim(KEY)
    assert took_over == [True] and shared.get(CLAIM) == clock()


def test_a_take_over_is_decided_once_per_abandoned_claim(clock):
    store = SimpleCache()
    store.add(CLAIM, clock() - FLIGHT_SECONDS - 1)
    store.add(takeover_name(CLAIM, clock() - FLIGHT_SECONDS - 1), 1)  # someone is taking it

    assert not SingleFlight(store, clock=clock).claim(KEY)


def test_an_owner_that_finds_the_answer_already_stored_releases_its_claim(clock):
    store = SimpleCache()
    flights = SingleFlight(store, clock=clock)
    # Another worker stored the answer and released its claim between our first look and
    # our claim: one more look finds it, and no call is made.
    store.set(KEY, "answer")
    joined = flights.join(KEY, lambda: store.get(KEY), soon())

    assert joined == Joined(value="answer")
    assert store.get(CLAIM) is None


def test_a_miss_with_nobody_calling_leads():
    flights = SingleFlight(SimpleCache())

    assert flights.join(KEY, lambda: None, soon()) == Joined(lead=True)
    assert not flights.claim(KEY)  # held until the caller releases it


def test_a_waiter_gets_what_the_owner_stored():
    store = SimpleCache()
    owner, waiter = SingleFlight(store), SingleFlight(store)
    assert owner.claim(KEY)

    def call() -> None:
        store.set(KEY, "answer")  # the call stores, then releases
        owner.release(KEY)

    threading.Timer(0.1, call).start()
    started = time.monotonic()
    joined = waiter.join(KEY, lambda: store.get(KEY), soon())

    assert joined == Joined(value="answer") and time.monotonic() - started < 1.0


def test_a_failed_call_fails_its_waiters_at_once():
    store = SimpleCache()
    owner, waiter = SingleFlight(store), SingleFlight(store)
    assert owner.claim(KEY)
    threading.Timer(0.1, owner.release, args=(KEY,)).start()  # released with nothing stored

    started = time.monotonic()
    joined = waiter.join(KEY, lambda: store.get(KEY), time.monotonic() + 3)

    assert joined == Joined(failed=True) and time.monotonic() - started < 1.0


def test_a_waiter_stops_at_its_due_time():
    store = SimpleCache()
    assert SingleFlight(store).claim(KEY)

    started = time.monotonic()
    joined: Joined[None] = SingleFlight(store).join(KEY, lambda: None, time.monotonic() + 0.2)

    assert joined == Joined()
    assert 0.2 <= time.monotonic() - started < 0.5


def test_a_waiter_whose_owner_dies_takes_the_call_over():
    clock = FakeClock()
    store = SimpleCache()
    assert SingleFlight(store, clock=clock).claim(KEY)
    threading.Timer(0.1, clock.advance, args=(FLIGHT_SECONDS + 1,)).start()

    started = time.monotonic()
    joined: Joined[None] = SingleFlight(store, clock=clock).join(KEY, lambda: None, soon())

    assert joined == Joined(lead=True) and time.monotonic() - started < 1.0


def test_settled_raising_stops_the_wait_and_releases_a_claim_it_made():
    store = SimpleCache()
    flights = SingleFlight(store)

    def breaker_open():
        raise RuntimeError("circuit open")

    with pytest.raises(RuntimeError):
        flights.join(KEY, breaker_open, soon())  # as the owner
    assert store.get(CLAIM) is None
    assert flights.claim(KEY)
    with pytest.raises(RuntimeError):
        SingleFlight(store).join(KEY, breaker_open, soon())  # as a waiter
    assert store.get(CLAIM) is not None  # the owner's claim is not the waiter's to drop


def test_without_a_working_cache_every_worker_calls_for_itself(caplog):
    flights = SingleFlight(BrokenStore())

    assert flights.claim(KEY) and flights.claim(KEY)
    flights.release(KEY)  # logged, not raised: the claim lapses on its own
    assert "cannot hold claims" in caplog.text and "lapses on its own" in caplog.text

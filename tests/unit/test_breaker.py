"""The circuit breaker's states with a fake clock, and the client using it (``responses``).
tests/integration/test_answers_http.py shows the same over real sockets."""

from __future__ import annotations

import logging
import threading

import pytest
import responses
from cachelib import SimpleCache

from storefront.config import klevu_settings
from storefront.klevu.breaker import CLOSED, ELSEWHERE_SECONDS, HALF_OPEN, OPEN, CircuitBreaker
from storefront.klevu.client import BreakerOpen, KlevuClient, KlevuError, parse_max_age
from storefront.simulator.account import shop_environment
from tests.helpers import FakeClock

SIM = "http://klevu.test"


def test_it_opens_after_the_failures_in_a_row_and_not_before():
    breaker = CircuitBreaker("search", failures=3, cooldown=10, clock=FakeClock())
    for _ in range(2):
        breaker.failed()
    breaker.succeeded()  # a success starts the count again
    for _ in range(2):
        breaker.failed()
    assert breaker.allow() and breaker.state == CLOSED

    breaker.failed()

    assert breaker.state == OPEN and not breaker.allow()


def test_after_the_cooldown_one_probe_at_a_time_decides():
    clock = FakeClock()
    breaker = CircuitBreaker("config", failures=1, cooldown=10, clock=clock)
    breaker.failed()
    clock.advance(10)

    assert breaker.state == HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else, while it runs
    breaker.failed()  # the probe failed: another cool-down
    assert breaker.state == OPEN and not breaker.allow()
    clock.advance(10)
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == CLOSED and breaker.allow() and breaker.allow()


def test_while_the_probe_is_in_flight_nobody_waits_on_the_service():
    clock = FakeClock()
    breaker = CircuitBreaker("search", failures=1, cooldown=10, clock=clock)
    breaker.failed()
    clock.advance(10)
    assert not breaker.is_open()  # half-open: the next caller may probe

    assert breaker.allow()
    assert breaker.is_open()  # the probe runs: the others fail at once
    breaker.succeeded()
    assert not breaker.is_open()


def test_opening_and_closing_are_logged_once_each(caplog):
    clock = FakeClock()
    breaker = CircuitBreaker("visitor", failures=2, cooldown=5, clock=clock)
    with caplog.at_level(logging.INFO, logger="storefront.klevu.breaker"):
        for _ in range(10):
            breaker.failed()
            breaker.allow()
        clock.advance(5)
        breaker.allow()
        breaker.failed()  # a failed probe: no second "open" line
        clock.advance(5)
        breaker.allow()
        breaker.succeeded()
        breaker.succeeded()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "circuit open" in lines[0] and "circuit closed" in lines[1]
    assert breaker.stats() == {
        "state": CLOSED,
        "opened_elsewhere": False,
        "failures_in_a_row": 0,
        "times_opened": 1,
        "refused": 9,  # counted, not logged: the 9 calls while it was open
    }


def test_concurrent_callers_in_half_open_state_let_exactly_one_probe_through():
    clock = FakeClock()
    breaker = CircuitBreaker("search", failures=1, cooldown=1, clock=clock)
    breaker.failed()
    clock.advance(1)
    allowed: list[bool] = []
    barrier = threading.Barrier(20)

    def call():
        barrier.wait()
        allowed.append(breaker.allow())

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(allowed) == [False] * 19 + [True]


def test_an_opening_is_shared_with_other_workers_for_the_cooldown():
    store, clock = SimpleCache(), FakeClock()
    here = CircuitBreaker("search", failures=1, cooldown=10, clock=clock, shared=store)
    there = CircuitBreaker("search", failures=1, cooldown=10, clock=clock, shared=store)

    here.failed()

    assert not there.allow() and there.is_open()
    assert there.stats()["state"] == OPEN and there.stats()["opened_elsewhere"]
    clock.advance(10)
    assert here.allow()  # the probe, in the worker that opened it
    here.succeeded()
    assert there.allow() and not there.is_open()


@responses.activate
def test_the_client_stops_calling_a_failing_service_and_only_that_one():
    client = KlevuClient(
        klevu_settings(shop_environment(SIM)), breaker_failures=3, breaker_cooldown=60
    )
    config = responses.get(f"{SIM}/recommendations/klevu-simulator/settings/k-a", status=503)
    search = responses.post(client.search_url(""), json={"queryResults": []})

    for _ in range(3):
        with pytest.raises(KlevuError):
            client.recs_config("k-a", {})
    with pytest.raises(BreakerOpen):
        client.recs_config("k-a", {})

    assert config.call_count == 3
    assert client.search(client.search_url(""), "{}").body == {"queryResults": []}
    assert search.call_count == 1
    assert client.breakers["config"].state == OPEN and client.breakers["search"].state == CLOSED


@responses.activate
def test_a_client_error_is_an_answer_not_a_sick_service():
    client = KlevuClient(klevu_settings(shop_environment(SIM)), breaker_failures=1)
    responses.get(f"{SIM}/recommendations/klevu-simulator/settings/k-missing", status=404)

    for _ in range(3):
        with pytest.raises(KlevuError) as failure:
            client.recs_config("k-missing", {})
        assert not isinstance(failure.value, BreakerOpen)


@pytest.mark.parametrize(
    "header, seconds",
    [
        (None, None),
        ("public, max-age=120", 120),
        ("max-age=0", 0),
        ("no-store", 0),
        ("no-cache, max-age=60", 0),
        ('max-age="30"', 30),
        ("s-maxage=50", None),
        ("max-age=abc", None),
    ],
)
def test_max_age_is_read_from_cache_control(header, seconds):
    assert parse_max_age(header) == seconds


def test_another_workers_opening_is_taken_as_given_for_a_second_not_asked_per_page():
    store, clock = SimpleCache(), FakeClock()
    here = CircuitBreaker("config", failures=1, cooldown=10, clock=clock, shared=store)
    there = CircuitBreaker("config", failures=1, cooldown=10, clock=clock, shared=store)
    here.failed()
    assert there.is_open()
    store.delete("klevu:breaker:config")  # closed elsewhere: seen within ELSEWHERE_SECONDS

    assert there.is_open()  # taken as given, without asking the cache
    clock.advance(ELSEWHERE_SECONDS)
    assert not there.is_open() and there.allow()


def test_a_call_its_page_stopped_waiting_for_fails_then_and_only_then():
    clock = FakeClock()
    breaker = CircuitBreaker("visitor", failures=3, cooldown=10, clock=clock)
    hung = [breaker.started(due=clock() + 0.8) for _ in range(3)]  # three pages' calls
    clock.advance(0.5)
    breaker.overdue()
    assert breaker.stats()["failures_in_a_row"] == 0  # their pages still wait

    clock.advance(0.3)
    breaker.overdue(clock())  # the pages stop waiting

    assert breaker.state == OPEN and not breaker.allow()
    for call in hung:  # their sockets time out, or they answer at last: counted already
        breaker.ended(call, ok=True)
    assert breaker.state == OPEN and breaker.stats()["failures_in_a_row"] == 3


def test_anyone_asking_the_breaker_counts_the_slow_calls_first():
    clock = FakeClock()
    breaker = CircuitBreaker("config", failures=2, cooldown=10, clock=clock)
    breaker.started(due=clock() + 0.8)
    breaker.started(due=clock() + 0.9)
    nobody_waits = breaker.started(due=None)  # a background refresh
    clock.advance(1)

    assert breaker.is_open()
    breaker.ended(nobody_waits, ok=False)  # counted when it ends, as before
    assert breaker.stats()["failures_in_a_row"] == 3


def test_failures_in_a_row_add_up_across_workers_and_a_success_ends_them():
    shared = SimpleCache()
    one, two = (
        CircuitBreaker("search", failures=3, cooldown=10, clock=FakeClock(), shared=shared)
        for _ in range(2)
    )
    one.failed()
    two.failed()
    one.succeeded()  # an answer anywhere: the service is not hung
    two.failed()
    one.failed()
    assert one.state == two.state == CLOSED

    two.failed()  # the third in a row, the second of this worker

    assert two.state == OPEN and one.is_open()  # the other worker sees it through the cache

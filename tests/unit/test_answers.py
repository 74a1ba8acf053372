"""The answers cache's rules with a fake client and clock: freshness, max-age, stale while
revalidate, stale if error, single flight, and a TTL of 0. tests/integration/test_answers_http.py
runs the same rules over real sockets against the simulator (and two processes on Redis)."""

from __future__ import annotations

import threading
import time

import pytest
from cachelib import SimpleCache

from storefront.klevu.banners.answers import KlevuAnswers, LateAnswer
from storefront.klevu.breaker import CircuitBreaker
from storefront.klevu.client import BreakerOpen, KlevuError, Reply
from tests.helpers import FakeClock, wait_until


class FakeClient:
    """``recs_config`` and ``search_url``/``search_body``/``search`` as
    KlevuClient has them; each answer says which call made it."""

    def __init__(self):
        self.calls: list[str] = []
        self.down = False
        self.max_age: int | None = None
        self.gate: threading.Event | None = None
        self.breakers = {service: CircuitBreaker(service) for service in ("config", "search")}
        self._lock = threading.Lock()

    def search_url(self, base_path):
        return "http://klevu.test/search"

    @staticmethod
    def search_body(payload):
        return repr(sorted(payload.items()))

    def _answer(self, what: str) -> Reply:
        with self._lock:
            self.calls.append(what)
            n = len(self.calls)
        if self.gate is not None:
            assert self.gate.wait(5), "test never released the gate"
        if self.down:
            raise KlevuError(f"{what}: HTTP 503", status=503)
        return Reply({"metadata": {}, "queryResults": [], "call": n}, self.max_age)

    def recs_config(self, recs_key, params, *, timeout=None, due=None):
        return self._answer(f"{recs_key} {sorted(params.items())}")

    def search(self, url, body, *, timeout=None, due=None):
        return self._answer(body)


@pytest.fixture
def klevu():
    fake = FakeClient()
    yield fake
    if fake.gate is not None:
        fake.gate.set()


def answers_for(klevu, clock, **kwargs) -> KlevuAnswers:
    return KlevuAnswers(klevu, SimpleCache(), clock=clock, **kwargs)


def soon() -> float:
    return time.monotonic() + 2


def test_a_fresh_answer_is_served_without_a_call_until_its_ttl_ends(klevu):
    clock = FakeClock()
    answers = answers_for(klevu, clock, config_ttl=300)

    first = answers.config("k-a", {"sids": "seg_vip"}, soon())
    clock.advance(299)
    again = answers.config("k-a", {"sids": "seg_vip"}, soon())

    assert (first.source, again.source) == ("fresh", "cache")
    assert again.body == first.body and len(klevu.calls) == 1
    assert answers.stats()["config"] == {
        "hit": 1,
        "miss": 1,
        "stale": 0,
        "refreshed": 0,
        "failed": 0,
    }


def test_every_parameter_and_every_body_is_its_own_answer(klevu):
    answers = answers_for(klevu, FakeClock())

    answers.config("k-a", {"sids": "seg_vip"}, soon())
    answers.config("k-a", {"sids": "seg_outdoor"}, soon())  # a persona switch
    answers.config("k-a", {"sids": "seg_vip", "pid": "7"}, soon())
    answers.search("host/cs/v2/search", {"q": 1}, soon())
    answers.search("host/cs/v2/search", {"q": 2}, soon())
    answers.search("host/cs/v2/search", {"q": 1}, soon())

    assert len(klevu.calls) == 5


def test_klevus_max_age_wins_over_the_setting(klevu):
    clock = FakeClock()
    answers = answers_for(klevu, clock, config_ttl=300)
    klevu.max_age = 10

    answers.config("k-a", {}, soon())
    clock.advance(11)

    assert answers.config("k-a", {}, soon()).source == "stale"


def test_past_freshness_the_stale_answer_is_served_at_once_and_refreshed_once(klevu):
    clock = FakeClock()
    answers = answers_for(klevu, clock, search_ttl=60)
    first = answers.search("h", {"q": 1}, soon())
    clock.advance(61)
    klevu.gate = threading.Event()  # the refresh hangs until released

    served = [answers.search("h", {"q": 1}, soon()) for _ in range(5)]

    assert {(a.source, a.body["call"]) for a in served} == {("stale", first.body["call"])}
    assert len(klevu.calls) == 2  # one refresh for five stale pages
    klevu.gate.set()
    wait_until(
        lambda: answers.search("h", {"q": 1}, soon()).source == "cache",
        5,
        "the refreshed answer was never stored",
    )
    assert answers.search("h", {"q": 1}, soon()).body["call"] == 2
    assert answers.stats()["search"]["refreshed"] == 1


def test_when_klevu_fails_a_stale_answer_serves_until_the_stale_limit(klevu):
    clock = FakeClock()
    answers = answers_for(klevu, clock, config_ttl=300, stale_limit=3600)
    answers.config("k-a", {}, soon())
    klevu.down = True

    clock.advance(3599)
    assert answers.config("k-a", {}, soon()).source == "stale"
    clock.advance(2)
    with pytest.raises(KlevuError):
        answers.config("k-a", {}, soon())


def test_a_ttl_of_zero_turns_that_cache_off(klevu):
    answers = answers_for(klevu, FakeClock(), config_ttl=0, search_ttl=60)

    sources = [answers.config("k-a", {}, soon()).source for _ in range(3)]
    answers.search("h", {"q": 1}, soon())
    answers.search("h", {"q": 1}, soon())

    assert sources == ["fresh"] * 3 and len(klevu.calls) == 4
    klevu.down = True
    with pytest.raises(KlevuError):  # nothing kept, not even for a failure
        answers.config("k-a", {}, soon())


def test_concurrent_misses_make_one_call_and_share_its_answer(klevu):
    answers = answers_for(klevu, FakeClock())
    klevu.gate = threading.Event()
    results: list = []

    def page():
        results.append(answers.config("k-a", {}, soon()))

    threads = [threading.Thread(target=page) for _ in range(10)]
    for thread in threads:
        thread.start()
    wait_until(lambda: klevu.calls, 2, "nobody called")
    time.sleep(0.1)
    klevu.gate.set()
    for thread in threads:
        thread.join(5)

    assert len(klevu.calls) == 1
    assert sorted(a.source for a in results) == ["cache"] * 9 + ["fresh"]


def test_a_waiter_gives_up_at_the_page_budget_and_the_late_answer_is_kept(klevu):
    answers = answers_for(klevu, FakeClock())
    klevu.gate = threading.Event()
    caller = threading.Thread(target=answers.config, args=("k-a", {}, soon()))
    caller.start()
    wait_until(lambda: klevu.calls, 2, "nobody called")

    started = time.monotonic()
    with pytest.raises(LateAnswer):
        answers.config("k-a", {}, time.monotonic() + 0.2)
    assert time.monotonic() - started < 1.0

    klevu.gate.set()
    caller.join(5)
    assert answers.config("k-a", {}, soon()).source == "cache"


def test_a_failed_shared_call_fails_its_waiters_at_once(klevu):
    answers = answers_for(klevu, FakeClock())
    klevu.gate, klevu.down = threading.Event(), True
    failures: list[Exception] = []

    def first_page():
        try:
            answers.config("k-a", {}, soon())
        except KlevuError as exc:
            failures.append(exc)

    caller = threading.Thread(target=first_page)
    caller.start()
    wait_until(lambda: klevu.calls, 2, "nobody called")
    threading.Timer(0.1, klevu.gate.set).start()

    started = time.monotonic()
    with pytest.raises(KlevuError):
        answers.config("k-a", {}, time.monotonic() + 3)
    caller.join(5)
    assert time.monotonic() - started < 2.0 and len(klevu.calls) == 1 and failures


def test_waiters_stop_waiting_when_the_service_s_breaker_opens_in_another_worker(klevu):
    store = SimpleCache()
    answers = KlevuAnswers(klevu, store, clock=FakeClock())
    klevu.breakers["config"] = CircuitBreaker("config", shared=store)
    klevu.gate = threading.Event()
    caller = threading.Thread(target=answers.config, args=("k-a", {}, soon()))
    caller.start()
    wait_until(lambda: klevu.calls, 2, "nobody called")
    other_worker = CircuitBreaker("config", failures=1, shared=store)
    threading.Timer(0.1, other_worker.failed).start()

    started = time.monotonic()
    with pytest.raises(BreakerOpen):
        answers.config("k-a", {}, time.monotonic() + 3)
    assert time.monotonic() - started < 1.0
    klevu.gate.set()
    caller.join(5)


def test_a_page_with_no_budget_left_neither_waits_nor_blames_the_service(klevu):
    answers = answers_for(klevu, FakeClock())
    klevu.gate = threading.Event()
    caller = threading.Thread(target=answers.config, args=("k-a", {}, soon()))
    caller.start()
    wait_until(lambda: klevu.calls, 2, "nobody called")

    with pytest.raises(LateAnswer):
        answers.config("k-a", {}, time.monotonic() - 0.1)  # step 1 spent the budget

    assert klevu.breakers["config"].stats()["failures_in_a_row"] == 0
    klevu.gate.set()
    caller.join(5)


def test_with_the_breaker_open_a_page_neither_calls_nor_claims(klevu):
    clock = FakeClock()
    answers = answers_for(klevu, clock, config_ttl=60, stale_limit=3600)
    answers.config("k-a", {}, soon())
    clock.advance(61)
    for _ in range(5):
        klevu.breakers["config"].failed()
    calls = len(klevu.calls)

    stale = answers.config("k-a", {}, soon(), fresh_only=True)  # the inline path
    with pytest.raises(BreakerOpen):
        answers.config("k-b", {}, soon(), fresh_only=True)
    with pytest.raises(BreakerOpen):
        answers.config("k-b", {}, soon())  # the pool's path

    assert stale.source == "stale" and len(klevu.calls) == calls


class CountingStore(SimpleCache):
    """A shared cache that counts reads of answers (not of claims or breakers)."""

    def __init__(self):
        super().__init__()
        self.answer_reads = 0

    def get(self, key):
        if key.startswith("klevu:answer:"):
            self.answer_reads += 1
        return super().get(key)


def test_with_the_breaker_open_pages_read_the_shared_cache_once_a_while(klevu, monkeypatch):
    """An open breaker's page must cost no more than a plain one: not a cache round trip per
    page for an answer that is not there; another worker's answer is still seen, later."""
    monkeypatch.setattr("storefront.klevu.banners.answers.OPEN_READ_SECONDS", 0.2)
    store = CountingStore()
    answers = KlevuAnswers(klevu, store, config_ttl=60)
    for _ in range(5):
        klevu.breakers["config"].failed()

    for _ in range(20):
        with pytest.raises(BreakerOpen):
            answers.config("k-b", {}, soon(), fresh_only=True)
    assert store.answer_reads == 1

    # Another worker's probe stores an answer: seen once the read is due again.
    other = KlevuAnswers(klevu, store, config_ttl=60)
    klevu.breakers["config"].succeeded()
    other.config("k-b", {}, soon())
    for _ in range(5):
        klevu.breakers["config"].failed()
    with pytest.raises(BreakerOpen):
        answers.config("k-b", {}, soon(), fresh_only=True)
    time.sleep(0.25)
    assert answers.config("k-b", {}, soon(), fresh_only=True).source == "cache"

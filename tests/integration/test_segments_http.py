"""Step 1 over real HTTP: the shop and the Klevu simulator (its own process). Costs are counted
where they land: the calls the simulator received (``/_sim/state``).

First one shop (a live Werkzeug server in a thread, in-process cache); then two app processes
sharing Redis, as several gunicorn workers or hosts would.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from storefront import create_app
from storefront.identity import CONSENT_COOKIE, load_personas
from storefront.klaviyo import KLA_ID_COOKIE, encode_kla_id, new_cid
from storefront.klevu.segments import cookie as segments_cookie
from storefront.klevu.segments.resolver import SESSION_COOKIE
from tests.helpers import (
    LiveServer,
    app_config,
    exchange_id,
    shop_processes,
    wait_until,
)

PERSONAS = {p["key"]: p for p in load_personas()["personas"]}


def persona_cookies(persona_key: str, cid: str | None = None, consent: bool = True) -> dict:
    cookies = {KLA_ID_COOKIE: encode_kla_id(exchange_id(persona_key), cid or new_cid())}
    if consent:
        cookies[CONSENT_COOKIE] = "granted"
    return cookies


def visitor_calls(sim) -> dict[str, int]:
    counts = sim.state()["counts"]
    return {kind: counts[kind] for kind in ("session_new", "session_refresh", "connector")}


def calls(new=0, refresh=0, connector=0) -> dict[str, int]:
    return {"session_new": new, "session_refresh": refresh, "connector": connector}


@pytest.fixture
def start_shop(sim, tmp_path):
    servers = []

    def start(**overrides) -> str:
        app = create_app(app_config(sim.url, tmp_path, OUTBOX_RELAY_IN_APP=False, **overrides))
        servers.append(LiveServer(app))
        return servers[-1].url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def shopper():
    """One visitor's shopper: it keeps the cookies the shop sets."""
    with requests.Session() as session:
        yield session


def segments_of(shop: str, cookies: dict) -> requests.Response:
    response = requests.get(f"{shop}/klevu/segments", cookies=cookies, timeout=10)
    response.raise_for_status()
    return response


def test_each_persona_sees_its_own_segments(start_shop, sim):
    shop = start_shop()
    for key, persona in PERSONAS.items():
        answer = segments_of(shop, persona_cookies(key)).json()
        assert (key, answer["segments"], answer["source"]) == (key, persona["segments"], "klevu")
    assert visitor_calls(sim) == calls(connector=len(PERSONAS))


def test_anonymous_and_unconsented_visitors_never_cost_a_connector_call(start_shop, sim):
    shop = start_shop()

    anonymous = segments_of(shop, {}).json()
    unconsented = segments_of(shop, persona_cookies("oliver", consent=False)).json()

    assert (
        anonymous
        == unconsented
        == {"segments": [], "seconds_left": 0, "source": "none", "session": True}
    )
    assert visitor_calls(sim) == calls(new=2)


def test_a_returning_visitor_within_the_ttl_costs_no_visitor_service_call(start_shop, sim, shopper):
    shop = start_shop()
    shopper.cookies.update(persona_cookies("maya"))

    first = shopper.get(f"{shop}/klevu/segments", timeout=10)
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert visitor_calls(sim) == calls(connector=1)

    later = [shopper.get(f"{shop}/klevu/segments", timeout=10) for _ in range(5)]

    # The first of them finds the answer in the shop's cache and leaves it with the browser
    # (klevu_segments); the rest read it from there.
    assert visitor_calls(sim) == calls(connector=1)
    assert [(r.json()["source"], tuple(r.json()["segments"])) for r in later] == [
        ("cache", ("seg_outdoor",)),
        *[("cookie", ("seg_outdoor",))] * 4,
    ]
    assert later[0].headers["Set-Cookie"].startswith(f"{segments_cookie.COOKIE}=")
    assert all("Set-Cookie" not in r.headers for r in later[1:])


def test_twenty_concurrent_first_requests_cost_one_visitor_service_call(start_shop, sim):
    shop = start_shop(KLEVU_PAGE_BUDGET_MS="5000")  # about coalescing, not latency
    cookies = persona_cookies("oliver")  # one shopper: one cid, no session cookie yet
    barrier = threading.Barrier(20)

    def first_request(_):
        barrier.wait()
        return segments_of(shop, cookies)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(first_request, range(20)))

    assert visitor_calls(sim) == calls(connector=1)
    assert {tuple(a.json()["segments"]) for a in answers} == {("seg_vip", "seg_style")}
    assert len({a.cookies[SESSION_COOKIE] for a in answers}) == 1


def test_a_new_exchange_id_is_asked_about_at_once(start_shop, sim, shopper):
    shop = start_shop()
    shopper.cookies.update(persona_cookies("maya", cid="c2FtZS1icm93c2Vy"))
    shopper.get(f"{shop}/klevu/segments", timeout=10)

    shopper.cookies.update(persona_cookies("sam", cid="c2FtZS1icm93c2Vy"))  # a new email link
    answer = shopper.get(f"{shop}/klevu/segments", timeout=10).json()

    assert answer["segments"] == ["seg_bargain"] and answer["source"] == "klevu"
    assert visitor_calls(sim) == calls(connector=2)


def test_the_session_is_refreshed_with_the_same_id_before_klevu_forgets_it(
    start_shop, sim, shopper
):
    sim.settings(session_ttl=3, segment_ttl=60)
    shop = start_shop()
    shopper.cookies.update({CONSENT_COOKIE: "granted"})  # anonymous first: session ttl 3 s
    shopper.get(f"{shop}/klevu/segments", timeout=10)
    session_id = shopper.cookies[SESSION_COOKIE]
    shopper.cookies.update(persona_cookies("priya"))
    shopper.get(f"{shop}/klevu/segments", timeout=10)

    time.sleep(2.8)  # past 90% of the session's ttl, before the simulator forgets it
    answer = shopper.get(f"{shop}/klevu/segments", timeout=10)

    # The same id re-posted, the connector info in the same call: one call, not two.
    assert visitor_calls(sim) == calls(new=1, connector=2)
    assert "Set-Cookie" not in answer.headers and shopper.cookies[SESSION_COOKIE] == session_id
    assert answer.json()["segments"] == ["seg_home"]


def test_when_the_visitor_service_is_down_last_known_segments_are_served(start_shop, sim, shopper):
    sim.settings(segment_ttl=1)
    shop = start_shop()
    shopper.cookies.update(persona_cookies("oliver"))
    shopper.get(f"{shop}/klevu/segments", timeout=10)
    time.sleep(1.1)
    sim.faults(visitor={"down": True})

    answer = shopper.get(f"{shop}/klevu/segments", timeout=10).json()

    assert answer == {
        "segments": ["seg_vip", "seg_style"],
        "seconds_left": 0,
        "source": "stale",
        "session": True,
    }


def test_a_slow_visitor_service_delays_the_page_by_its_deadline_only(start_shop, sim):
    sim.faults(visitor={"latency_ms": 1500})
    shop = start_shop(KLEVU_PAGE_BUDGET_MS="500")
    cookies = persona_cookies("maya")

    started = time.monotonic()
    late = segments_of(shop, cookies).json()
    elapsed = time.monotonic() - started

    assert late == {"segments": [], "seconds_left": 0, "source": "none", "session": False}
    assert elapsed < 1.0
    # The call the page stopped waiting for still lands, and its session is kept: the next
    # request finds it stored, or waits on the same call's claim.
    wait_until(lambda: visitor_calls(sim)["connector"], 5, "the late call never landed")
    sim.faults(visitor=None)
    answer = segments_of(shop, cookies).json()
    assert answer["segments"] == ["seg_outdoor"]
    assert visitor_calls(sim) == calls(connector=1)


# -- two app processes sharing Redis --------------------------------------------------------
# Configured from the environment like a deployed app: ``CACHE_REDIS_URL``, one data dir, one
# ``SECRET_KEY``. Their budget is generous: these tests are about how many calls are made, not
# how fast.
@pytest.fixture
def two_shops(sim, redis_url, tmp_path):
    with shop_processes(
        sim.url, tmp_path, CACHE_REDIS_URL=redis_url, KLEVU_PAGE_BUDGET_MS="5000"
    ) as urls:
        yield urls


@pytest.mark.redis
def test_twenty_concurrent_requests_over_two_processes_cost_one_call(two_shops, sim):
    cookies = persona_cookies("oliver")  # one shopper, no session cookie yet
    barrier = threading.Barrier(20)

    def first_request(i):
        barrier.wait()
        response = requests.get(f"{two_shops[i % 2]}/klevu/segments", cookies=cookies, timeout=10)
        response.raise_for_status()
        return response

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(first_request, range(20)))

    assert visitor_calls(sim) == calls(connector=1)
    assert {tuple(a.json()["segments"]) for a in answers} == {("seg_vip", "seg_style")}
    assert len({a.cookies[SESSION_COOKIE] for a in answers}) == 1


@pytest.mark.redis
def test_a_visitor_moving_between_processes_costs_no_further_call(two_shops, sim, redis_url):
    with requests.Session() as shopper:
        shopper.cookies.update(persona_cookies("maya"))
        first = shopper.get(f"{two_shops[0]}/klevu/segments", timeout=10).json()
        later = []
        for url in two_shops * 3:  # without the browser's copy: the shared cache answers
            shopper.cookies.pop(segments_cookie.COOKIE, None)
            later.append(shopper.get(f"{url}/klevu/segments", timeout=10).json())
        # With it, kept by the last process, the other one reads it: both sign alike.
        kept = shopper.get(f"{two_shops[0]}/klevu/segments", timeout=10).json()
        session_id = shopper.cookies[SESSION_COOKIE]

    assert first["source"] == "klevu"
    assert {(a["source"], tuple(a["segments"])) for a in later} == {("cache", ("seg_outdoor",))}
    assert (kept["source"], kept["segments"]) == ("cookie", ["seg_outdoor"])
    assert visitor_calls(sim) == calls(connector=1)
    # The keys docs/operations.md lists, and no claim left behind.
    with redis.Redis.from_url(redis_url) as client:
        keys = sorted(key.decode() for key in client.keys("*"))
    assert [re.sub(r"(:visitor:)[0-9a-f]{32}$", r"\1<hash>", key) for key in keys] == [
        f"storefront:klevu:segments:{session_id}",
        f"storefront:klevu:session:{session_id}",
        "storefront:klevu:visitor:<hash>",
    ]

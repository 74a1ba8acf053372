"""The answers cache, the page budget and the circuit breakers over real sockets: the shop on a
real server, the simulator as its own process, its fault plans standing in for a sick Klevu;
two processes sharing a real redis-server for the one-refresh-per-key rule."""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from storefront import create_app
from storefront.klaviyo import KLA_ID_COOKIE, encode_kla_id, new_cid
from storefront.klevu.banners import placement
from storefront.klevu.banners.placement import banner_services
from tests.helpers import (
    LiveServer,
    Simulator,
    app_config,
    browser_session,
    exchange_id,
    shop_processes,
    start_simulator,
    wait_until,
)

BANNER_RE = re.compile(r'data-klevu-banner="([^"]+)"[^>]*?data-klevu-token="([^"]+)"')
SERVICES = ("visitor", "config", "search")


@pytest.fixture(scope="module")
def hung_simulator():
    """A simulator of its own for the hung-service tests: the calls they leave sleeping there
    land after the test, and must not be counted by the tests that count calls."""
    simulator = start_simulator()
    yield simulator
    simulator.process.terminate()
    simulator.process.wait(timeout=10)


@pytest.fixture
def start_shop(sim, tmp_path):
    servers: list[LiveServer] = []

    def start(simulator: Simulator = sim, **env) -> LiveServer:
        app = create_app(
            app_config(
                simulator.url, tmp_path / f"shop{len(servers)}", OUTBOX_RELAY_IN_APP=False, **env
            )
        )
        servers.append(LiveServer(app))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def klevu_calls(sim) -> dict[str, int]:
    counts = sim.state()["counts"]
    return {
        "visitor": counts["session_new"] + counts["session_refresh"] + counts["connector"],
        "config": counts["config"],
        "search": counts["search"],
    }


def banners(html: str) -> dict[str, str]:
    """recs key → analytics token, for every banner with products on the page."""
    return dict(BANNER_RE.findall(html))


def answer_lookups(shop: LiveServer, monkeypatch) -> list[tuple]:
    """From now on, the shop's config and search answers looked up (their arguments)."""
    answers = banner_services(shop.app).answers
    looked_up: list[tuple] = []

    def counted(asked):
        def ask(*args, **kwargs):
            looked_up.append(args)
            return asked(*args, **kwargs)

        return ask

    monkeypatch.setattr(answers, "config", counted(answers.config))
    monkeypatch.setattr(answers, "search", counted(answers.search))
    return looked_up


def page(session: requests.Session, shop: LiveServer, path: str = "/") -> tuple[str, float]:
    started = time.monotonic()
    response = session.get(f"{shop.url}{path}", timeout=30)
    assert response.status_code == 200
    return response.text, time.monotonic() - started


def test_a_warm_page_makes_no_klevu_call_and_tokens_stay_per_page_view(start_shop, sim):
    shop = start_shop()
    visitor = browser_session("maya")
    first, _ = page(visitor, shop)
    before = klevu_calls(sim)

    views = [banners(page(visitor, shop)[0]) for _ in range(5)]

    assert klevu_calls(sim) == before
    assert all(set(v) == set(banners(first)) == {"k-home-picks"} for v in views)
    tokens = [v["k-home-picks"] for v in views]
    assert len(set(tokens)) == 5  # a new token (page view) every time
    health = requests.get(f"{shop.url}/healthz", timeout=5).json()
    assert health["answers"]["config"]["hit"] >= 5 and health["answers"]["search"]["hit"] >= 5


@pytest.mark.parametrize(
    "persona, path, shown",
    [
        ("maya", "/", {"k-home-picks"}),  # and k-home-recent, which has no clicks to show
        ("sam", "/checkout", {"k-checkout-together"}),  # a static banner, for the bargain hunter
    ],
)
def test_a_warm_page_looks_no_answer_up_whatever_its_placements_show(
    start_shop, monkeypatch, persona, path, shown
):
    """Each placement's outcome, a banner or nothing, is kept while its answers are fresh
    (on pages without the inspector, whose story tells where each answer came from)."""
    shop = start_shop(KLEVU_RECS_HOME="k-home-picks,k-home-recent", STOREFRONT_INSPECTOR="false")
    visitor = browser_session(persona)
    for _ in range(2):  # answers from Klevu, then from the cache: kept from here on
        page(visitor, shop, path)
    looked_up = answer_lookups(shop, monkeypatch)

    html, _ = page(visitor, shop, path)

    assert set(banners(html)) == shown
    assert looked_up == []


def test_a_new_identified_visitors_first_page_makes_one_visitor_service_call(start_shop, sim):
    shop = start_shop()
    html, _ = page(browser_session("oliver"), shop)

    counts = sim.state()["counts"]
    assert (counts["session_new"], counts["session_refresh"], counts["connector"]) == (0, 0, 1)
    assert "k-home-picks" in banners(html)


def test_a_persona_switch_changes_the_banner_on_the_next_page(start_shop, sim):
    shop = start_shop()
    visitor = browser_session("maya")
    page(visitor, shop)
    visitor.cookies.set(KLA_ID_COOKIE, encode_kla_id(exchange_id("oliver"), new_cid()))
    page(visitor, shop)

    configs = [
        c["detail"]
        for c in sim.state()["recent"]
        if c["kind"] == "config" and c["detail"]["recsKey"] == "k-home-picks"
    ]
    assert [c["sids"] for c in reversed(configs)] == [["seg_outdoor"], ["seg_vip", "seg_style"]]


def test_a_cached_banner_survives_every_klevu_service_down(start_shop, sim):
    shop = start_shop(KLEVU_CONFIG_TTL="1", KLEVU_SEARCH_TTL="1")
    visitor = browser_session("maya")
    page(visitor, shop)
    time.sleep(1.1)  # past freshness: stale from here on
    sim.faults(**{service: {"down": True} for service in SERVICES})

    html, _ = page(visitor, shop)

    assert "k-home-picks" in banners(html)
    stats = requests.get(f"{shop.url}/healthz", timeout=5).json()["answers"]
    assert stats["config"]["stale"] >= 1 and stats["search"]["stale"] >= 1


def test_the_breaker_opens_serves_without_waiting_probes_and_closes(start_shop, sim, caplog):
    shop = start_shop(
        KLEVU_CONFIG_TTL="0",
        KLEVU_SEARCH_TTL="0",
        KLEVU_BREAKER_FAILURES="2",
        KLEVU_BREAKER_COOLDOWN="1",
        KLEVU_PAGE_BUDGET_MS="3000",
    )
    visitor = browser_session()
    page(visitor, shop)
    sim.faults(search={"down": True})
    with caplog.at_level(logging.INFO, logger="storefront.klevu.breaker"):
        for _ in range(2):
            html, _ = page(visitor, shop)
            assert not banners(html)
        health = requests.get(f"{shop.url}/healthz", timeout=5).json()
        assert health["breakers"]["search"]["state"] == "open"
        searches = klevu_calls(sim)["search"]

        sim.faults(search={"latency_ms": 5000})  # now hung as well: nobody may wait on it
        for _ in range(3):
            html, took = page(visitor, shop)
            assert not banners(html) and took < 1.0
        assert klevu_calls(sim)["search"] == searches  # no call went out while open

        sim.faults(search=None)
        time.sleep(1.1)  # the cool-down: one probe may go

        def page_with_banner() -> str:
            html, _ = page(visitor, shop)
            return html if banners(html) else ""

        closed = wait_until(page_with_banner, 10, "the breaker never closed")
    assert "k-home-picks" in banners(closed)
    health = requests.get(f"{shop.url}/healthz", timeout=5).json()
    assert health["breakers"]["search"] == {
        "state": "closed",
        "opened_elsewhere": False,
        "failures_in_a_row": 0,
        "times_opened": 1,
        "refused": 3,  # the three pages while it was open: counted, not logged
    }
    lines = [r.getMessage() for r in caplog.records if r.name == "storefront.klevu.breaker"]
    assert len(lines) == 2 and "open" in lines[0] and "closed" in lines[1]


def test_while_a_breaker_is_open_pages_are_refused_without_asking_again(
    start_shop, sim, monkeypatch
):
    """A placement refused by an open breaker is refused again, for ``OPEN_READ_SECONDS``,
    without its requests being built and looked up; each such page is still counted."""
    shop = start_shop(
        KLEVU_SEARCH_TTL="1",
        KLEVU_STALE_LIMIT="0",
        KLEVU_BREAKER_FAILURES="2",
        KLEVU_BREAKER_COOLDOWN="60",
        STOREFRONT_INSPECTOR="false",
    )
    monkeypatch.setattr(placement, "OPEN_READ_SECONDS", 60.0)  # a slow machine's pages
    visitor = browser_session("maya")
    page(visitor, shop)
    time.sleep(1.1)  # the search answer expired, and may not be used stale
    sim.faults(search={"down": True})

    def search_breaker_open() -> bool:
        page(visitor, shop)
        health = requests.get(f"{shop.url}/healthz", timeout=5).json()
        return health["breakers"]["search"]["state"] == "open"

    wait_until(search_breaker_open, 10, "the search breaker never opened")
    page(visitor, shop)  # a cache-only try refused: kept
    looked_up = answer_lookups(shop, monkeypatch)
    answers = banner_services(shop.app).answers
    failed = answers.stats()["search"]["failed"]

    for _ in range(3):
        html, _ = page(visitor, shop)
        assert not banners(html)

    assert looked_up == []
    assert answers.stats()["search"]["failed"] == failed + 3
    assert klevu_calls(sim)["search"] >= 1  # the simulator was asked before it went down


@pytest.mark.parametrize("hung", [("visitor",), ("config",), ("search",), SERVICES])
def test_with_a_service_hung_a_new_visitors_page_takes_the_budget_not_more(
    start_shop, hung_simulator, hung
):
    hung_simulator.reset()
    shop = start_shop(hung_simulator, KLEVU_PAGE_BUDGET_MS="600")
    page(browser_session("priya"), shop)  # engines, pools, connections warm
    hung_simulator.faults(**{service: {"latency_ms": 3000} for service in hung})

    html, took = page(browser_session("maya"), shop)  # segments differ: nothing cached

    assert took < 0.6 + 0.6  # generous: this machine is shared
    assert not banners(html)


@pytest.mark.parametrize("service", SERVICES)
def test_with_a_service_hung_three_pages_wait_and_the_rest_are_served_at_once(
    start_shop, hung_simulator, service
):
    """A call counts as failed when its page stops waiting, not when its socket gives up
    (2 s later): new visitors one after another, and from the fourth on nobody waits."""
    hung_simulator.reset()
    ttl = {} if service == "visitor" else {f"KLEVU_{service.upper()}_TTL": "1"}
    shop = start_shop(
        hung_simulator,
        KLEVU_PAGE_BUDGET_MS="600",
        KLEVU_STALE_LIMIT="0",
        KLEVU_BREAKER_COOLDOWN="60",
        **ttl,
    )
    page(browser_session(), shop)  # what an anonymous visitor sees, cached
    page(browser_session("maya"), shop)  # and what maya's segments see
    time.sleep(1.1)  # the hung service's answers have expired: pages need it
    hung_simulator.faults(**{service: {"latency_ms": 5000}})

    took = [page(browser_session("maya"), shop)[1] for _ in range(8)]  # new visitors, in turn

    waited = [t >= 0.6 for t in took]  # the whole budget (two banners: two calls a page)
    assert 1 <= sum(waited) <= 3 and waited == sorted(waited, reverse=True), took
    assert all(t < 0.3 for t in took[sum(waited) :]), took  # nobody waits on an open breaker
    health = requests.get(f"{shop.url}/healthz", timeout=5).json()
    assert health["breakers"][service]["state"] == "open"


def test_an_anonymous_visitors_banners_do_not_wait_for_the_session_call(start_shop, sim):
    shop = start_shop(KLEVU_PAGE_BUDGET_MS="3000")
    page(browser_session(), shop)  # the anonymous answers, cached
    sim.faults(visitor={"latency_ms": 1500})

    html, took = page(browser_session(), shop)  # a new visitor: its session is slow

    assert "k-home-picks" in banners(html)
    assert took < 1.5 + 0.5  # the session call, not session + banners


# -- two processes sharing Redis ----------------------------------------------------------------
@pytest.mark.redis
def test_two_workers_sharing_redis_refresh_a_stale_answer_once(sim, redis_url, tmp_path):
    with shop_processes(
        sim.url,
        tmp_path,
        CACHE_REDIS_URL=redis_url,
        KLEVU_CONFIG_TTL="2",
        KLEVU_SEARCH_TTL="2",
        KLEVU_PAGE_BUDGET_MS="5000",
    ) as urls:
        visitor = browser_session()
        visitor.get(f"{urls[0]}/", timeout=10).raise_for_status()
        warm = klevu_calls(sim)
        time.sleep(2.2)  # every answer is stale now
        barrier = threading.Barrier(20)

        def stale_page(i):
            barrier.wait()
            return requests.get(f"{urls[i % 2]}/", cookies=visitor.cookies, timeout=10).text

        with ThreadPoolExecutor(20) as pool:
            pages = list(pool.map(stale_page, range(20)))

        assert all("k-home-picks" in banners(html) for html in pages)
        refreshed = wait_until(
            lambda: (lambda c: c if c["search"] > warm["search"] else None)(klevu_calls(sim)),
            5,
            "the stale answers were never refreshed",
        )
        time.sleep(0.5)  # room for a duplicate refresh to land
        calls = klevu_calls(sim)
        assert calls == refreshed
        # One refresh per key across both workers: the same calls as the first page made.
        assert (calls["config"] - warm["config"], calls["search"] - warm["search"]) == (
            warm["config"],
            warm["search"],
        )

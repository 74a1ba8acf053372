"""The beacon's limits over real sockets, tried as a flood would try them.

A shop served by Werkzeug on 127.0.0.1 whose collector is down (a closed port), so nothing
leaves the outbox. A second client is a connection from 127.0.0.2, a different address on
the same loopback network.
"""

from __future__ import annotations

import http.client
import itertools
import json
import time

import pytest

from storefront import create_app
from storefront.catalog import load_catalog
from storefront.extensions import cache
from storefront.klevu.analytics import tokens
from storefront.klevu.analytics.routes import beacon_limits
from tests.helpers import LiveServer, app_config, banner_tokens, free_port, sample_banner

PRODUCTS = load_catalog().products
BANNER = sample_banner(PRODUCTS[:3])
_views = itertools.count()


@pytest.fixture
def shop(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # Klevu and its collector: nobody listens
    config = app_config(
        dead,
        tmp_path,
        OUTBOX_MAX_EVENTS="2000",
        OUTBOX_MAX_AGE="60",
        KLEVU_STATS_URL=dead,
        OUTBOX_RELAY_IN_APP=False,
    )
    server = LiveServer(create_app(config))
    yield server
    server.stop()


def post(server: LiveServer, body: dict, *, source: str = "127.0.0.1", cookie: str = ""):
    """One beacon post from ``source``; (status, headers)."""
    port = server.server.server_port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        headers = {"Content-Type": "text/plain", "Sec-Fetch-Site": "same-origin"}
        if cookie:
            headers["Cookie"] = cookie
        conn.request("POST", "/klevu/events", json.dumps(body), headers)
        answer = conn.getresponse()
        answer.read()
        return answer.status, dict(answer.headers)
    finally:
        conn.close()


def a_view(server: LiveServer) -> dict:
    """An impression of a page view never seen before: a new event each time."""
    secret = server.app.config["SECRET_KEY"]
    return {"type": "view", "token": banner_tokens(secret, f"pv-{next(_views)}", BANNER)[0]}


def test_a_new_session_cookie_per_post_does_not_escape_the_limit(shop):
    statuses = [
        post(shop, {**a_view(shop)}, cookie=f"klevu_session=rotating{n:04d}")[0] for n in range(700)
    ]
    assert 429 in statuses, "500 of 500 were accepted when the limit keyed on the cookie"
    assert statuses.count(202) <= 600 + 10


def test_a_full_page_cache_does_not_drop_the_counters(shop, monkeypatch):
    # one window for the whole test: a turn would reset the counts
    monkeypatch.setattr(beacon_limits(shop.app), "window", 3600)
    view = a_view(shop)
    statuses = [post(shop, view)[0] for _ in range(61)]
    with shop.app.app_context():
        for n in range(12_000):  # past SimpleCache's threshold: it evicts the soonest-expiring
            cache.set(f"filler-{n}", n, timeout=3600)
    statuses += [post(shop, view)[0] for _ in range(5)]
    assert statuses == [202] * 60 + [429] * 6, statuses


def test_a_flood_during_an_outage_leaves_room_for_another_client(shop):
    answers = [post(shop, a_view(shop)) for _ in range(150)]
    statuses = [status for status, _ in answers]
    assert statuses[:100] == [202] * 100  # the flooder's share: 5 % of 2000, at least 100
    refused = [(status, headers) for status, headers in answers if status != 202]
    assert refused and all(status == 429 for status, _ in refused), statuses
    assert all(int(headers["Retry-After"]) >= 1 for _, headers in refused)
    assert post(shop, a_view(shop), source="127.0.0.2")[0] == 202


def test_a_full_queue_answers_503_with_retry_after(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # Klevu and its collector: nobody listens
    server = LiveServer(
        create_app(app_config(dead, tmp_path, OUTBOX_MAX_EVENTS="1", OUTBOX_RELAY_IN_APP=False))
    )
    try:
        assert post(server, a_view(server))[0] == 202
        status, headers = post(server, a_view(server), source="127.0.0.2")
        assert status == 503 and int(headers["Retry-After"]) >= 1
    finally:
        server.stop()


def test_a_token_is_refused_once_the_outbox_has_forgotten_its_ids(shop, monkeypatch):
    """OUTBOX_MAX_AGE is 60 s here: a token made 61 s ago would be a new event to the queue."""

    class Earlier:
        @staticmethod
        def time() -> float:
            return time.time() - 61

    with monkeypatch.context() as patched:
        patched.setattr(tokens, "time", Earlier)  # the clock tokens are signed by
        old = a_view(shop)
    status, _ = post(shop, old)
    assert status == 400


@pytest.mark.redis
def test_with_redis_two_processes_count_against_one_limit(tmp_path, redis_url, monkeypatch):
    """Two shops (as two workers) sharing Redis: a client's posts to both add up (alone,
    each would let 60 through)."""
    dead = f"http://127.0.0.1:{free_port()}"
    shops = [
        LiveServer(
            create_app(
                app_config(
                    dead,
                    tmp_path / name,
                    CACHE_REDIS_URL=redis_url,
                    OUTBOX_RELAY_IN_APP=False,
                )
            )
        )
        for name in ("a", "b")
    ]
    try:
        for shop in shops:  # one window for the whole test
            monkeypatch.setattr(beacon_limits(shop.app), "window", 3600)
        view = a_view(shops[0])
        statuses = [post(shops[n % 2], view)[0] for n in range(70)]
    finally:
        for shop in shops:
            shop.stop()
    assert statuses == [202] * 60 + [429] * 10

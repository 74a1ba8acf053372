"""The beacon (``POST /klevu/events``) and the no-JavaScript click route (``GET /klevu/click``):
every bad input gets its own answer and queues nothing; every real event is queued once.

The app is the real one (``create_app``) with its Klevu unreachable and no relay, so whatever a
request queued is still in the outbox for the test to read. Tokens are issued with the app's
key, as ``recs.py`` issues them, for a banner of catalog products plus one record whose id the
catalog does not have (and which looks like a URL, to tempt the click route off-site).
"""

from __future__ import annotations

import io
import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from typing import BinaryIO

import pytest
from flask import url_for

from storefront import create_app
from storefront.catalog import load_catalog
from storefront.extensions import cache
from storefront.klevu.analytics import routes, shown, tokens
from storefront.klevu.analytics.delivery import outbox
from storefront.klevu.analytics.events import SELECT, VIEW, BannerItem, BannerView
from storefront.klevu.analytics.recently_viewed import clicked_ids, format_ids
from storefront.klevu.analytics.routes import MAX_BODY, PAGE_VIEW_LIMIT
from storefront.klevu.memo import Memo
from tests.helpers import app_config, banner_tokens, free_port, sample_banner

PRODUCTS = load_catalog().products
NOT_IN_CATALOG = "//evil.example"
BANNER = sample_banner(PRODUCTS[:3], BannerItem(NOT_IN_CATALOG, "Elsewhere"))
OTHER_BANNER = replace(BANNER, recs_key="k-home-recent")
IN_BANNER, ALSO_IN_BANNER = PRODUCTS[0].id, PRODUCTS[1].id
NOT_IN_BANNER = PRODUCTS[10].id
SAME_SITE = {"Sec-Fetch-Site": "same-origin"}
OTHER_KEY = "not-the-shops-key"


# -- tokens and requests ----------------------------------------------------------------------
def token(app, page_view: str = "pv-1", banner: BannerView = BANNER) -> str:
    return banner_tokens(app.config["SECRET_KEY"], page_view, banner)[0]


def link(app, page_view: str = "pv-1", banner: BannerView = BANNER) -> str:
    """The token of a banner's no-JavaScript click links, its banner shown by a page."""
    with app.test_request_context():
        shown.remember(tokens.seal(banner))
    return banner_tokens(app.config["SECRET_KEY"], page_view, banner)[1]


def forged(signed: str) -> str:
    """A banner the client made up, under ``signed``'s signature: how a client would try to
    pass off its own banner as one we rendered."""
    own = banner_tokens(OTHER_KEY, "pv-1", OTHER_BANNER)[0]
    return f"{own.partition('.')[0]}.{signed.partition('.')[2]}"


BAD_TOKENS = [  # each made from a good token of the app
    pytest.param(lambda good: "", id="empty"),
    pytest.param(lambda good: "not-a-token", id="garbage"),
    pytest.param(lambda good: good[:-2], id="cut"),
    pytest.param(
        lambda good: banner_tokens(OTHER_KEY, "pv-1", BANNER)[0], id="signed-by-another-key"
    ),
    pytest.param(forged, id="forged-banner-under-our-signature"),
]


def view(app, page_view: str = "pv-1", banner: BannerView = BANNER) -> dict:
    return {"type": "view", "token": token(app, page_view, banner)}


def select(app, item: str, page_view: str = "pv-1") -> dict:
    return {"type": "select", "token": token(app, page_view), "item": item}


def beacon(client, body: dict | bytes, headers: dict = SAME_SITE):
    """Post like ``beacon.js``: a string body, which ``sendBeacon`` sends as text/plain."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/klevu/events", data=data, headers=headers, content_type="text/plain;charset=UTF-8"
    )


def beacon_stream(client, stream: BinaryIO):
    """A chunked post: no Content-Length, and a stream the server ends (Werkzeug's server and
    gunicorn say so with ``wsgi.input_terminated``)."""
    return client.post(
        "/klevu/events",
        input_stream=stream,
        headers={**SAME_SITE, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def click(client, **args):
    return client.get("/klevu/click", query_string=args)


def queued(app) -> list[tuple[str, dict]]:
    """``(event_id, payload)`` of every queued event, oldest first, read from the store."""
    with closing(sqlite3.connect(outbox(app).path)) as db:
        return [
            (event_id, json.loads(payload))
            for event_id, payload in db.execute("SELECT event_id, payload FROM outbox ORDER BY seq")
        ]


def refused(answer, status: int) -> bool:
    return answer.status_code == status and answer.is_json and bool(answer.json["error"])


# -- what is accepted -------------------------------------------------------------------------
def test_a_view_and_a_click_are_queued_as_the_banner_was_rendered(app, client):
    first = beacon(client, view(app))
    second = beacon(client, select(app, ALSO_IN_BANNER))
    assert (first.status_code, first.json) == (202, {"accepted": True, "duplicate": False})
    assert second.status_code == 202
    (view_id, impression), (click_id, selection) = queued(app)
    assert view_id == tokens.impression_id("pv-1", BANNER.recs_key)
    assert click_id == tokens.click_id("pv-1", BANNER.recs_key, ALSO_IN_BANNER)
    assert impression["event"] == VIEW
    assert [i["item_id"] for i in impression["event_data"]["items"]] == [
        item.id for item in BANNER.items
    ]
    assert selection["event"] == SELECT
    [item] = selection["event_data"]["items"]
    assert (item["item_id"], item["index"], item["price"]) == (
        ALSO_IN_BANNER,
        2,
        PRODUCTS[1].sale_price,
    )


# -- bodies -----------------------------------------------------------------------------------
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size, status", [(MAX_BODY, 202), (MAX_BODY + 1, 413)])
def test_a_body_may_be_8_kb_and_no_more(app, client, chunked, size, status):
    raw = json.dumps(view(app)).encode().ljust(size)  # JSON allows trailing blanks
    answer = beacon_stream(client, io.BytesIO(raw)) if chunked else beacon(client, raw)
    assert answer.status_code == status
    assert len(queued(app)) == (status == 202)
    if status == 413:
        assert refused(answer, 413)


def test_a_chunked_body_is_not_read_past_the_limit(app, client):
    upload = io.BytesIO(b" " * 2**20)
    assert refused(beacon_stream(client, upload), 413)
    assert upload.tell() <= MAX_BODY + 1


def test_a_declared_length_over_the_limit_is_refused_before_reading(app, client):
    upload = io.BytesIO(b" " * (MAX_BODY + 2))
    answer = client.post(
        "/klevu/events", input_stream=upload, headers=SAME_SITE, content_length=MAX_BODY + 2
    )
    assert refused(answer, 413)
    assert upload.tell() == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda t: b'{"type": "view", ', id="truncated-json"),
        pytest.param(lambda t: b"\xff\xfe\xfa\xfb", id="not-utf-8"),
        pytest.param(lambda t: b"[" * 8000, id="nested-deeper-than-the-parser-goes"),
        pytest.param(lambda t: b"", id="empty"),
        pytest.param(lambda t: b"[]", id="array"),
        pytest.param(lambda t: b'"view"', id="string"),
        pytest.param(lambda t: b"null", id="null"),
        pytest.param(lambda t: {"type": "view"}, id="no-token"),
        pytest.param(lambda t: {"type": "view", "token": [t]}, id="token-not-a-string"),
        pytest.param(lambda t: {"token": t}, id="no-type"),
        pytest.param(lambda t: {"type": "purchase", "token": t}, id="unknown-type"),
        pytest.param(lambda t: {"type": ["view"], "token": t}, id="type-not-a-string"),
        pytest.param(lambda t: {"type": "select", "token": t}, id="select-without-item"),
        pytest.param(
            lambda t: {"type": "select", "token": t, "item": int(IN_BANNER)},
            id="select-item-not-a-string",
        ),
        pytest.param(
            lambda t: {"type": "select", "token": t, "item": NOT_IN_BANNER},
            id="select-item-not-in-the-banner",
        ),
    ],
)
def test_bad_bodies_are_400_with_a_json_error(app, client, body):
    assert refused(beacon(client, body(token(app))), 400)
    assert queued(app) == []


@pytest.mark.parametrize("make_token", BAD_TOKENS)
def test_bad_tokens_are_400_with_a_json_error(app, client, make_token):
    assert refused(beacon(client, {"type": "view", "token": make_token(token(app))}), 400)
    assert queued(app) == []


# -- who may post -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "http://localhost:8080"},
    ],
    ids=[
        "cross-site",
        "cross-site-claiming-our-origin",
        "foreign-origin",
        "lookalike-origin",
        "other-port",
    ],
)
def test_posts_from_other_sites_are_403(app, client, headers):
    assert refused(beacon(client, view(app), headers=headers), 403)
    assert queued(app) == []


@pytest.mark.parametrize(
    "headers",
    [
        SAME_SITE,
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
        {"Origin": "http://localhost"},
        {},
    ],
    ids=["same-origin", "same-origin-with-origin", "our-origin", "old-browser-says-nothing"],
)
def test_posts_from_our_own_pages_are_accepted(app, client, headers):
    assert beacon(client, view(app), headers=headers).status_code == 202


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_a_flood_from_one_page_view_is_429_with_retry_after_and_its_next_page_view_passes(app):
    """The same token again and again: duplicates, so only the page view's limit refuses.
    They span at most two windows, so the first ``PAGE_VIEW_LIMIT`` pass and some cannot."""
    flooder = client_at(app, "10.0.0.1")
    answers = [
        beacon(flooder, view(app, page_view="pv-flood")) for _ in range(2 * PAGE_VIEW_LIMIT + 1)
    ]
    statuses = [answer.status_code for answer in answers]
    assert set(statuses[:PAGE_VIEW_LIMIT]) == {202}
    assert set(statuses) == {202, 429}
    first_refusal = answers[statuses.index(429)]
    assert refused(first_refusal, 429)
    assert 1 <= int(first_refusal.headers["Retry-After"]) <= 10
    assert beacon(flooder, view(app, page_view="pv-next")).status_code == 202


def test_new_cookies_do_not_escape_the_client_limit_and_other_clients_get_through(app, monkeypatch):
    """A new ``klevu_session`` cookie per post changes nothing: the address is counted."""
    monkeypatch.setattr(routes, "CLIENT_LIMIT", 20)
    flooder, shopper = client_at(app, "10.0.0.1"), client_at(app, "10.0.0.2")
    answers = []
    for n in range(41):
        flooder.set_cookie("klevu_session", f"rotating-{n}")
        answers.append(beacon(flooder, view(app, page_view=f"pv-{n}")))
    statuses = [answer.status_code for answer in answers]
    assert set(statuses[:20]) == {202}
    assert set(statuses) == {202, 429}
    assert beacon(shopper, view(app, page_view="pv-shopper")).status_code == 202
    assert len(queued(app)) == statuses.count(202) + 1


def test_filling_the_page_cache_does_not_lift_the_limit(app, monkeypatch):
    """The counters are not in the cache that pages fill (SimpleCache evicted them first)."""
    monkeypatch.setattr(routes, "CLIENT_LIMIT", 20)
    monkeypatch.setattr(routes.beacon_limits(app), "window", 3600)  # one window
    flooder = client_at(app, "10.0.0.1")
    statuses = [beacon(flooder, view(app, page_view=f"pv-{n}")).status_code for n in range(20)]
    for n in range(12_000):
        cache.set(f"filler-{n}", n, timeout=3600)
    statuses.append(beacon(flooder, view(app, page_view="pv-after")).status_code)
    assert statuses == [202] * 20 + [429]


# -- once each --------------------------------------------------------------------------------
def test_the_same_click_is_one_event_however_it_arrives(app, client):
    first, again = beacon(client, select(app, IN_BANNER)), beacon(client, select(app, IN_BANNER))
    assert (first.status_code, first.json["duplicate"]) == (202, False)
    assert (again.status_code, again.json["duplicate"]) == (202, True)
    assert click(client, t=link(app), id=IN_BANNER).status_code == 302  # no-JS link too
    assert beacon(client, select(app, ALSO_IN_BANNER)).json["duplicate"] is False
    assert [event_id for event_id, _ in queued(app)] == [
        tokens.click_id("pv-1", BANNER.recs_key, item) for item in (IN_BANNER, ALSO_IN_BANNER)
    ]


def test_one_impression_per_banner_per_page_view(app, client):
    for page_view, banner in [
        ("pv-1", BANNER),
        ("pv-1", BANNER),
        ("pv-1", OTHER_BANNER),
        ("pv-2", BANNER),
        ("pv-1", OTHER_BANNER),
    ]:
        assert beacon(client, view(app, page_view, banner)).status_code == 202
    assert [event_id for event_id, _ in queued(app)] == [
        tokens.impression_id("pv-1", BANNER.recs_key),
        tokens.impression_id("pv-1", OTHER_BANNER.recs_key),
        tokens.impression_id("pv-2", BANNER.recs_key),
    ]


# -- the no-JavaScript click route ------------------------------------------------------------
def test_a_click_link_records_and_goes_to_the_product(app, client):
    answer = click(client, t=link(app), id=ALSO_IN_BANNER)
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"/p/{ALSO_IN_BANNER}"
    [(event_id, event)] = queued(app)
    assert event_id == tokens.click_id("pv-1", BANNER.recs_key, ALSO_IN_BANNER)
    assert [i["item_id"] for i in event["event_data"]["items"]] == [ALSO_IN_BANNER]


def test_a_click_link_carries_a_short_token_naming_the_banner_not_its_products(app):
    full, short = token(app), link(app)
    assert len(short) < 110 < len(full)
    assert tokens.read_link_token(app.config["SECRET_KEY"], short, 60) == (
        "pv-1",
        tokens.view_key(BANNER),
    )
    with pytest.raises(tokens.BadToken):  # the beacon's token is not a click link's
        tokens.read_link_token(app.config["SECRET_KEY"], full, 60)
    with pytest.raises(tokens.BadToken):  # nor the reverse
        tokens.read_token(app.config["SECRET_KEY"], short, 60, api_key=BANNER.api_key)


def test_a_click_link_served_by_another_worker_finds_its_banner_in_the_shared_cache(
    app, client, monkeypatch
):
    monkeypatch.setitem(app.extensions, shown.SHOWN, Memo())  # the worker that shows it
    followed = link(app)
    monkeypatch.setitem(app.extensions, shown.SHOWN, Memo())  # one that never showed it

    answer = click(client, t=followed, id=ALSO_IN_BANNER)

    assert answer.headers["Location"] == f"/p/{ALSO_IN_BANNER}"
    [(event_id, _)] = queued(app)
    assert event_id == tokens.click_id("pv-1", BANNER.recs_key, ALSO_IN_BANNER)


def test_a_click_link_whose_banner_is_no_longer_known_still_leads_to_the_product(app, client):
    other = BannerView(**{**BANNER.__dict__, "title": "Shown long ago"})  # never remembered
    answer = click(
        client,
        t=banner_tokens(app.config["SECRET_KEY"], "pv-1", other)[1],
        id=ALSO_IN_BANNER,
    )
    assert (answer.status_code, answer.headers["Location"]) == (302, f"/p/{ALSO_IN_BANNER}")
    assert queued(app) == []  # unrecorded: nothing says what the banner showed


@pytest.mark.parametrize("make_token", [*BAD_TOKENS, pytest.param(lambda good: None, id="missing")])
def test_a_click_link_with_a_bad_token_is_a_400_page(app, client, make_token):
    bad = make_token(link(app))
    answer = click(client, id=IN_BANNER, **({} if bad is None else {"t": bad}))
    assert answer.status_code == 400
    assert answer.mimetype == "text/html"
    assert b"Back to the shop" in answer.data
    assert queued(app) == []


@pytest.mark.parametrize(
    "item",
    [
        NOT_IN_CATALOG,
        "https://evil.example",
        "http:/evil.example",
        "https:evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "//evil.example/p/10001",
        "%2F%2Fevil.example",
        " //evil.example",
        "javascript:alert(1)",
        "",
        NOT_IN_BANNER,
        None,
    ],
)
def test_a_click_link_never_leaves_the_shop(app, client, item):
    """Only a product both in the banner and in the catalog leads anywhere but home; the
    banner's record ``//evil.example`` is in the token, so the token alone cannot be trusted."""
    answer = click(client, t=link(app), **({} if item is None else {"id": item}))
    assert answer.status_code == 302
    with app.test_request_context():
        assert answer.headers["Location"] == url_for("shop.home")
    assert queued(app) == []


# -- static-content banners --------------------------------------------------------------------
SALE_IMAGES = [
    {"resolution": "desktop", "url": "/img/sale-wide.svg", "altTag": "Sale"},
    {"resolution": "mobile", "url": "/img/sale-tall.svg", "altTag": "Sale!"},
]
STATIC_BANNER = BannerView.from_static(
    "klevu-simulator",
    "k-checkout-together",
    {"title": "Sale", "pageType": "CHECKOUT", "logic": "BOUGHT_TOGETHER"},
    "STATIC_CONTENT",
    [
        {"targetUrl": "http://shop.test/sale", "contentType": "image", "image": SALE_IMAGES},
        {"targetUrl": "javascript:alert(1)", "contentType": "image", "image": []},
    ],
)


def test_a_static_banners_view_and_click_are_queued_with_the_image_shown(app, client):
    shown = ["/img/sale-tall.svg"]
    assert beacon(client, {**view(app, banner=STATIC_BANNER), "shown": shown}).status_code == 202
    chosen = {"type": "select", "token": token(app, banner=STATIC_BANNER), "item": "0"}
    assert beacon(client, {**chosen, "shown": shown}).status_code == 202
    (_, seen), (click_id, selected) = queued(app)
    phone = {
        "content_type": "image",
        "resolution": "mobile",
        "index": 1,
        "banner_image_url": "/img/sale-tall.svg",
        "banner_alt_tag": "Sale!",
    }
    assert seen["event_data"]["static_content"] == [phone, {"content_type": "image", "index": 2}]
    assert selected["event_data"]["static_content"] == [phone]
    assert selected["event_data"]["action"] == "STATIC_CONTENT"
    assert click_id == tokens.click_id("pv-1", STATIC_BANNER.recs_key, "0")


@pytest.mark.parametrize("shown", ["/img/sale-tall.svg", [1], ["x" * 2049], ["/a.svg"] * 21])
def test_a_beacon_naming_images_wrongly_is_refused(app, client, shown):
    answer = beacon(client, {**view(app, banner=STATIC_BANNER), "shown": shown})
    assert answer.status_code == 400
    assert queued(app) == []


def test_a_static_banners_image_link_records_and_goes_to_its_target(app, client):
    answer = click(client, t=link(app, banner=STATIC_BANNER), id="0")
    assert (answer.status_code, answer.headers["Location"]) == (302, "http://shop.test/sale")
    [(_, event)] = queued(app)
    assert event["event"] == SELECT and event["event_data"]["static_content"]
    assert "klevu_recent_clicks" not in answer.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("item", ["1", "2", "x", ""])
def test_a_static_link_to_nowhere_safe_goes_home_unrecorded(app, client, item):
    answer = click(client, t=link(app, banner=STATIC_BANNER), id=item)
    with app.test_request_context():
        assert answer.headers["Location"] == url_for("shop.home")
    assert queued(app) == []


def test_a_product_click_link_remembers_the_product_as_recently_viewed(app, client):
    client.set_cookie("shop_consent", "granted")
    click(client, t=link(app), id=IN_BANNER)
    answer = click(client, t=link(app), id=ALSO_IN_BANNER)
    stored = format_ids([ALSO_IN_BANNER, IN_BANNER])
    assert f"klevu_recent_clicks={stored}" in answer.headers["Set-Cookie"]


@pytest.mark.parametrize("consent", [None, "denied"])
def test_without_consent_nothing_is_remembered_or_read(app, client, consent):
    """JSv2 neither writes nor reads its "recently viewed" cookie without consent."""
    if consent:
        client.set_cookie("shop_consent", consent)
    client.set_cookie("klevu_recent_clicks", format_ids([IN_BANNER]))
    answer = click(client, t=link(app), id=ALSO_IN_BANNER)
    assert answer.status_code == 302
    assert "klevu_recent_clicks" not in answer.headers.get("Set-Cookie", "")
    with app.test_request_context(
        headers={"Cookie": f"klevu_recent_clicks={format_ids([IN_BANNER])}"}
    ):
        assert clicked_ids() == ()


# -- a full queue -----------------------------------------------------------------------------
def test_a_full_outbox_refuses_new_beacon_events_with_503_but_not_shoppers(tmp_path):
    app = create_app(
        app_config(
            f"http://127.0.0.1:{free_port()}",
            tmp_path,
            OUTBOX_RELAY_IN_APP=False,
            OUTBOX_MAX_EVENTS=1,
        )
    )
    client = app.test_client()
    assert beacon(client, view(app)).status_code == 202
    assert refused(beacon(client, view(app, page_view="pv-2")), 503)
    retried = beacon(client, view(app))  # already queued: a retry is no new event
    assert (retried.status_code, retried.json["duplicate"]) == (202, True)
    followed = click(client, t=link(app), id=IN_BANNER)
    assert (followed.status_code, followed.headers["Location"]) == (302, f"/p/{IN_BANNER}")
    stats = outbox(app).stats()
    assert (stats["depth"], stats["drops"]["full"]) == (1, 2)
    assert [event_id for event_id, _ in queued(app)] == [
        tokens.impression_id("pv-1", BANNER.recs_key)
    ]

"""Step 4 of the guide: impressions and clicks reach Klevu through our own server routes.

The browser never sends Klevu JSON: it sends back the banner token that the server issued when
it rendered the banner, and the server builds the event from what it actually rendered
(``events.py``), then writes it to the durable outbox before answering. The relay delivers it.

``POST /klevu/events`` — the beacon (``static/js/beacon.js``): ``{"type": "view"|"select",
"token": ..., "item": <product id, for select>, "shown": [<image URL>, ...]}`` as a string
body; ``shown`` (static-content banners) names the images the visitor's screen showed.
``GET /klevu/click?t=...`` — banner links without JavaScript: record, then redirect to the
shop's own product page (the shop's ``klevu.product_url_loader`` names it, never the URL), or
for a static-content banner to the ``targetUrl`` the signed token carries.

An event's ``session_id`` is the visitor's Klevu session cookie, which the page that rendered
the banner set: the routes read it, they do not resolve segments (step 1) again.
"""

from __future__ import annotations

import json
import logging
import math
from urllib.parse import urlsplit

import redis
from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from ...security import same_origin
from .. import klevu
from ..segments.resolver import session_cookie
from . import delivery, events, shown, tokens
from .limits import WindowCounter, client_key
from .outbox import ClientShareFull, OutboxError
from .recently_viewed import remember_click

log = logging.getLogger(__name__)

bp = Blueprint("analytics", __name__, url_prefix="/klevu")

MAX_BODY = 8 * 1024
RATE_WINDOW = 10  # seconds
MAX_SHOWN, MAX_URL = 20, 2048  # a static banner's images the beacon may name, and their size
# Beacon posts per window: per page view (a view and a few clicks per banner), and per client
# address, which a household or an office behind one NAT shares.
PAGE_VIEW_LIMIT = 60
CLIENT_LIMIT = 600
RETRY_FULL = 30  # seconds a client is asked to wait when the queue refuses events (503)


class Rejected(Exception):
    def __init__(self, status: int, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@bp.errorhandler(Rejected)
def rejected(exc: Rejected):
    answer = jsonify(error=str(exc))
    if exc.retry_after is not None:
        answer.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return answer, exc.status


LIMITS = "klevu.beacon_limits"  # app.extensions key, read through ``beacon_limits()``


def init_app(app: Flask) -> None:
    """The beacon's counters: in Redis when the shop has one, else in this process."""
    url = app.config.get("CACHE_REDIS_URL")
    shared = (
        redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5) if url else None
    )
    prefix = f"{app.config.get('CACHE_KEY_PREFIX', '')}beacon-rate:"
    app.extensions[LIMITS] = WindowCounter(RATE_WINDOW, redis=shared, prefix=prefix)


def beacon_limits(app: Flask | None = None) -> WindowCounter:
    """The app's beacon counters (``current_app``'s by default)."""
    return (app or current_app).extensions[LIMITS]


def _check_rate(key: str, limit: int) -> None:
    """One more post counted against ``key``; 429 with ``Retry-After`` once over ``limit``."""
    try:
        count, left = beacon_limits().hit(key)
    except redis.RedisError:  # Redis is down: losing events would be worse than a flood
        log.warning("rate limit unavailable: Redis error", exc_info=True)
        return
    if count > limit:
        raise Rejected(429, "too many events", retry_after=left)


def _client() -> str:
    """Who posts: the client's address, behind the proxies ``STOREFRONT_PROXY_HOPS`` trusts."""
    return client_key(request.remote_addr)


def _body() -> dict:
    """The posted JSON object, reading at most ``MAX_BODY`` + 1 bytes of the body.

    Werkzeug refuses a declared ``Content-Length`` over the limit before reading anything, and
    stops a chunked body (no length; the server marks it ``wsgi.input_terminated``) at the
    limit instead of reading it whole into memory. It returns the cut body without a word, so
    the one extra byte is what tells a body over the limit from one exactly at it.
    """
    request.max_content_length = MAX_BODY + 1
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise Rejected(413, "body over 8 KB") from None
    if len(raw) > MAX_BODY:
        raise Rejected(413, "body over 8 KB")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # "[[[[..." nests deeper than the parser's stack
        raise Rejected(400, "body is not JSON") from None
    if not isinstance(body, dict):
        raise Rejected(400, "body is not a JSON object")
    return body


def _read(token: object) -> tuple[str, events.BannerView]:
    """The token's page view and banner. A token lives no longer than the outbox remembers
    event ids (``OUTBOX_MAX_AGE``): a replay after that would be a new event to the queue."""
    if not isinstance(token, str):
        raise Rejected(400, "token missing")
    max_age = min(tokens.TOKEN_MAX_AGE, current_app.config["OUTBOX_MAX_AGE"])
    try:
        return tokens.read_token(
            current_app.config["SECRET_KEY"],
            token,
            max_age,
            api_key=current_app.config["KLEVU"].api_key,
        )
    except tokens.BadToken:
        raise Rejected(400, "malformed or unknown token") from None


def _shown(value: object) -> frozenset[str]:
    """The image URLs a beacon says it showed (only compared with the token's own)."""
    if (
        not isinstance(value, list)
        or len(value) > MAX_SHOWN
        or not all(isinstance(url, str) and len(url) <= MAX_URL for url in value)
    ):
        raise Rejected(400, f"shown must be a list of at most {MAX_SHOWN} image URLs")
    return frozenset(value)


def _accept(event_id: str, payload: dict) -> bool:
    """Durably queue the event; True when it was new (False: a duplicate, already queued)."""
    try:
        return delivery.outbox().put([(event_id, payload)], client=_client()) > 0
    except ClientShareFull:
        raise Rejected(
            429, "this client's share of the queue is full", retry_after=RETRY_FULL
        ) from None
    except OutboxError:
        raise Rejected(503, "analytics queue full, try later", retry_after=RETRY_FULL) from None


@bp.post("/events")
@same_origin.headers_only  # sendBeacon cannot carry the form token (see same_origin)
def beacon():
    body = _body()
    _check_rate(f"client:{_client()}", CLIENT_LIMIT)
    page_view, view = _read(body.get("token"))
    _check_rate(f"view:{page_view}", PAGE_VIEW_LIMIT)
    kind = body.get("type")
    shown = _shown(body.get("shown", []))
    if kind == "view":
        payload = events.impression(view, session_cookie(), shown)
        event_id = tokens.impression_id(page_view, view.recs_key)
    elif kind == "select":
        item = body.get("item")
        if not isinstance(item, str):
            raise Rejected(400, "select needs an item id")
        try:
            payload = events.click(view, session_cookie(), item, shown)
        except events.UnknownItem:
            raise Rejected(400, "item not in this banner") from None
        event_id = tokens.click_id(page_view, view.recs_key, item)
    else:
        raise Rejected(400, "type must be view or select")
    new = _accept(event_id, payload)
    return jsonify(accepted=True, duplicate=not new), 202


@bp.get("/click")
def click():
    """No-JavaScript banner link: record the click, then go to the product (ours only).

    A shopper followed a link here, so every answer is a page: the shop's error page for a bad
    token (not the JSON the beacon gets), and the product even when the queue refuses the
    click, because losing one click is better than a shopper stuck on an error page.
    """
    token = request.args.get("t", "")
    try:
        page_view, key = tokens.read_link_token(
            current_app.config["SECRET_KEY"],
            token,
            min(tokens.TOKEN_MAX_AGE, current_app.config["OUTBOX_MAX_AGE"]),
        )
    except tokens.BadToken:
        error = BadRequest("This link has expired. Please go back and try again.")
        return render_template("errors/error.html", error=error), error.code
    item_id = request.args.get("id", "")
    view = shown.recall(key)
    if view is None:  # shown too long ago, or the shared cache lost it: the product, unrecorded
        log.warning("banner click on %s not recorded: its banner is no longer known", item_id)
        return redirect(klevu.product_url(item_id) or _home())
    if view.is_static:
        return _static_click(page_view, view, item_id)
    product_url = klevu.product_url(item_id)
    if product_url is None or item_id not in {item.id for item in view.items}:
        return redirect(_home())
    _record_click(page_view, view, item_id)
    remember_click(item_id)
    return redirect(product_url)


def _record_click(page_view: str, view: events.BannerView, item: str) -> None:
    """Queue a no-JavaScript click's event. A refusal (queue full, rate) is logged and the
    visitor still goes where the link leads: a click never stops at an error page."""
    try:
        _accept(
            tokens.click_id(page_view, view.recs_key, item),
            events.click(view, session_cookie(), item),
        )
    except Rejected as exc:
        log.warning("banner click on %s (%s) not recorded: %s", item, view.recs_key, exc)


def _home() -> str:
    """Where a link that leads nowhere lands: the site's root."""
    return request.script_root + "/"


def _static_click(page_view: str, view: events.BannerView, index: str):
    """A static banner's image followed without JavaScript: record it like a product click,
    then go where the merchant's config points (read from the signed token, never the URL)."""
    try:
        target = events.static_entry(view, index).get("targetUrl")
    except events.UnknownItem:
        return redirect(_home())
    if not isinstance(target, str) or urlsplit(target).scheme not in ("", "http", "https"):
        return redirect(_home())
    _record_click(page_view, view, index)
    return redirect(target)

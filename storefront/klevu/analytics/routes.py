"""Step 4 of the guide: impressions and clicks reach Klevu through our own server routes.

The browser never sends Klevu JSON: it sends back the banner token that the server issued when
it rendered the banner, and the server builds the event from what it actually rendered
(``events.py``), then writes it to the durable outbox before answering. The relay delivers it.

``POST /klevu/events`` — the beacon (``static/js/beacon.js``): ``{"type": "view"|"select",
"token": ..., "item": <product id, for select>}`` as a string body.
``GET /klevu/click?t=...`` — banner links without JavaScript: record, then redirect to the
shop's own product page (the shop's ``klevu.product_url_loader`` names it, never the URL), or
for a static-content banner to the ``targetUrl`` the signed token carries.

An event's ``session_id`` is the visitor's Klevu session cookie, which the page that rendered
the banner set: the routes read it, they do not resolve segments (step 1) again.
"""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, redirect, render_template, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from ...extensions import cache
from ...security import same_origin
from .. import klevu, shown
from ..segments.resolver import session_cookie
from . import events, tokens
from .outbox import OutboxError
from .recently_viewed import remember_click

log = logging.getLogger(__name__)

bp = Blueprint("analytics", __name__, url_prefix="/klevu")

MAX_BODY = 8 * 1024
TOKEN_MAX_AGE = 24 * 3600
RATE_WINDOW = 10  # seconds
RATE_LIMIT = 60  # beacon posts per visitor per window (a page has a few banners)


class Rejected(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@bp.errorhandler(Rejected)
def rejected(exc: Rejected):
    return jsonify(error=str(exc)), exc.status


def _check_rate() -> None:
    """A fixed-window counter per visitor in the shared cache (works across workers).

    It uses cachelib's backend (``cache.cache``) directly, whose ``inc`` is atomic (``INCR`` on
    Redis, under a lock in ``SimpleCache``); Flask-Caching's front-end has no counter.
    """
    visitor = session_cookie() or request.remote_addr or "-"
    key = f"rate:{visitor}:{int(time.time() // RATE_WINDOW)}"
    try:
        cache.cache.add(key, 0, timeout=RATE_WINDOW * 2)
        count = cache.cache.inc(key) or 0
    except Exception:  # the cache (Redis) is down: losing events would be worse than a flood
        log.warning("rate limit unavailable: cache error", exc_info=True)
        return
    if count > RATE_LIMIT:
        raise Rejected(429, "too many events")


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
    if not isinstance(token, str):
        raise Rejected(400, "token missing")
    try:
        return tokens.read_token(current_app.config["SECRET_KEY"], token, TOKEN_MAX_AGE)
    except tokens.BadToken:
        raise Rejected(400, "malformed or unknown token") from None


def _accept(event_id: str, payload: dict) -> bool:
    """Durably queue the event; True when it was new (False: a duplicate, already queued)."""
    try:
        return current_app.extensions["outbox"].put([(event_id, payload)]) > 0
    except OutboxError:
        raise Rejected(503, "analytics queue full, try later") from None


@bp.post("/events")
@same_origin.headers_only  # sendBeacon cannot carry the form token (see same_origin)
def beacon():
    body = _body()
    _check_rate()
    page_view, view = _read(body.get("token"))
    kind = body.get("type")
    if kind == "view":
        payload = events.impression(view, session_cookie())
        event_id = tokens.impression_id(page_view, view.recs_key)
    elif kind == "select":
        item = body.get("item")
        if not isinstance(item, str):
            raise Rejected(400, "select needs an item id")
        try:
            payload = events.click(view, session_cookie(), item)
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
            current_app.config["SECRET_KEY"], token, TOKEN_MAX_AGE
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
    try:
        _accept(
            tokens.click_id(page_view, view.recs_key, item_id),
            events.click(view, session_cookie(), item_id),
        )
    except Rejected as exc:
        log.warning("banner click on product %s not recorded: %s", item_id, exc)
    remember_click(item_id)
    return redirect(product_url)


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
    try:
        _accept(
            tokens.click_id(page_view, view.recs_key, index),
            events.click(view, session_cookie(), index),
        )
    except Rejected as exc:
        log.warning("static banner click on %s not recorded: %s", view.recs_key, exc)
    return redirect(target)

"""The page inspector: "How this page was personalised", a closed panel on every shop page.

It tells the story of *this* page view (``story.py``) from the request's trace
(``storefront/klevu/trace.py``): who the visitor is, the segments, each banner's config and
search, why a banner is missing; then, updated live by ``static/js/inspector.js``, where this
page view's analytics events are (``/inspector/events``).

On by default with the simulator, off with a live api key unless ``STOREFRONT_INSPECTOR`` is
true. What it serves is only the requesting browser's own: page views are recorded under a
random HttpOnly cookie (``shop_inspector``), and the events route answers only for a page view
recorded under the same cookie. The api key is masked everywhere.

The record (recent page views, and what identified the visitor) lives in the shared cache for
an hour. Two pages of one browser finishing at the same instant may each keep only their own
view in it; the cost is one page missing from the events list, never another visitor's data.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, request

from ..extensions import cache
from ..identity import current_identity, load_personas
from ..klaviyo import KLA_ID_COOKIE
from ..klevu import trace
from ..klevu.analytics import delivery, tokens
from ..klevu.budget import page_view
from .story import Story, build_story, identity_step

log = logging.getLogger(__name__)

bp = Blueprint("inspector", __name__)

OWNER_COOKIE = "shop_inspector"
_OWNER_RE = re.compile(r"[A-Za-z0-9_\-]{22,64}")
RECORD_SECONDS = 3600
VIEWS_KEPT = 8
EARLIER_SHOWN = 2  # earlier page views listed under "this page view" (a click's page)


def enabled() -> bool:
    return bool(current_app.config["STOREFRONT_INSPECTOR"])


def _owner() -> str:
    """This browser's inspector id: its cookie, or a new one sent with the response."""
    if "inspector_owner" not in g:
        value = request.cookies.get(OWNER_COOKIE, "")
        g.inspector_owner_new = not _OWNER_RE.fullmatch(value)
        g.inspector_owner = secrets.token_urlsafe(24) if g.inspector_owner_new else value
    return g.inspector_owner


def _record_key() -> str:
    return "inspector:" + hashlib.sha256(_owner().encode()).hexdigest()[:32]


def _record() -> dict:
    value = cache.get(_record_key())
    return value if isinstance(value, dict) else {"views": [], "identified": None}


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


@bp.before_app_request
def start_trace() -> None:
    if enabled() and request.endpoint not in (None, "static") and request.blueprint != "inspector":
        trace.begin()


@bp.app_context_processor
def panel() -> dict:
    return {"inspector_story": _page_story if enabled() and trace.current() else None}


def _page_story(page_type: str) -> Story | None:
    """Called once by the page's template, after its banners were fetched. A story that
    cannot be told is left out (and logged): the page itself always renders."""
    try:
        return _told(page_type)
    except Exception:
        log.exception("page inspector failed; the page is shown without it")
        return None


def _told(page_type: str) -> Story:
    current = trace.current()
    notes = current.notes if current else []
    visitor = current_identity()
    settings = current_app.config["KLEVU"]
    identified = _safe(_record).get("identified") or {}
    via = (
        identified.get("via")
        if visitor.exchange_id and identified.get("x") == _digest(visitor.exchange_id)
        else None
    )
    story = build_story(
        page_view=page_view().id,
        notes=notes,
        recs_keys=settings.recs.get(page_type, ()),
        api_key=settings.api_key,
        identity=identity_step(
            visitor, cookie_present=KLA_ID_COOKIE in request.cookies, source=via
        ),
        segment_names=load_personas()["segments"],
    )
    g.inspector_page = {
        "pv": story.page_view,
        "path": request.path,
        "page_type": page_type,
        "at": time.time(),
        "banners": _banner_items(current) if current else [],
    }
    return story


def _banner_items(current: trace.Trace) -> list[dict]:
    """The products of each banner shown, read back from its token (what events will name)."""
    found = []
    for shown in current.find("outcome", result="shown"):
        if not shown.facts.get("token"):
            continue
        try:
            _, view = tokens.read_token(
                current_app.config["SECRET_KEY"],
                shown.facts["token"],
                tokens.TOKEN_MAX_AGE,
                api_key="",
            )
        except tokens.BadToken:
            continue
        found.append(
            {
                "key": view.recs_key,
                "title": view.title,
                "items": [[item.id, item.name] for item in view.items],
            }
        )
    return found


def _safe(read: Any) -> dict:
    try:
        return read()
    except Exception:  # the cache (Redis) is down: the panel tells less, the page still renders
        log.warning("inspector record unavailable", exc_info=True)
        return {}


@bp.after_app_request
def remember(response):
    current = trace.current()
    if current is None:
        return response
    identified = current.find("identity")
    page = g.pop("inspector_page", None)
    if not identified and page is None:
        return response
    try:
        record = _record()
        exchange = current_identity().exchange_id
        if identified and exchange:
            record["identified"] = {"via": identified[-1].facts["via"], "x": _digest(exchange)}
        if page is not None and response.status_code == 200:  # not a 404 favicon
            record["views"] = [*record["views"], page][-VIEWS_KEPT:]
        cache.set(_record_key(), record, timeout=RECORD_SECONDS)
    except Exception:
        log.warning("inspector record not saved", exc_info=True)
        return response
    if g.get("inspector_owner_new"):
        response.set_cookie(
            OWNER_COOKIE,
            _owner(),
            max_age=RECORD_SECONDS,
            httponly=True,
            samesite="Lax",
        )  # Secure under HTTPS: security/cookies.py
    return response


@bp.get("/inspector/events")
def events():
    """Step 4, live: where this page view's (and the previous pages') events are now."""
    if not enabled():
        abort(404)
    views = _record()["views"]
    wanted = request.args.get("pv", "")
    index = next((i for i, view in enumerate(views) if view["pv"] == wanted), None)
    if index is None:
        abort(404)
    shown = [views[index], *reversed(views[max(0, index - EARLIER_SHOWN) : index])]
    outbox = delivery.outbox()
    answer = []
    for view in shown:
        wanted_ids = _event_ids(view)
        where = outbox.whereabouts([event_id for event_id, _ in wanted_ids])
        answer.append(
            {
                "pv": view["pv"],
                "path": view["path"],
                "page_type": view["page_type"],
                "current": view is views[index],
                "events": [
                    {**event, **where.get(event_id, {"state": "waiting"})}
                    for event_id, event in wanted_ids
                    if event["event"] == "view_recs_list" or event_id in where
                ],
            }
        )
    response = jsonify(page_views=answer)
    response.cache_control.no_store = True
    return response


def _event_ids(view: dict) -> list[tuple[str, dict]]:
    """Every event this page view's banners can emit, with its outbox id (tokens.py)."""
    found = []
    for banner in view["banners"]:
        found.append(
            (
                tokens.impression_id(view["pv"], banner["key"]),
                {
                    "event": "view_recs_list",
                    "banner": banner["key"],
                    "title": banner["title"],
                    "item": None,
                },
            )
        )
        for item_id, name in banner["items"]:
            found.append(
                (
                    tokens.click_id(view["pv"], banner["key"], item_id),
                    {
                        "event": "select_recs_list",
                        "banner": banner["key"],
                        "title": banner["title"],
                        "item": name or item_id,
                    },
                )
            )
    return found

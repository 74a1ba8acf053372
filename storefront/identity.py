"""Step 0 of every page view: who the visitor is to Klaviyo, and whether we may use it.

The ``identity`` blueprint owns, for each request:

- **the identity** (``current_identity()``): Klaviyo's ``__kla_id`` cookie read through
  ``storefront.klaviyo``, gated by consent and by Klaviyo's own ``__kla_off=true``;
- **consent**: the shop's first-party cookie ``shop_consent`` (``granted``/``denied``). When
  ``CONSENT_REQUIRED`` (the default) only ``granted`` lets the exchange id reach Klevu; without
  it, consent is assumed unless the visitor declined. Declining or withdrawing expires
  ``__kla_id`` and forgets the visitor's Klevu segments;
- **email links**: a ``_kx`` parameter on any page is taken off the URL with a redirect; when it
  is meant for this shop it identifies the visitor first, as Klaviyo's script would. A link that
  arrives before the visitor has chosen waits in a short-lived HttpOnly cookie and is applied
  if they accept;
- **live Klaviyo** (``KLAVIYO_ONSITE``): Klaviyo's onsite script is loaded after consent and
  handles ``_kx`` and the cookie itself; the shop then only reads the cookie;
- **who may be identified**: ``identify`` and ``forget_visitor`` write and expire the
  cookies; the demo's persona switcher (``storefront/personas.py``) uses them too.

Whatever the browser sends, none of this raises: a cookie we cannot read is an anonymous visitor.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    request,
    url_for,
)
from werkzeug.wrappers import Response  # what redirect() returns; flask's is a subclass

from . import klaviyo
from .klevu import klevu, trace
from .klevu.segments.resolver import current_segments, forget_segments
from .klevu.segments.visitor import Visitor
from .security.headers import allow_script_from

log = logging.getLogger(__name__)

bp = Blueprint("identity", __name__)

CONSENT_COOKIE = "shop_consent"
CONSENT_MAX_AGE = 365 * 24 * 3600
GRANTED, DENIED = "granted", "denied"
# A _kx that arrived before the consent choice; applied on "accept", dropped on "decline".
PENDING_KX_COOKIE = "shop_pending_kx"
PENDING_KX_MAX_AGE = 30 * 60

# A same-site path: one leading "/" (never "//" or "/\", which browsers read as another host),
# no backslash, whitespace or control character anywhere.
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\\\s\x00-\x1f\x7f]*")
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?%"


@dataclass(frozen=True)
class Identity:
    """The visitor as this request sees them. ``exchange_id`` is set only when the cookie is
    valid *and* consent allows its use, so code that reads it cannot forget the consent check.
    """

    exchange_id: str | None
    cid: str | None  # Klaviyo's anonymous visitor id, kept when we rewrite the cookie
    consent: str | None  # "granted", "denied", or None: no choice made yet
    consent_required: bool
    tracking_off: bool  # __kla_off=true
    persona: dict | None  # the demo persona this exchange id belongs to

    @property
    def consent_given(self) -> bool:
        return self.consent == GRANTED or (not self.consent_required and self.consent != DENIED)

    @property
    def personalisation_allowed(self) -> bool:
        """Whether an exchange id may be used for this visitor (consent, tracking not off)."""
        return self.consent_given and not self.tracking_off

    @property
    def consent_state(self) -> str:
        """For display: ``granted``, ``denied``, ``pending`` (must ask) or ``assumed``."""
        return self.consent or ("pending" if self.consent_required else "assumed")


@cache
def load_personas() -> dict:
    """The demo personas and the names of their segments (``storefront/data/personas.json``)."""
    return json.loads(
        resources.files("storefront").joinpath("data/personas.json").read_text("utf-8")
    )


def persona_for(exchange_id: str | None, company_id: str | None) -> dict | None:
    if not exchange_id or not company_id:
        return None
    return next(
        (
            p
            for p in load_personas()["personas"]
            if klaviyo.persona_exchange_id(p["identifier"], company_id) == exchange_id
        ),
        None,
    )


def identity_from_cookies(
    cookies: Mapping[str, str], *, company_id: str | None, consent_required: bool
) -> Identity:
    """The consent and tracking rules in one place, as a function of the cookies alone."""
    consent = cookies.get(CONSENT_COOKIE)
    kla_id = klaviyo.decode_kla_id(cookies.get(klaviyo.KLA_ID_COOKIE))
    identity = Identity(
        exchange_id=None,
        cid=kla_id.cid,
        consent=consent if consent in (GRANTED, DENIED) else None,
        consent_required=consent_required,
        tracking_off=klaviyo.tracking_off(cookies.get(klaviyo.KLA_OFF_COOKIE)),
        persona=None,
    )
    if identity.personalisation_allowed and kla_id.exchange_id:
        identity = replace(
            identity,
            exchange_id=kla_id.exchange_id,
            persona=persona_for(kla_id.exchange_id, company_id),
        )
    return identity


def _identity_from(cookies: Mapping[str, str]) -> Identity:
    return identity_from_cookies(
        cookies,
        company_id=current_app.config["KLAVIYO_COMPANY_ID"],
        consent_required=current_app.config["CONSENT_REQUIRED"],
    )


def current_identity() -> Identity:
    """The current visitor's identity, computed from the cookies once per request."""
    page = g._get_current_object()  # one lookup through the proxy: every page asks, often
    identity = page.get("identity")
    if identity is None:
        identity = page.identity = _identity_from(request.cookies)
    return identity


class CookieUpdate:
    """Cookies one response sets or expires, applied at once to this request's identity too,
    so that the rest of the request (segments above all) sees the visitor as the next will."""

    def __init__(self, response: Response):
        self.response = response
        self.values: dict[str, str | None] = {}

    def set(self, key: str, value: str, **attributes) -> None:
        self.response.set_cookie(key, value, **attributes)
        self.values[key] = value

    def expire(self, key: str) -> None:
        if key in request.cookies:
            self.response.delete_cookie(key, path="/")
        self.values[key] = None

    def apply(self) -> Identity:
        cookies = {**request.cookies, **self.values}
        g.identity = _identity_from({k: v for k, v in cookies.items() if v is not None})
        return g.identity


def remember_consent(update: CookieUpdate, choice: str) -> None:
    update.set(
        CONSENT_COOKIE, choice, max_age=CONSENT_MAX_AGE, path="/", httponly=True, samesite="Lax"
    )


def klevu_visitor(identity: Identity) -> Visitor:
    """Step 0's answer for step 1: the exchange id and Klaviyo's ``cid`` (which keys a cache
    entry), each only when the visitor allows personalisation."""
    allowed = identity.personalisation_allowed
    return Visitor(identity.exchange_id, identity.cid if allowed else None, identity.consent_given)


@klevu.visitor_loader
def current_visitor() -> Visitor:
    return klevu_visitor(current_identity())


def identify(update: CookieUpdate, exchange_id: str) -> None:
    """Write ``__kla_id`` as Klaviyo does (keeping its ``cid``) and resolve segments now.

    Like Klaviyo's script, write nothing for a visitor who turned tracking off (``__kla_off``).
    """
    visitor = current_identity()
    if not visitor.tracking_off:
        update.set(**klaviyo.kla_id_cookie(klaviyo.encode_kla_id(exchange_id, visitor.cid)))
    current_segments(klevu_visitor(update.apply()))


def forget_visitor(update: CookieUpdate) -> None:
    """Anonymous again: Klaviyo's cookie expired, a waiting email link and the segments dropped.

    Segments are forgotten first, while the request still sees the visitor being forgotten.
    """
    forget_segments(current_visitor())
    update.expire(klaviyo.KLA_ID_COOKIE)
    update.expire(PENDING_KX_COOKIE)
    update.apply()


def onsite_live() -> bool:
    return bool(current_app.config["KLAVIYO_ONSITE"] and current_app.config["KLAVIYO_COMPANY_ID"])


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default``: never an open redirect."""
    if target and len(target) <= 2048 and _LOCAL_PATH.fullmatch(target):
        return target
    return default


def _here(query: bytes) -> str:
    """This request's path with ``query``, percent-encoded: always a same-site path, since
    Werkzeug's ``request.path`` has a single leading slash even for ``//host/...``."""
    path = quote(request.script_root + request.path, safe=_PATH_SAFE)
    return f"{path}?{quote_from_bytes(query, safe=_QUERY_SAFE)}" if query else path


def _without_kx(query: bytes) -> bytes:
    """The raw query string minus every ``_kx``: the other parameters keep order and encoding."""

    def name(part: bytes) -> bytes:
        return unquote_to_bytes(part.split(b"=", 1)[0].replace(b"+", b" "))

    return b"&".join(
        part for part in query.split(b"&") if part and name(part) != klaviyo.KX_PARAM.encode()
    )


@bp.before_app_request
def capture_kx():
    """Klaviyo email links: identify from ``_kx``, then redirect to the same URL without it.

    ``_kx`` is always removed, even when ignored (malformed, another account's, tracking off),
    so that shared or bookmarked URLs never carry an identity. With live Klaviyo the parameter
    is left for Klaviyo's script, which identifies the visitor against the real account.
    """
    if request.method != "GET" or klaviyo.KX_PARAM not in request.args or onsite_live():
        return None
    update = CookieUpdate(redirect(_here(_without_kx(request.query_string))))
    identity = current_identity()
    exchange_id = klaviyo.parse_kx(
        request.args.get(klaviyo.KX_PARAM), current_app.config["KLAVIYO_COMPANY_ID"]
    )
    if exchange_id is None or identity.tracking_off:
        log.info("ignored a _kx link parameter (malformed, another account's, or tracking off)")
    elif identity.consent_given:
        trace.note("identity", via="_kx email link")
        identify(update, exchange_id)
    elif identity.consent is None:
        update.set(
            PENDING_KX_COOKIE,
            exchange_id,
            max_age=PENDING_KX_MAX_AGE,
            path="/",
            httponly=True,
            samesite="Lax",
        )
    return update.response


@bp.app_context_processor
def identity_globals() -> dict:
    identity = current_identity()
    company_id = current_app.config["KLAVIYO_COMPANY_ID"]
    onsite_url = None
    if onsite_live() and identity.personalisation_allowed:
        onsite_url = klaviyo.onsite_script_url(company_id)
        allow_script_from(onsite_url)  # the page's CSP lets this one foreign script in
    return {
        "identity": identity,
        # Forms that should come back to this very page post it as ``next``.
        "current_path": _here(request.query_string),
        "klaviyo_onsite_url": onsite_url,
    }


@bp.post("/consent")
def consent():
    choice = request.form.get("choice")
    if choice not in ("accept", "decline"):
        abort(400)
    update = CookieUpdate(redirect(safe_next(request.form.get("next"), url_for("shop.home"))))
    if choice == "accept":
        remember_consent(update, GRANTED)
        pending = klaviyo.parse_kx(
            request.cookies.get(PENDING_KX_COOKIE), current_app.config["KLAVIYO_COMPANY_ID"]
        )
        update.expire(PENDING_KX_COOKIE)
        if pending:
            trace.note("identity", via="_kx email link")
            identify(update, pending)
        else:
            update.apply()
        flash("Thanks! Recommendations can now follow what Klaviyo knows about you.")
    else:
        remember_consent(update, DENIED)
        forget_visitor(update)
        flash("Understood: no Klaviyo identity is used, and what we knew has been forgotten.")
    return update.response

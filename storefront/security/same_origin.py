"""Unsafe requests (POST, PUT, PATCH, DELETE) only from the shop's own pages: one check for all.

Every such request passes ``check_request`` before its view runs:

1. the browser says it comes from another site (``origin.request_site``): 403, nothing done;
2. it says this site: allowed;
3. it says neither (an old browser, or a client that is not a browser): the form token must
   be there, as the ``csrf_token`` field or the ``X-CSRF-Token`` header, equal to the one in
   this visitor's session. Templates put it in every form with ``{{ csrf_field() }}``.

Views opt out explicitly: ``@headers_only`` keeps steps 1 and 2 but lets step 3 through (the
beacon: ``navigator.sendBeacon`` cannot add a token, and its events are idempotent per page
view, so an unlabelled post can at most repeat what the page already sent); ``@exempt`` skips
the check (an endpoint other sites are meant to call). A refusal is a 403 through the app's
error handler: the shop's error page for a form, JSON under ``/klevu/``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Literal, TypeVar

from flask import Flask, abort, current_app, g, request, session
from markupsafe import Markup, escape

from .headers import own_origin
from .origin import CROSS, UNKNOWN, request_site

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_FIELD = "csrf_token"  # noqa: S105 (a field name, not a secret)
TOKEN_HEADER = "X-CSRF-Token"  # noqa: S105
SESSION_KEY = "csrf"
_RULE = "_same_origin_rule"
Rule = Literal["token", "headers", "exempt"]
View = TypeVar("View", bound=Callable)

REFUSED = (
    "This form was sent from another site, or from a page too old to trust, so nothing "
    "was changed. Go back to the shop and try again."
)


def headers_only(view: View) -> View:
    """Refuse what a browser marks as cross-site, but ask no token when it marks nothing."""
    setattr(view, _RULE, "headers")
    return view


def exempt(view: View) -> View:
    """No same-origin check at all: for endpoints that other sites are meant to call."""
    setattr(view, _RULE, "exempt")
    return view


def csrf_token() -> str:
    """This visitor's form token, kept in the signed session cookie (made on first use)."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    """The hidden input every posting form carries (a Jinja global)."""
    # S704: the one variable part is escaped.
    return Markup(  # noqa: S704
        f'<input type="hidden" name="{TOKEN_FIELD}" value="{escape(csrf_token())}">'
    )


def _token_matches() -> bool:
    expected = session.get(SESSION_KEY)
    sent = request.headers.get(TOKEN_HEADER) or request.form.get(TOKEN_FIELD)
    return (
        isinstance(expected, str)
        and isinstance(sent, str)
        and hmac.compare_digest(expected.encode(), sent.encode())
    )


def _rule() -> Rule:
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, _RULE, "token")


def check_request() -> None:
    if request.method not in UNSAFE_METHODS:
        return
    rule = _rule()
    if rule == "exempt":
        return
    verdict = request_site(
        request.headers.get("Sec-Fetch-Site"), request.headers.get("Origin"), own_origin()
    )
    if verdict == CROSS or (verdict == UNKNOWN and rule == "token" and not _token_matches()):
        g.same_origin_refused = True
        abort(403, REFUSED)


def refused() -> bool:
    """Whether this request was refused here: its answer must not touch the visitor's cookies.

    A cross-site POST arrives without the visitor's SameSite=Lax cookies, so the error page
    sees a stranger; a session or cookie it set would overwrite the visitor's own (their cart).
    """
    return bool(g.get("same_origin_refused"))


def init_app(app: Flask) -> None:
    app.add_template_global(csrf_token)
    app.add_template_global(csrf_field)
    app.before_request(check_request)

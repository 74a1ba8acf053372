"""``Secure`` on every cookie the shop sets under HTTPS, whichever module set it.

Each cookie's other flags are chosen where it is set (HttpOnly unless JavaScript reads it,
SameSite=Lax; the table is in docs/operations.md). Whether the request came over HTTPS is known
only per request (a trusted proxy's ``X-Forwarded-Proto``), so ``Secure`` is added here, once:
to the response's cookies after the views, and to Flask's session cookie, which is written
after every ``after_request`` function has run. The answer to a refused cross-site request
sets no cookie at all (``same_origin.refused``).
"""

from __future__ import annotations

from flask import Flask, Response, has_request_context
from flask.sessions import SecureCookieSessionInterface, SessionMixin

from .headers import is_https
from .same_origin import refused


def add_secure(response: Response) -> None:
    cookies = response.headers.getlist("Set-Cookie")
    if all("; secure" in cookie.lower() for cookie in cookies):
        return
    del response.headers["Set-Cookie"]
    for cookie in cookies:
        response.headers.add(
            "Set-Cookie", cookie if "; secure" in cookie.lower() else f"{cookie}; Secure"
        )


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session: ``Secure`` whenever this request is HTTPS, and never
    written in the answer to a refused cross-site request."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or (has_request_context() and is_https())

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        return not refused() and super().should_set_cookie(app, session)


def finish_cookies(response: Response) -> Response:
    if refused():
        del response.headers["Set-Cookie"]
    elif is_https():
        add_secure(response)
    return response


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    app.after_request(finish_cookies)

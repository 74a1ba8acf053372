"""Defence in depth for every response of the shop, in one place rather than per blueprint.

- ``headers``: a Content-Security-Policy with a per-request nonce, and the other security
  headers (nosniff, referrer policy, permissions policy, frame protection, HSTS under HTTPS);
- ``cookies``: ``Secure`` on every cookie under HTTPS, Flask's session cookie included;
- ``same_origin``: unsafe methods (POST and the like) only from the shop's own pages, decided
  from what the browser says (``Sec-Fetch-Site``, ``Origin``), with a form token for browsers
  that say neither.
- ``origin``: the pure decision both use, shared with the Klevu simulator's control routes.

Templates use ``csp_nonce()`` on every ``<script>`` and ``<style>`` element and
``csrf_field()`` in every form that posts (docs/operations.md, "Security").
"""

from __future__ import annotations

from flask import Flask, abort, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import cookies, headers, same_origin


def init_app(app: Flask) -> None:
    hops = app.config["STOREFRONT_PROXY_HOPS"]
    if hops:
        # Only then is X-Forwarded-Proto believed (request.is_secure: HSTS, Secure cookies,
        # the expected Origin); without a proxy, any client could claim HTTPS with it.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
    else:
        app.wsgi_app = DistrustForwarded(app.wsgi_app)  # type: ignore[method-assign]
    app.before_request(refuse_large_bodies)
    headers.init_app(app)
    cookies.init_app(app)
    same_origin.init_app(app)


# The headers through which servers learn a proxy's scheme (gunicorn's secure_scheme_headers,
# as WSGI environ keys). Their client address and host headers change nothing in the environ.
_SCHEME_HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PROTOCOL", "HTTP_X_FORWARDED_SSL")


class DistrustForwarded:
    """With no proxy hops configured, a forwarded scheme is a client's claim, whoever served it.

    Some servers apply ``X-Forwarded-Proto`` themselves before the app sees the request:
    gunicorn believes it from 127.0.0.1 by default (``forwarded_allow_ips``), so any client on
    the host, or any local proxy's client, could turn on HSTS and ``Secure`` cookies. When the
    request carries such a header the scheme the server derived cannot be told from the
    client's claim, so it is taken as ``http``: at worst a client that both connects over TLS
    and sends the header gets the plain-HTTP answer. The headers are removed, so nothing
    downstream reads them either.
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        claimed = [environ.pop(key) for key in _SCHEME_HEADERS if key in environ]
        for key in ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT"):
            environ.pop(key, None)
        if claimed:
            environ["wsgi.url_scheme"] = "http"
        return self.wsgi_app(environ, start_response)


def refuse_large_bodies() -> None:
    """413 for a declared body over ``MAX_CONTENT_LENGTH``, first, on every route: before the
    form token check or a view could parse it. A body sent without a length (chunked) is cut
    at the limit by Werkzeug's reader, which then raises the same 413."""
    if (request.content_length or 0) > current_app.config["MAX_CONTENT_LENGTH"]:
        abort(413)

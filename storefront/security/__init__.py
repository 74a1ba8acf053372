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

from flask import Flask
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
    headers.init_app(app)
    cookies.init_app(app)
    same_origin.init_app(app)

"""Security headers on every response: the CSP with its per-request nonce, and the rest.

The policy is built per response because it depends on the request: the nonce is new for
every page, and a script host (Klaviyo's onsite) is allowed only on pages that load from it
(``allow_script_from``: live Klaviyo and consent given). Flask-Talisman was considered: its
policy is fixed per view, so the consent-dependent part would need this per-request code
anyway, and its HTTPS redirect and cookie handling overlap ProxyFix and Flask's session
settings.

No template has an inline script or event handler: scripts are files (``static/js``), and
every ``<script>`` and ``<style>`` element carries ``nonce="{{ csp_nonce() }}"``. Inline
``style`` attributes are not allowed by this policy (``style-src`` has no 'unsafe-inline'):
those of banner markup move into the banner's stylesheet (``klevu/inline_styles.py``).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

# Features a shop page never uses; a banner or an injected frame cannot ask for them either.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
)
HSTS = "max-age=31536000; includeSubDomains"


def content_security_policy(
    nonce: str | None, *, image_hosts: tuple[str, ...] = (), script_hosts: tuple[str, ...] = ()
) -> str:
    """The policy for one response; ``nonce`` None when the response has no inline element."""
    nonce_source = (f"'nonce-{nonce}'",) if nonce else ()
    directives = {
        "default-src": ("'self'",),
        "script-src": ("'self'", *nonce_source, *script_hosts),
        "style-src": ("'self'", *nonce_source),
        "img-src": ("'self'", *image_hosts),
        "connect-src": ("'self'",),
        "frame-ancestors": ("'none'",),
        "base-uri": ("'none'",),
        "form-action": ("'self'",),
        "object-src": ("'none'",),
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def csp_nonce() -> str:
    """This request's nonce, made when a template first asks for it (a Jinja global)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def allow_script_from(url: str) -> None:
    """Let this response's page load a script from ``url``'s origin (e.g. Klaviyo's onsite)."""
    parts = urlsplit(url)
    g.setdefault("csp_script_hosts", set()).add(f"{parts.scheme}://{parts.netloc}")


def is_https() -> bool:
    """Served over HTTPS: directly, through a trusted proxy (ProxyFix), or declared so."""
    return request.is_secure or current_app.config["PREFERRED_URL_SCHEME"] == "https"


def own_origin() -> str:
    """This site's origin as the browser sees it (what an ``Origin`` header must equal)."""
    return f"{'https' if is_https() else request.scheme}://{request.host}"


def set_security_headers(response: Response) -> Response:
    config = current_app.config
    script_hosts = tuple(sorted(g.get("csp_script_hosts", ())))
    response.headers["Content-Security-Policy"] = content_security_policy(
        g.get("csp_nonce"), image_hosts=config["KLEVU_IMAGE_HOSTS"], script_hosts=script_hosts
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    response.headers["Permissions-Policy"] = PERMISSIONS_POLICY
    response.headers["X-Frame-Options"] = "DENY"  # frame-ancestors for old browsers
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if is_https():
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def init_app(app: Flask) -> None:
    app.add_template_global(csp_nonce)
    app.after_request(set_security_headers)

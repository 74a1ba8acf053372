"""What every simulated service request passes before its own work.

Planned faults come first, as a broken network or overloaded host would fail a request
before any application logic; then the api key, which Klevu's services answer with 404 when
they do not know it. Refusals are journaled, so the dashboard shows what the shop got wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Response, current_app, jsonify, request

from ...security.origin import CROSS, request_site
from ..state import demo, state


class Rejected(Exception):
    """Refuse a request with ``status`` and a JSON message (the service's own error shape)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def journal_rejection(exc: Rejected) -> None:
    state().journal.call(
        request.blueprint or "-",
        "rejected",
        exc.status,
        {"path": request.path, "error": exc.message},
    )


def rejected(exc: Rejected) -> tuple[Response, int]:
    journal_rejection(exc)
    return jsonify(error=exc.message), exc.status


def check_api_key(api_key: str) -> None:
    if api_key != demo().api_key:
        raise Rejected(404, f"api key {api_key!r} not found")


def simulate_faults(service: str) -> Callable[[], tuple[Response, int] | None]:
    def before_request():
        sim = state()
        delay, failing = sim.faults.next_request(service)
        if delay:
            time.sleep(delay)
        if failing is None:
            return None
        sim.journal.call(service, "faulted", failing.status, {"path": request.path})
        response = jsonify(error=f"simulated {service} fault")
        if failing.retry_after is not None:
            response.headers["Retry-After"] = str(failing.retry_after)
        return response, failing.status

    return before_request


def refuse_cross_site(*, any_method: bool = False) -> None:
    """The control routes change what the simulator does (reset, faults, ttls): a page on
    another site must not be able to post to them from a visitor's browser. Posts from the
    simulator's own dashboard (same origin) pass, and so do clients that are not browsers
    (tests, curl), which send neither ``Sec-Fetch-Site`` nor ``Origin``. ``any_method``: GETs
    too, for a route that changes state on a GET (an address typed or bookmarked passes)."""
    if (any_method or request.method == "POST") and request_site(
        request.headers.get("Sec-Fetch-Site"),
        request.headers.get("Origin"),
        request.host_url.rstrip("/"),
    ) == CROSS:
        raise Rejected(403, "cross-site request to a simulator control route")


def refuse_foreign_host() -> None:
    """Answer only to the names the simulator is served as (``SIMULATOR_HOSTS``).

    DNS rebinding: a page on an attacker's name, re-pointed at 127.0.0.1, posts to the
    control routes same-origin (its ``Origin`` and ``Host`` are the attacker's name, so the
    cross-site check passes). The ``Host`` header is what gives it away.
    """
    try:
        name = urlsplit(f"//{request.host}").hostname or ""
    except ValueError:
        name = ""
    if name.lower() not in current_app.config["SIMULATOR_HOSTS"]:
        raise Rejected(421, f"this simulator is not served as {name or 'that host'!r}")

"""``/healthz``: liveness plus the numbers an operator watches: the outbox's depth and drops,
the Klevu answers cache's hits, misses and stale answers, and each Klevu service's circuit
breaker (this process's view: each worker counts for itself).

``/readyz``: whether this process can serve shoppers now, for a load balancer: the shared
cache (sessions, segments, answers) and the outbox (an accepted event's only copy) answer.
503 names what does not; Klevu itself is not asked, since pages render without it.
"""

import logging

from flask import Blueprint, current_app, jsonify

from .extensions import cache
from .klevu import klevu_client
from .klevu.analytics import delivery
from .klevu.banners.placement import banner_services

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    mode = "offline simulator" if current_app.config["KLEVU"].offline else "live"
    return jsonify(
        status="ok",
        klevu=mode,
        answers=banner_services().answers.stats(),
        breakers={service: breaker.stats() for service, breaker in klevu_client().breakers.items()},
        outbox=delivery.health(),
    )


@bp.get("/readyz")
def readyz():
    failing = {}
    try:
        cache.cache.get("readyz")
    except Exception as exc:
        failing["cache"] = type(exc).__name__
    try:
        delivery.outbox().next_due()
    except Exception as exc:
        failing["outbox"] = type(exc).__name__
    if failing:
        log.warning("not ready: %s", failing)
        return jsonify(status="unavailable", failing=failing), 503
    return jsonify(status="ready")

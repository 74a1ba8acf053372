"""``/healthz``: liveness plus the numbers an operator watches: the outbox's depth and drops,
the Klevu answers cache's hits, misses and stale answers, and each Klevu service's circuit
breaker (this process's view: each worker counts for itself)."""

from flask import Blueprint, current_app, jsonify

from .klevu import klevu_client
from .klevu.analytics import delivery
from .klevu.banners.placement import banner_services

bp = Blueprint("health", __name__)


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

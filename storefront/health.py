"""``/healthz``: liveness plus the numbers an operator watches: the outbox's depth and drops,
the Klevu answers cache's hits, misses and stale answers, and each Klevu service's circuit
breaker (this process's view: each worker counts for itself)."""

from flask import Blueprint, current_app, jsonify

from .klevu.analytics import delivery

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    extensions = current_app.extensions
    mode = "offline simulator" if current_app.config["KLEVU"].offline else "live"
    body: dict[str, object] = {"status": "ok", "klevu": mode}
    if "klevu_answers" in extensions:
        body["answers"] = extensions["klevu_answers"].stats()
    if "klevu_client" in extensions:
        body["breakers"] = {
            service: breaker.stats()
            for service, breaker in extensions["klevu_client"].breakers.items()
        }
    if "outbox" in extensions:
        body["outbox"] = delivery.health()
    return jsonify(body)

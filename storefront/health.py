"""``/healthz``: liveness plus the numbers an operator watches (outbox depth, drops)."""
from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    outbox = current_app.extensions.get("outbox")
    body = {"status": "ok", "klevu": "offline simulator" if current_app.config["KLEVU"].offline
            else "live"}
    if outbox is not None:
        body["outbox"] = outbox.stats()
    return jsonify(body)

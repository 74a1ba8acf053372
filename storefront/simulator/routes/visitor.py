"""``POST /visitor/public/1.0/<apiKey>/session``: sessions and Klaviyo segments (§1)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from .. import personas
from ..state import state
from .guards import Rejected, check_api_key, simulate_faults

bp = Blueprint("visitor", __name__, url_prefix="/visitor/public/1.0")
bp.before_request(simulate_faults("visitor"))


def read_session_request(body: object, api_key: str) -> tuple[str | None, str | None]:
    """``(sessionId, Klaviyo exchange id)`` from a session request; either may be absent."""
    if not isinstance(body, dict) or body.get("apiKey") != api_key:
        raise Rejected(400, "body must be a JSON object whose apiKey is the path's api key")
    session_id = body.get("sessionId")
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        raise Rejected(400, "sessionId must be a non-empty string")
    info = body.get("sessionInfo", {})
    connectors = info.get("connectorInfo", []) if isinstance(info, dict) else None
    if not isinstance(connectors, list) or not all(
        isinstance(c, dict) and isinstance(c.get("connectorType"), str) for c in connectors
    ):
        raise Rejected(400, "sessionInfo.connectorInfo must be a list of {connectorType, ...}")
    klaviyo = [c for c in connectors if c["connectorType"] == "klaviyo"]
    if any(not isinstance(c.get("exchangeId"), str) or not c["exchangeId"] for c in klaviyo):
        raise Rejected(400, "a klaviyo connector needs an exchangeId string")
    return session_id, klaviyo[0]["exchangeId"] if klaviyo else None


@bp.post("/<api_key>/session")
def session(api_key: str):
    check_api_key(api_key)
    asked_id, exchange_id = read_session_request(request.get_json(silent=True, force=True), api_key)
    sim = state()
    ttls = sim.ttls
    session_id, refreshed = sim.sessions.open(asked_id, ttls.session_ttl)
    if exchange_id is None:
        kind = "session_refresh" if refreshed else "session_new"
        segments, ttl = [], ttls.session_ttl
    else:
        kind = "connector"
        segments, ttl = personas.segments_for(exchange_id), ttls.segment_ttl
    sim.journal.call(
        "visitor",
        kind,
        200,
        {
            "sessionId": session_id,
            "renewed": asked_id is not None and not refreshed,
            # An exchange id names a person: the journal keeps only enough to tell them apart.
            "exchangeId": exchange_id[:6] + "…" if exchange_id else None,
            "segments": segments,
        },
    )
    return jsonify(
        apiKey=api_key, sessionId=session_id, segmentInfo={"segments": segments, "ttl": ttl}
    )

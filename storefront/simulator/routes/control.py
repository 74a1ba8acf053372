"""Control endpoints under ``/_sim``: what was received, reset, faults, ttls; and ``/healthz``.

These are the simulator's own API for tests and demos; Klevu has nothing like them, so they
are never subject to the planned faults. They have no authentication: the simulator listens on
loopback unless told otherwise (``--host``), and they refuse cross-site posts from browsers.
"""

from __future__ import annotations

from dataclasses import asdict, replace

from flask import Blueprint, jsonify, request

from .. import state as sim_state
from ..faults import SERVICES, BadFaultPlan, FaultPlan
from .guards import Rejected, refuse_cross_site, refuse_foreign_host

bp = Blueprint("control", __name__)
bp.before_request(refuse_foreign_host)
bp.before_request(refuse_cross_site)


def _json_object() -> dict:
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        raise Rejected(400, "body must be a JSON object")
    return body


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/_sim/state")
def state():
    sim = sim_state.state()
    return jsonify(
        **sim.journal.state(),
        sessions=sim.sessions.active(),
        settings=asdict(sim.ttls),
        faults=sim.faults.describe(),
    )


@bp.get("/_sim/events")
def events():
    return jsonify(sim_state.state().journal.events())


@bp.post("/_sim/reset")
def reset():
    sim_state.reset()
    return jsonify(reset=True)


@bp.route("/_sim/faults", methods=["GET", "POST"])
def faults():
    """POST ``{service: plan | null}``: set or clear the named services' plans only."""
    plans = sim_state.state().faults
    if request.method == "POST":
        body = _json_object()
        unknown = set(body) - set(SERVICES)
        if unknown:
            raise Rejected(400, f"unknown services {sorted(unknown)}; services are {SERVICES}")
        try:
            parsed = {
                service: None if plan is None else FaultPlan.from_json(plan)
                for service, plan in body.items()
            }
        except BadFaultPlan as exc:
            raise Rejected(400, str(exc)) from exc
        for service, plan in parsed.items():
            plans.plan(service, plan)
    return jsonify(plans.describe())


@bp.route("/_sim/settings", methods=["GET", "POST"])
def settings():
    """POST ``{segment_ttl?, session_ttl?}``: seconds the visitor service's answers live."""
    sim = sim_state.state()
    if request.method == "POST":
        body = _json_object()
        fields = set(asdict(sim.ttls))
        if set(body) - fields or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in body.values()
        ):
            raise Rejected(400, f"settings are whole seconds >= 0 for {sorted(fields)}")
        sim.ttls = replace(sim.ttls, **body)
    return jsonify(asdict(sim.ttls))

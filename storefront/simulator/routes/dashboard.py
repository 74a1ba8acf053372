"""``GET /_sim/``: "What Klevu received", a live page for sales engineers during a demo.

It also holds the demo console: buttons and fields that post fault plans to ``/_sim/faults``
(and ``/_sim/reset``) from the page itself, same-origin (``static/dashboard.js``), so one
click takes a Klevu service down or brings it back while the audience watches the shop; and
links to the scenario packs (``/_sim/scenario/<name>``), the active one's description on top.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from ..faults import SERVICES
from ..state import demo, packs, state
from .guards import refuse_foreign_host

bp = Blueprint("dashboard", __name__, url_prefix="/_sim")
bp.before_request(refuse_foreign_host)
# The page shows the newest events only; /_sim/events has them all.
EVENTS_SHOWN = 40
SERVICE_NAMES = {
    "visitor": "the visitor service",
    "config": "the config CDN",
    "search": "search",
    "collect": "the collector",
}


@bp.get("/")
def dashboard():
    sim = state()
    events = sim.journal.events()
    return render_template(
        "simulator/dashboard.html",
        api_key=demo().api_key,
        journal=sim.journal.state(),
        totals=events["totals"],
        failing=events["failing"],
        events=list(reversed(events["events"][-EVENTS_SHOWN:])),
        faults=sim.faults.describe(),
        ttls=sim.ttls,
        services=SERVICES,
        service_names=SERVICE_NAMES,
        packs=packs(),
        scenario=sim.scenario,
    )

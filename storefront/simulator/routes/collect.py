"""``POST /analytics/collect``: the analytics collector (§5). Success is 200 with no body.

Like Klevu's, it accepts events its reports cannot use; each accepted event is checked
(``validator.py``) and kept with its problems, for the dashboard to mark.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..analytics import BadEvent, summarise
from ..state import demo, recs, state
from ..validator import problems
from .guards import Rejected, simulate_faults

# The storefront's own event ids, aligned with the array; Klevu ignores this header.
EVENT_IDS_HEADER = "X-Storefront-Event-Ids"

bp = Blueprint("collect", __name__, url_prefix="/analytics")


@bp.before_request
def note_attempt() -> None:
    """Every delivery attempt counts towards an event's delay, the ones a fault fails too."""
    header = request.headers.get(EVENT_IDS_HEADER)
    if header:
        state().journal.attempted([i.strip() for i in header.split(",") if i.strip()])


bp.before_request(simulate_faults("collect"))  # after note_attempt: hooks run in order


def event_ids(header: str | None, count: int) -> list[str | None]:
    if header is None:
        return [None] * count
    ids = [i.strip() or None for i in header.split(",")]
    if len(ids) != count:
        raise Rejected(400, f"{EVENT_IDS_HEADER} has {len(ids)} ids for {count} events")
    return ids


@bp.post("/collect")
def collect():
    events = request.get_json(silent=True, force=True)
    if not isinstance(events, list) or not events:
        raise Rejected(400, "body must be a non-empty JSON array of events")
    try:
        summaries = [summarise(event) for event in events]
    except BadEvent as exc:
        raise Rejected(400, str(exc)) from exc
    if any(s["api_key"] != demo().api_key for s in summaries):
        raise Rejected(404, "event_apikey not found")
    ids = event_ids(request.headers.get(EVENT_IDS_HEADER), len(events))
    banners = recs()
    checks = [problems(e, s, banners) for e, s in zip(events, summaries, strict=True)]
    state().journal.collected(events, summaries, ids, checks)
    return Response(status=200)

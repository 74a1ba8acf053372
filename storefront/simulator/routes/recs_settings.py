"""``GET /recommendations/<apiKey>/settings/<recsKey>``: the config CDN (§2)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for

from ..recorded import Recorded
from ..recs_configs import settings_answer
from ..state import demo, recorded, recs, state
from .guards import Rejected, check_api_key, simulate_faults

bp = Blueprint("config", __name__, url_prefix="/recommendations")
bp.before_request(simulate_faults("config"))


def visitor_segments(sids: str) -> list[str]:
    return [sid.strip() for sid in sids.split(",") if sid.strip()]


@bp.get("/<api_key>/settings/<recs_key>")
def recs_settings(api_key: str, recs_key: str):
    check_api_key(api_key)
    data = demo()
    sids = visitor_segments(request.args.get("sids", ""))
    # Klevu's basePath has no scheme; this host answers the search too.
    base_path = url_for("search.search", _external=True).split("://", 1)[1]
    live = recorded()
    if live is not None:
        return _recorded_answer(live, recs_key, sids, base_path)
    config = recs().get(recs_key)
    if config is None:
        raise Rejected(404, f"recs key {recs_key!r} not found")
    variant = config.variant_for(sids)
    _journal(recs_key, sids, variant.segment, variant.title, variant.logic, variant.action)
    return jsonify(
        settings_answer(
            config, variant, api_key=data.api_key, base_path=base_path, shop_url=data.shop_url
        )
    )


def _recorded_answer(live: Recorded, recs_key: str, sids: list[str], base_path: str):
    """The answer a live account gave for these segments, searching here."""
    answer = live.config(recs_key, sids)
    if answer is None:
        raise Rejected(404, f"recs key {recs_key!r} was not recorded")
    metadata = answer["metadata"]
    _journal(
        recs_key,
        sids,
        metadata.get("segmentKey"),
        metadata.get("title"),
        metadata.get("logic"),
        metadata.get("action"),
    )
    search = answer.get("search")
    return jsonify(
        {
            **answer,
            "search": {**(search if isinstance(search, dict) else {}), "basePath": base_path},
        }
    )


def _journal(recs_key: str, sids: list[str], segment, title, logic, action) -> None:
    """What the dashboard lists for a config call: the variant answered and for whom."""
    state().journal.call(
        "config",
        "config",
        200,
        {
            "recsKey": recs_key,
            "sids": sids,
            "query": request.query_string.decode("latin-1"),
            "cp": request.args.get("cp"),
            "pid": request.args.get("pid"),
            "gpid": request.args.get("gpid"),
            "variant": segment or "default",
            "title": title,
            "logic": logic,
            "action": action,
        },
    )

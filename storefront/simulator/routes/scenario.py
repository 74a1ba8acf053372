"""``/_sim/scenario``: apply a scenario pack (``scenarios.py``) from a test, the console or a URL.

``POST /_sim/scenario {"name": "visitor-down"}`` starts the pack on a fresh state (what was
received is forgotten, as with a reset); ``{"name": null}`` or ``/_sim/reset`` ends it.
``GET /_sim/scenario/<name>`` does the same from an address bar or a bookmark and shows the
dashboard; a page on another site cannot trigger it (``Sec-Fetch-Site``), as with the posts.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, request, url_for

from .. import state as sim_state
from ..scenarios import Pack
from .guards import Rejected, refuse_cross_site

bp = Blueprint("scenario", __name__, url_prefix="/_sim/scenario")


@bp.before_request
def refuse_cross_site_any_method() -> None:
    """A GET here changes the simulator too: refused from other sites like a post."""
    refuse_cross_site(any_method=True)


def _pack(name: object) -> Pack:
    packs = sim_state.packs()
    if not isinstance(name, str) or name not in packs:
        raise Rejected(400, f"no scenario pack {name!r}; packs are {', '.join(packs)}")
    return packs[name]


def _answer():
    active = sim_state.state().scenario
    return jsonify(
        active=active.describe() if active else None,
        packs=[pack.describe() for pack in sim_state.packs().values()],
    )


@bp.get("")
def scenario():
    return _answer()


@bp.post("")
def apply():
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict) or "name" not in body:
        raise Rejected(400, 'body must be {"name": "<pack>"}, or {"name": null} to end it')
    sim_state.reset(None if body["name"] is None else _pack(body["name"]))
    return _answer()


@bp.get("/<name>")
def apply_by_url(name: str):
    sim_state.reset(_pack(name))
    return redirect(url_for("dashboard.dashboard"), 303)

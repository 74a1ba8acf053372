"""The demo's persona switcher: be Maya, Oliver or anyone in the personas file in one click.

Choosing a persona stands in for a click on that persona's Klaviyo email link: it writes
``__kla_id`` exactly as Klaviyo would (through ``identity.identify``) and counts as consent.
"Forget me" makes the visitor anonymous again. Kept apart from ``identity``, which is what
any shop needs; this is what only the demo needs.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from . import klaviyo
from .identity import (
    GRANTED,
    PENDING_KX_COOKIE,
    CookieUpdate,
    current_identity,
    forget_visitor,
    identify,
    load_personas,
    onsite_live,
    remember_consent,
    safe_next,
)
from .klevu import trace

bp = Blueprint("personas", __name__)


@bp.get("/demo/personas")
def index():
    data = load_personas()
    company_id = current_app.config["KLAVIYO_COMPANY_ID"]
    cards = [
        (
            persona,
            klaviyo.persona_exchange_id(persona["identifier"], company_id) if company_id else None,
        )
        for persona in data["personas"]
    ]
    return render_template(
        "demo/personas.html",
        cards=cards,
        segment_names=data["segments"],
        company_id=company_id,
        onsite_live=onsite_live(),
    )


@bp.post("/demo/persona")
def choose():
    """Stand in for a click on a Klaviyo email link by this persona (counts as consent)."""
    company_id = current_app.config["KLAVIYO_COMPANY_ID"]
    key = request.form.get("persona")
    persona = next((p for p in load_personas()["personas"] if p["key"] == key), None)
    if persona is None or not company_id:
        abort(400)
    update = CookieUpdate(redirect(safe_next(request.form.get("next"), url_for("personas.index"))))
    if not current_identity().consent_given:
        remember_consent(update, GRANTED)
    update.expire(PENDING_KX_COOKIE)
    trace.note("identity", via="demo persona switcher")
    identify(update, klaviyo.persona_exchange_id(persona["identifier"], company_id))
    flash(
        f"You are now browsing as {persona['name']}."
        if current_identity().persona
        else "Klaviyo tracking is off in this browser (__kla_off=true), so you stay anonymous."
    )
    return update.response


@bp.post("/demo/forget")
def forget():
    update = CookieUpdate(redirect(safe_next(request.form.get("next"), url_for("personas.index"))))
    forget_visitor(update)
    flash("Forgotten: you are an anonymous visitor again.")
    return update.response

"""``/demo/compare``: two to four demo personas side by side, each with the banners they get.

``?personas=anonymous,maya,oliver&page=home`` (or ``persona=…`` repeated, as the page's
form sends it; ``page``: ``home``, ``category`` with
``category=<slug>``, ``product`` with ``product=<id>``). Each column is made by the real page's
code path, not a copy of it: a request context of its own whose cookies are the persona's
(consent given, Klaviyo's ``__kla_id`` with its exchange id), the page's ``page_context``,
``banners_for`` and each banner's section as the shop's pages show it. A column's own
trace gives the line under each banner (variant, or why it is missing), as the inspector
tells it. Each persona keeps one Klaviyo ``cid`` (derived from its key), so its
Klevu session is reused from one comparison to the next.

The viewer's own cookies and Klevu session are left alone. The banners carry no analytics
token, so the page sends no impression on a persona's behalf; their links still go through
the click route, so a product clicked here is recorded as the viewer's click.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, replace
from typing import Any

from flask import current_app, render_template, request
from markupsafe import Markup

from .. import klaviyo
from ..catalog import load_catalog
from ..identity import CONSENT_COOKIE, GRANTED, load_personas
from ..inspector.story import BannerStory, SegmentsStep, banner_story, segments_step
from ..klevu import trace
from ..klevu.banners.placement import Banner, banners_for
from . import bp
from .views import page_context

ANONYMOUS = "anonymous"
MIN_COLUMNS, MAX_COLUMNS = 2, 4
PAGES = ("home", "category", "product")
DEFAULT_PERSONAS = ("anonymous", "maya", "oliver")


class BadComparison(ValueError):
    """The query asks for something the page cannot show; the message says what to ask."""


@dataclass(frozen=True)
class Entry:
    """One placement of the page: the banner as the page shows it (None: not shown), and the
    inspector's story of it for the line under it."""

    story: BannerStory
    html: Markup | None


@dataclass(frozen=True)
class Column:
    key: str
    name: str
    segments: SegmentsStep
    banners: tuple[Banner, ...]
    entries: tuple[Entry, ...]


def _cid(persona_key: str) -> str:
    """A Klaviyo ``cid`` (base64 of a UUID string, as Klaviyo makes them) fixed per persona."""
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"storefront:compare:{persona_key}")
    return base64.b64encode(str(name).encode("ascii")).decode("ascii")


def persona_cookies(persona_key: str) -> dict[str, str]:
    """The cookies of a browser that accepted consent and came from this persona's email."""
    cookies = {CONSENT_COOKIE: GRANTED}
    if persona_key != ANONYMOUS:
        persona = next(p for p in load_personas()["personas"] if p["key"] == persona_key)
        exchange_id = klaviyo.persona_exchange_id(
            persona["identifier"], current_app.config["KLAVIYO_COMPANY_ID"]
        )
        cookies[klaviyo.KLA_ID_COOKIE] = klaviyo.encode_kla_id(exchange_id, _cid(persona_key))
    return cookies


def _page(args: Any) -> tuple[str, dict[str, Any], str]:
    """``(page type, page_context's arguments, label)`` for the page asked for."""
    page = args.get("page", "home")
    catalog = load_catalog()
    if page == "home":
        return "HOME", {}, "Home page"
    if page == "category":
        slug = args.get("category") or catalog.categories[0].slug
        category = catalog.category(slug)
        if category is None:
            raise BadComparison(f"no category {slug!r}")
        return "CATEGORY", {"category_path": category.path}, f"Category: {category.name}"
    if page == "product":
        product = catalog.product(args.get("product") or catalog.products[0].id)
        if product is None:
            raise BadComparison(f"no product {args.get('product')!r}")
        return (
            "PRODUCT",
            {
                "product_id": product.id,
                "item_group_id": product.item_group_id,
                "category_path": product.category.path,
            },
            f"Product: {product.name}",
        )
    raise BadComparison(f"page is one of {', '.join(PAGES)}")


def _known() -> list[str]:
    return [ANONYMOUS, *(p["key"] for p in load_personas()["personas"])]


def _personas(value: str | None) -> list[str]:
    if not current_app.config["KLAVIYO_COMPANY_ID"]:
        raise BadComparison("personas need a Klaviyo account: set KLAVIYO_COMPANY_ID")
    keys = [k.strip() for k in (value or ",".join(DEFAULT_PERSONAS)).split(",") if k.strip()]
    known = _known()
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise BadComparison(
            f"unknown personas {', '.join(unknown)}; choose among {', '.join(known)}"
        )
    if not MIN_COLUMNS <= len(keys) <= MAX_COLUMNS or len(set(keys)) != len(keys):
        raise BadComparison(f"choose {MIN_COLUMNS} to {MAX_COLUMNS} different personas")
    return keys


def column(persona_key: str, page_type: str, page_args: dict[str, Any]) -> Column:
    """One persona's banners, from a request of their own (their cookies, a fresh ``g``)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.config["KLEVU"]
    cookie_header = "; ".join(f"{k}={v}" for k, v in persona_cookies(persona_key).items())
    # Flask's request context built from a path and headers (Werkzeug's EnvironBuilder), in
    # an app context of its own, so the column's ``g`` (identity, segments, trace, budget)
    # is not the viewer's.
    with (
        app.app_context(),
        app.test_request_context(
            request.path, base_url=request.host_url, headers={"Cookie": cookie_header}
        ),
    ):
        notes = trace.begin()
        banners = tuple(
            replace(b, token="") for b in banners_for(page_context(page_type, **page_args))
        )
        shown = {b.recs_key: b for b in banners}
        entries = tuple(
            Entry(
                banner_story(key, notes.notes, settings.api_key),
                Markup(shown[key])  # noqa: S704 (its section: partials/banner.html)
                if key in shown
                else None,
            )
            for key in settings.recs.get(page_type, ())
        )
        segments = segments_step(notes.notes, load_personas()["segments"])
    persona = next((p for p in load_personas()["personas"] if p["key"] == persona_key), None)
    name = persona["name"] if persona else "Anonymous visitor"
    return Column(persona_key, name, segments, banners, entries)


@bp.get("/demo/compare")
def compare():
    catalog = load_catalog()
    form = {
        "known": _known(),
        "page": request.args.get("page", "home"),
        "categories": catalog.categories,
        "products": catalog.products,
    }
    try:
        # ``personas=a,b`` from a link, or ``persona=a&persona=b`` from the page's own form.
        keys = _personas(request.args.get("personas") or ",".join(request.args.getlist("persona")))
        page_type, page_args, label = _page(request.args)
    except BadComparison as exc:
        return render_template(
            "demo/compare.html", error=str(exc), columns=[], chosen=[], label="", **form
        ), 400
    columns = [column(key, page_type, page_args) for key in keys]
    # The banners' stylesheets are linked from the page's head once per banner (base.html).
    css = {b.recs_key: b for c in columns for b in c.banners if b.stylesheet}
    return render_template(
        "demo/compare.html",
        error=None,
        columns=columns,
        banners=list(css.values()),
        label=label,
        chosen=keys,
        **form,
    )

"""What one page view holds for its Klevu work: one time budget for steps 1 to 3 together,
and the id its impressions are counted under.

Separate deadlines for the visitor's segments and for the banners added up on a slow day;
one budget (``KLEVU_PAGE_BUDGET_MS``) bounds the whole wait. Work still running when it ends
goes on in the background and stores its answer for the next page.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from flask import current_app, g


@dataclass(slots=True)  # one per banner page, never changed (not ``frozen``, as ``Banner``)
class PageView:
    id: str  # impressions are counted once per banner per page view
    due: float  # the ``time.monotonic()`` by which this request stops waiting on Klevu


def page_view() -> PageView:
    """This request's page view, begun at its first Klevu work (the budget's clock starts
    then). One object in ``g``: a banner page asks for it several times."""
    page = g._get_current_object()  # one lookup through the proxy
    view = page.get("klevu_page_view")
    if view is None:
        budget = current_app.config["KLEVU_PAGE_BUDGET_MS"] / 1000
        # ``secrets.token_hex(16)`` is this, through three Python calls: 128 random bits.
        page_view_id = os.urandom(16).hex()
        view = page.klevu_page_view = PageView(page_view_id, time.monotonic() + budget)
    return view


def page_due() -> float:
    return page_view().due

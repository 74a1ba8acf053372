"""What one page view holds for its Klevu work: one time budget for steps 1 to 3 together,
and the id its impressions are counted under.

Separate deadlines for the visitor's segments and for the banners added up on a slow day;
one budget (``KLEVU_PAGE_BUDGET_MS``) bounds the whole wait. Work still running when it ends
goes on in the background and stores its answer for the next page.
"""

from __future__ import annotations

import time
import uuid

from flask import current_app, g


def page_due() -> float:
    """The ``time.monotonic()`` by which this request stops waiting on Klevu; the clock
    starts at the request's first Klevu work."""
    if "klevu_due" not in g:
        g.klevu_due = time.monotonic() + current_app.config["KLEVU_PAGE_BUDGET_MS"] / 1000
    return g.klevu_due


def page_view_id() -> str:
    """One id per rendered page: impressions are counted once per banner per page view."""
    if "page_view_id" not in g:
        g.page_view_id = uuid.uuid4().hex
    return g.page_view_id

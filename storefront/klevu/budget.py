"""What one page view holds for its Klevu work: one time budget for steps 1 to 3 together,
and the id its impressions are counted under.

Separate deadlines for the visitor's segments and for the banners added up on a slow day;
one budget (``KLEVU_PAGE_BUDGET_MS``) bounds the whole wait. Work still running when it ends
goes on in the background and stores its answer for the next page.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass

from flask import current_app, g


@dataclass(slots=True)  # one per banner page, never changed (not ``frozen``, as ``Banner``)
class PageView:
    id: str  # impressions are counted once per banner per page view
    due: float  # the ``time.monotonic()`` by which this request stops waiting on Klevu


IDS_PER_READ = 256  # page view ids drawn from one ``os.urandom`` call
_ids: deque[str] = deque()  # drawn, not yet given; a forked child draws its own
os.register_at_fork(after_in_child=_ids.clear)


def page_view_id() -> str:
    """128 random bits in 32 hex digits, as ``secrets.token_hex(16)``, drawn ``IDS_PER_READ``
    at a time. ``os.urandom`` releases the GIL, and with a worker's threads all busy each
    release hands it around: one call per page made a banner page 30 futex calls against a
    plain page's 23 (strace of both workers under ``wrk``; docs/performance.md), now 23 alike.
    ``deque``'s ``popleft`` and ``extend`` are atomic: two threads never take the same id."""
    try:
        return _ids.popleft()
    except IndexError:
        drawn = os.urandom(16 * IDS_PER_READ).hex()
        _ids.extend(drawn[i : i + 32] for i in range(32, len(drawn), 32))
        return drawn[:32]


def page_view() -> PageView:
    """This request's page view, begun at its first Klevu work (the budget's clock starts
    then). One object in ``g``: a banner page asks for it several times."""
    page = g._get_current_object()  # one lookup through the proxy
    view = page.get("klevu_page_view")
    if view is None:
        budget = current_app.config["KLEVU_PAGE_BUDGET_MS"] / 1000
        view = page.klevu_page_view = PageView(page_view_id(), time.monotonic() + budget)
    return view


def page_due() -> float:
    return page_view().due

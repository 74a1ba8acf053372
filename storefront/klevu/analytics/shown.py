"""The banners pages have shown, by ``tokens.view_key``: what a no-JavaScript click names.

A banner token holds the whole banner (its products, for the events), and each of a banner's
links carried one: 4.5 KB of the simulator's demo banner page. A link now carries a short token
(the page view id and the banner's key, signed) and the click route looks the banner up here:
in this worker, else in the shared cache (``klevu:shown:<key>``, Redis with
``CACHE_REDIS_URL``), where each worker writes a banner when it first shows it, and again
every ``RESHARE_SECONDS`` while it keeps showing it, so it outlives every token that names it.
The beacon still gets the whole token, so impressions and JavaScript clicks need nothing here;
a click link whose banner is no longer known still leads to the product, unrecorded. Step 3
writes here as it shows a banner, as it issues the banner's token; step 4 reads.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app

from ...extensions import cache
from ..memo import Memo
from .events import BannerView
from .tokens import Sealed, view_key

log = logging.getLogger(__name__)

SHARED_SECONDS = 3 * 24 * 3600  # longer than a token is accepted (``tokens.TOKEN_MAX_AGE``)
RESHARE_SECONDS = 12 * 3600

SHOWN = "klevu.shown"  # app.extensions key: this worker's banners by key, per app


def init_app(app: Flask) -> None:
    app.extensions[SHOWN] = Memo()


def _known() -> Memo[str, tuple[BannerView, float]]:
    return current_app.extensions[SHOWN]


def remember(sealed: Sealed) -> None:
    """Called for every banner a page shows: a lookup, and a cache write at most twice a day."""
    memo = _known()
    known = memo.get(sealed.key)
    now = time.monotonic()
    if known is not None and now - known[1] < RESHARE_SECONDS:
        return
    memo.put(sealed.key, (sealed.view, now))
    try:
        cache.set(f"klevu:shown:{sealed.key}", sealed.view, timeout=SHARED_SECONDS)
    except Exception:
        log.warning("banner %s not shared (cache unavailable)", sealed.view.recs_key)


def recall(key: str) -> BannerView | None:
    """The banner shown under ``key``, if this worker or the shared cache still knows it."""
    known = _known().get(key)
    if known is not None:
        return known[0]
    banner = cache.get(f"klevu:shown:{key}")
    if not isinstance(banner, BannerView) or view_key(banner) != key:
        return None
    _known().put(key, (banner, time.monotonic()))
    return banner

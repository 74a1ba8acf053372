"""The visitor's recently viewed and clicked products, in the shop's cookie.

docs/klevu-wire-format.md §6.

Kept in a first-party cookie rather than server state: it is per browser like JSv2's, needs
no storage, and ``recently_viewed.py`` makes any tampered value harmless.
"""
from __future__ import annotations

from flask import after_this_request, request

from .. import recently_viewed

RECENT_MAX_AGE = 30 * 24 * 3600


def recent_ids() -> tuple[str, ...]:
    return recently_viewed.parse_recent(request.cookies.get(recently_viewed.COOKIE_NAME))


def remember_product(product_id: str) -> None:
    """Push a viewed or clicked product, newest first; written when the response goes out."""
    ids = recently_viewed.push_recent(recent_ids(), product_id)

    @after_this_request
    def store(response):
        response.set_cookie(recently_viewed.COOKIE_NAME, recently_viewed.format_recent(ids),
                            max_age=RECENT_MAX_AGE, httponly=True, samesite="Lax")
        return response

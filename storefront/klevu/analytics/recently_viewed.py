""" "Recently viewed" as Klevu means it: products the visitor clicked in Klevu's banners.

docs/klevu-wire-format.md §6.

``RECENTLY_VIEWED`` and ``TRENDING_PERSONALIZED`` banners are built from the products a visitor
chose in Klevu's banners, newest first, not from every product page seen. JSv2 keeps them in a
cookie of the visitor's own, at most 20 (and uses at most ``maxProducts``, queries.py); so does
the shop, in ``klevu_recent_clicks``: the beacon (static/js/beacon.js) writes it in the browser
when a ``.kuRECSItemClick`` is followed, and the no-JavaScript click route (analytics.py)
writes it on the server. Both write the format below, and every request carries it to the
page that builds the banners.

The cookie is unsigned visitor data: whatever comes back is untrusted. Any product id of 1 to
64 characters without control characters is kept (catalogues use ``.``, ``/``, ``:`` or spaces
in ids; queries.py escapes quotes when it quotes them into ``customANDQuery``): each id is
written as the unpadded base64url of its UTF-8, as JSv2 writes base64, and the ids are joined
with ".", at most 20 (20 x 345 bytes at worst, inside a browser's 4 KB per cookie; 9 bytes
for a 6-digit id). A part that is not such an encoding makes the whole value "no clicks". It is
not HttpOnly because the beacon writes it, as JSv2's own script does.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterable
from typing import TypeGuard

from flask import after_this_request, request

from .. import klevu

COOKIE_NAME = "klevu_recent_clicks"
COOKIE_MAX_AGE = 365 * 24 * 3600  # as long as JSv2 keeps its klevu_rcp cookie
MAX_KEPT = 20
SEPARATOR = "."
MAX_ID_CHARS = 64
_PART_RE = re.compile(r"[A-Za-z0-9_-]{2,344}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def parse(cookie_value: object) -> tuple[str, ...]:
    """Ids from the cookie, newest first; a malformed cookie reads as no clicks, never raises.

    Malformed means any part is not the encoding of a valid id (including empty parts): a
    half-trusted list is worth less than a clean start. Duplicates and ids beyond the 20th are
    dropped.
    """
    if not isinstance(cookie_value, str) or not cookie_value:
        return ()
    return _parsed(cookie_value)


@functools.lru_cache(maxsize=1024)
def _parsed(cookie_value: str) -> tuple[str, ...]:
    """Remembered per value: a browser sends the same one on every page until its next
    click, and 20 ids took 33 µs to check one by one."""
    ids = [_decoded(part) for part in cookie_value.split(SEPARATOR)]
    if not all(ids):
        return ()
    return _normalise(ids)


def push(ids: Iterable[str], product_id: str) -> tuple[str, ...]:
    """``ids`` with ``product_id`` moved to the front (newest first), deduplicated, at most 20.

    A product id that cannot be stored (outside the id alphabet) leaves the list as it was: the
    visitor just does not get that product in "recently viewed".
    """
    return _normalise([product_id, *ids])


def format_ids(ids: Iterable[str]) -> str:
    """The cookie value for ``ids``: only cookie-safe characters, readable by ``parse``."""
    return SEPARATOR.join(_encoded(i) for i in _normalise(ids))


def clicked_ids() -> tuple[str, ...]:
    """The current visitor's banner clicks, newest first (none without their consent)."""
    if not klevu.visitor().remembers_clicks:
        return ()
    return parse(request.cookies.get(COOKIE_NAME))


def remember_click(product_id: str) -> None:
    """Push a product chosen in a banner; the cookie is written when the response goes out.
    Nothing is written for a visitor who has not consented."""
    if not klevu.visitor().remembers_clicks:
        return
    ids = push(clicked_ids(), product_id)

    @after_this_request
    def store(response):
        response.set_cookie(COOKIE_NAME, format_ids(ids), max_age=COOKIE_MAX_AGE, samesite="Lax")
        return response


def _valid(product_id: object) -> TypeGuard[str]:
    return (
        isinstance(product_id, str)
        and 0 < len(product_id) <= MAX_ID_CHARS
        and not _CONTROL_RE.search(product_id)
    )


def _encoded(product_id: str) -> str:
    return base64.urlsafe_b64encode(product_id.encode()).rstrip(b"=").decode("ascii")


def _decoded(part: str) -> str | None:
    """The id a part encodes, or None: not base64url, not UTF-8, or not a valid id."""
    if not _PART_RE.fullmatch(part) or len(part) % 4 == 1:
        return None
    try:
        product_id = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return product_id if _valid(product_id) and _encoded(product_id) == part else None


def _normalise(ids: Iterable[object]) -> tuple[str, ...]:
    valid = (i for i in ids if _valid(i))
    return tuple(dict.fromkeys(valid))[:MAX_KEPT]

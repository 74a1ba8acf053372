"""The visitor's recently viewed and clicked products, kept in the shop's own cookie (§6).

``RECENTLY_VIEWED`` and ``TRENDING_PERSONALIZED`` banners need the visitor's recent product ids,
newest first (docs/klevu-wire-format.md §2). Klevu's browser libraries keep them client-side
(JSv2: up to
20 in a cookie; @klevu/core: localStorage); a server-rendered shop keeps them in a cookie of
its own, ``shop_recent``, so every request carries them without server state.

The cookie is plain, unsigned visitor data: whatever comes back is treated as untrusted. Only
ids of the form ``[A-Za-z0-9_-]{1,64}`` are kept — which also keeps them safe inside a cookie
and inside the ``customANDQuery`` "id:(a OR b)" built from them (queries.py) — joined with
".", at most 20 (20 x 65 bytes, well inside a browser's 4 KB per cookie).
"""
from __future__ import annotations

import re
from collections.abc import Iterable

COOKIE_NAME = "shop_recent"
MAX_RECENT = 20
SEPARATOR = "."
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def parse_recent(cookie_value: object) -> tuple[str, ...]:
    """Ids from the cookie, newest first; a malformed cookie reads as no history, never raises.

    Malformed means any part is not a valid id (including empty parts): a half-trusted list
    is worth less than a clean start. Duplicates and ids beyond the 20th are dropped.
    """
    if not isinstance(cookie_value, str) or not cookie_value:
        return ()
    ids = cookie_value.split(SEPARATOR)
    if not all(_ID_RE.fullmatch(i) for i in ids):
        return ()
    return _normalise(ids)


def push_recent(ids: Iterable[str], product_id: str) -> tuple[str, ...]:
    """``ids`` with ``product_id`` moved to the front (newest first), deduplicated, at most 20.

    A product id that cannot be stored (outside the id alphabet) leaves the list as it was: the
    visitor just does not get that product in "recently viewed".
    """
    return _normalise([product_id, *ids])


def format_recent(ids: Iterable[str]) -> str:
    """The cookie value for ``ids``: only cookie-safe characters, readable by ``parse_recent``."""
    return SEPARATOR.join(_normalise(ids))


def _normalise(ids: Iterable[object]) -> tuple[str, ...]:
    valid = (i for i in ids if isinstance(i, str) and _ID_RE.fullmatch(i))
    return tuple(dict.fromkeys(valid))[:MAX_RECENT]

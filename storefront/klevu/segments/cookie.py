"""Step 1's answer kept in the visitor's browser between pages, as Klevu's own JavaScript does.

Klevu's browser library asks the visitor service once and keeps the session id and segments
in the browser until their ``ttl`` ends (docs/klevu-wire-format.md §1). A server-rendered shop
has the same choice: ask its cache server on every page, or keep the answer with the visitor.
Asking the cache was the largest part of what a warm banner page costs over a plain one (with
Redis, 1.43 ms of CPU against 0.83 ms, and 1.12 ms without that read; docs/performance.md),
and it is paid on every page of every returning visitor. So once step 1 has a fresh answer
from the cache, the shop also writes it into ``klevu_segments``, an HttpOnly cookie signed
with the app's secret key, valid until the segments' ``ttl`` ends or the session is due to
be re-posted, whichever comes first. The next pages read it back; the cache is asked again
only once it has run out, or when it does not match the visitor: another session or exchange
id (a persona switch), a bad signature, a malformed value.

Signed, not encrypted: it holds the visitor's own session id and segment ids, which
``/klevu/segments`` tells the same browser anyway, and a hash of their exchange id, never the
id itself. Consent withdrawn and "forget me" expire it in the same response (``segments.py``).

Format: itsdangerous ``URLSafeSerializer`` (HMAC, a salt for this one purpose) over the
compact JSON list ``[session id, exchange hash, [segments], until]``, ``until`` in wall-clock
seconds so that every worker and host agrees.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

from itsdangerous import BadData, URLSafeSerializer
from werkzeug.http import dump_cookie

COOKIE = "klevu_segments"
SALT = "storefront.klevu.segments.resolver-cookie.v1"  # bump when the payload layout changes
MAX_CHARS = 2048  # far above a real answer (about 250 characters); refused unread beyond


class KeptSegments(NamedTuple):
    """A fresh step-1 answer, for one session and one exchange id, until ``until``.

    A named tuple, not a dataclass: a browser that does not send the cookie back has its
    ``Set-Cookie`` looked up by one on every page (``set_cookie_header``), and a tuple is
    hashed and compared in C."""

    session_id: str
    exchange_hash: str
    segments: tuple[str, ...]
    until: float  # wall clock

    def seconds_left(self, now: float) -> int:
        return max(0, math.ceil(self.until - now))


@functools.lru_cache(maxsize=8)
def _serializer(secret_key: str | bytes) -> URLSafeSerializer:
    """It holds no state but the key, so one serves every thread (and reading a cookie on
    every page does not build one each time)."""
    return URLSafeSerializer(secret_key, salt=SALT)


def seal(secret_key: str | bytes, kept: KeptSegments) -> str:
    """The cookie's value."""
    payload = [kept.session_id, kept.exchange_hash, list(kept.segments), kept.until]
    return _serializer(secret_key).dumps(payload)


@functools.lru_cache(maxsize=1024)
def set_cookie_header(secret_key: str | bytes, kept: KeptSegments) -> str:
    """The ``Set-Cookie`` value that keeps ``kept`` in the browser until it runs out.

    One answer makes the same header on every page until then (it expires at a date, not after
    a max-age counting down), so it is signed once: a browser that does not send the cookie back
    (it refused it, or it is one of its first pages) cost 160 µs of signing and 36 µs of header
    per page before. Remembered per answer, as ``_opened`` remembers what a value holds."""
    value = seal(secret_key, kept)
    return dump_cookie(COOKIE, value, expires=kept.until, httponly=True, samesite="Lax")


def unseal(
    secret_key: str | bytes,
    value: str | None,
    *,
    session_id: str | None,
    exchange_hash: str,
    now: float,
) -> KeptSegments | None:
    """The answer a cookie holds, if it is ours, well-formed, for this session and exchange
    id, and still valid at ``now``; None otherwise (then the cache is asked, as without it)."""
    if not value or not session_id or len(value) > MAX_CHARS:
        return None
    kept = _opened(secret_key, value)
    if kept and kept.session_id == session_id and kept.exchange_hash == exchange_hash:
        return kept if kept.until > now else None
    return None


@functools.lru_cache(maxsize=1024)
def _opened(secret_key: str | bytes, value: str) -> KeptSegments | None:
    """The well-formed answer a cookie value carries under our signature, or None.

    Remembered per value: a browser sends the same value on every page until it runs out.
    Checking the signature and reading the JSON take 12 µs measured alone, a remembered value
    0.3 µs; remembering saved 40 µs of a banner page's CPU (``bench/bench_page_cpu.py``).
    What depends on the request (whose session, whose exchange id, the time) is checked on
    each page, by ``unseal``. A bounded LRU: forged values can only churn it."""
    try:
        payload = _serializer(secret_key).loads(value)
    except BadData:
        return None
    if not (isinstance(payload, list) and len(payload) == 4):
        return None
    sid, xhash, segments, until = payload
    valid = (
        isinstance(sid, str)
        and isinstance(xhash, str)
        and isinstance(segments, list)
        and all(isinstance(s, str) for s in segments)
        and isinstance(until, (int, float))
        and not isinstance(until, bool)
    )
    return KeptSegments(sid, xhash, tuple(segments), float(until)) if valid else None

"""Step 1: each visitor's Klevu session id and Klaviyo segments (docs/klevu-wire-format.md §1).

Promises: one visitor-service call per visitor at a time, across workers and hosts sharing the
cache (``single_flight.py``); never a wait past the page's Klevu budget (``budget.py``: a late
answer is stored for the next page); the last known segments while the service fails, until
``STALE_LIMIT`` past their ttl, then anonymous. Values say themselves when they stop being
fresh (wall clock, so hosts agree); the keys and their lifetimes are in docs/operations.md,
"Segments cache".

Why it is shaped so: a session is refreshed by re-posting its id before its ttl ends, and a
new id Klevu gives is followed from the old one, so requests with the old cookie keep their
segments. An identified visitor's first call carries the connector info and opens the session
too: one call, not two. A call writes segments before the session keys that lead to them
(``_keep_answer``), so no reader meets a session without its segments. Segments are asked for
only with an exchange id and consent; a changed exchange id (its hash) asks again at once.

A fresh answer read from the cache is also kept in the visitor's signed ``klevu_segments``
cookie (``cookie.py``) until it runs out, as Klevu's JavaScript keeps segments in the browser.
``SegmentResolver`` has no Flask in it; the Flask glue is at the end of the module.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import dataclass

from flask import Blueprint, Flask, current_app, g, jsonify, request

from ...extensions import shared_store
from .. import klevu, klevu_client, trace
from ..budget import page_due
from ..client import BreakerOpen, KlevuClient, KlevuError, SessionAnswer
from ..memo import Memo
from ..single_flight import SingleFlight
from . import cookie
from .visitor import Visitor

log = logging.getLogger(__name__)

_UNREAD = object()  # a cache value not read yet (None is a value: not in the cache)

SESSION_COOKIE = "klevu_session"
SESSION_COOKIE_MAX_AGE = 30 * 24 * 3600
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_\-.:]{8,128}$")
STALE_LIMIT = 15 * 60  # serve last known segments this long past their ttl
# Re-post a session id at this fraction of its ttl: Klevu forgets an id when its ttl ends,
# and re-posting a forgotten id gets a new one, so waiting for the end would break continuity.
SESSION_REFRESH_AT = 0.9
DEFAULT_DEADLINE = 0.8  # seconds, when the caller gives no page budget
# Upstream calls in progress at once, per process. A call never queues (it would start after
# its page and its claim are long gone): with every slot busy, Klevu is too slow to wait for.
MAX_WORKERS = 8
LOCAL_ENTRIES = 4096  # visitors whose fresh answer a worker keeps (``_both``)


@dataclass(frozen=True)
class Resolution:
    """What the rest of the page needs from step 1."""

    session_id: str | None
    segments: tuple[str, ...]
    seconds_left: int
    source: str  # "cookie" | "cache" | "klevu" | "stale" | "none"
    # Until when (wall clock) the visitor's browser may keep this answer (``segments_cookie``):
    # a fresh answer read from the cache, while both its segments and its session are; else 0.
    until: float = 0.0


ANONYMOUS = Resolution(None, (), 0, "none")


@functools.lru_cache(maxsize=4096)  # a returning visitor's exchange id, on each of their pages
def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _session_entry(value: object) -> dict | None:
    """A ``klevu:session``/``klevu:visitor`` value, or None for a missing or foreign one."""
    if (
        isinstance(value, dict)
        and isinstance(value.get("id"), str)
        and _number(value.get("expires"))
    ):
        return value
    return None


def _segments_entry(value: object, xhash: str) -> dict | None:
    """A ``klevu:segments`` value for this exchange id; another person's is not ours to use."""
    if (
        isinstance(value, dict)
        and value.get("x") == xhash
        and isinstance(value.get("session"), str)
        and isinstance(value.get("segments"), list)
        and _number(value.get("expires"))
    ):
        return value
    return None


class SegmentResolver:
    """Resolves one visitor's session and segments through a shared cache.

    Framework-free so its rules are unit-tested with a fake client and clock. ``store`` is a
    cachelib-style backend (``get/set/add/delete``), e.g. ``cache.cache``: not the Flask-Caching
    front-end, which needs an app context that the pool's threads do not have. ``clock`` is
    wall time because cached ``expires`` values are compared on every host; the deadline is a
    real wait in this process, so it runs on ``time.monotonic``.
    """

    def __init__(
        self,
        client: KlevuClient,
        store,
        *,
        clock: Callable[[], float] = time.time,
        deadline: float = DEFAULT_DEADLINE,
        stale_limit: int = STALE_LIMIT,
    ):
        self.client = client
        self.store = store
        self.clock = clock
        self.deadline = deadline
        self.stale_limit = stale_limit
        self._pool = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="segments")
        self._slots = threading.BoundedSemaphore(MAX_WORKERS)
        self._flights = SingleFlight(store, clock=clock)
        # Not a cachelib ``SimpleCache``: it pickled each answer in and out (a cookie-less
        # page read it on every page), and ``_both`` checks freshness itself.
        self._local: Memo[str, tuple[str, list, float]] = Memo(LOCAL_ENTRIES)

    # -- public ------------------------------------------------------------------------------
    def resolve(
        self,
        session_id: str | None,
        exchange_id: str | None,
        browser_id: str | None = None,
        *,
        due: float | None = None,
    ) -> Resolution:
        """``session_id`` from the visitor's cookie; ``exchange_id`` only with consent;
        ``browser_id`` (Klaviyo's ``cid``) lets a cookie-less first visit share one session;
        ``due`` (``time.monotonic``) is when the page stops waiting."""
        due = time.monotonic() + self.deadline if due is None else due
        lookup = (
            f"klevu:session:{session_id}"
            if session_id
            else f"klevu:visitor:{_digest(browser_id)}"
            if browser_id
            else None
        )
        if exchange_id:
            # A returning visitor's cookie names the session its segments are stored under:
            # both in one round trip to the cache.
            guess = f"klevu:segments:{session_id}" if session_id else None
            found = self._both(lookup, guess, _digest(exchange_id)) if lookup else []
            entry = _session_entry(found[0]) if found else None
            if entry and entry["expires"] > self.clock():
                return self._segments(
                    lookup,
                    entry["id"],
                    exchange_id,
                    due,
                    found[1] if entry["id"] == session_id else _UNREAD,
                    session_expires=entry["expires"],
                )
            # No live session yet: one call opens (or refreshes) it with the connector info
            # and answers the segments too (klevu-wire-format.md §1).
            return self._opened(lookup, entry["id"] if entry else session_id, exchange_id, due)
        current = self._session(lookup, session_id, due)
        if current is None:
            return ANONYMOUS
        # Consent withdrawn where the server cannot see it (``__kla_off`` set by Klaviyo's
        # script): the first anonymous request drops what was cached about the person.
        self.store.delete(f"klevu:segments:{current}")
        return Resolution(current, (), 0, "none")

    def _both(self, lookup: str, guess: str | None, xhash: str) -> list:
        """The session's entry and (``guess``) its segments': from this worker while both are
        fresh, if it read them so before, else in one round trip to the cache.

        What a visitor's ``klevu_segments`` cookie spares the cache, kept in the worker for a
        browser that does not send it back (it refused it, or it is one of its first pages):
        a round trip per page made such a visitor's banner page 0.5 ms of CPU dearer than
        with the cookie. Only an answer for this exchange id is reused (another one is asked
        for at once); "forget me" drops it here, and another worker's copy serves only that
        same exchange id, which the forgotten visitor no longer sends."""
        if guess:
            kept = self._local.get(guess)
            if kept is not None and kept[0] == xhash and kept[2] > self.clock():
                return kept[1]
        found = self.store.get_many(*filter(None, (lookup, guess)))
        if guess and len(found) == 2:
            session, segments = _session_entry(found[0]), _segments_entry(found[1], xhash)
            if session and segments and session["id"] == guess.rpartition(":")[2]:
                until = min(session["expires"], segments["expires"])
                if until > self.clock():
                    self._local.put(guess, (xhash, found, until))
        return found

    def forget(self, session_id: str | None, browser_id: str | None = None) -> None:
        """Drop the segments of every session this visitor can be traced to, and the
        ``cid`` → session link: what we hold about them goes with "forget me"."""
        keys = [
            k
            for k in (
                f"klevu:session:{session_id}" if session_id else None,
                f"klevu:visitor:{_digest(browser_id)}" if browser_id else None,
            )
            if k
        ]
        ids = {session_id} if session_id else set()
        for key in keys:
            entry = _session_entry(self.store.get(key))
            if entry:
                ids.add(entry["id"])
        for sid in ids:
            self.store.delete(f"klevu:segments:{sid}")
            self._local.pop(f"klevu:segments:{sid}")
        if browser_id:
            self.store.delete(f"klevu:visitor:{_digest(browser_id)}")

    # -- session ----------------------------------------------------------------------------
    def _session(self, lookup: str | None, session_id: str | None, due: float) -> str | None:
        entry = _session_entry(self.store.get(lookup)) if lookup else None
        if entry and entry["expires"] > self.clock():
            return entry["id"]
        known = entry["id"] if entry else session_id  # re-post what we have: continuity

        def call() -> str:
            answer = self.client.start_session(known, due=due)
            self._keep_session(answer.session_id, answer.ttl, lookup)
            return answer.session_id

        def settled() -> str | None:
            fresh = _session_entry(self.store.get(lookup))
            return fresh["id"] if fresh and fresh["expires"] > self.clock() else None

        fetched, _ = self._single_flight(lookup, call, settled, due)
        return fetched or known  # Klevu failed or was late: keep the id we had, if any

    def _keep_session(
        self,
        session_id: str,
        ttl: int,
        *aliases: str | None,
        refresh_at: float = SESSION_REFRESH_AT,
    ) -> None:
        """Store ``session_id`` under its own key and under each key that should lead to it."""
        ttl = max(1, ttl)
        entry = {"id": session_id, "expires": self.clock() + ttl * refresh_at}
        for key in {f"klevu:session:{session_id}", *filter(None, aliases)}:
            self.store.set(key, entry, timeout=ttl + self.stale_limit)

    # -- segments ---------------------------------------------------------------------------
    def _opened(
        self, lookup: str | None, known: str | None, exchange_id: str, due: float
    ) -> Resolution:
        """Session and segments from one visitor-service call."""
        xhash = _digest(exchange_id)

        def call() -> dict:
            answer = self.client.start_session(known, exchange_id, due=due)
            fresh = self._segments_value(answer, xhash)
            # The answer's ttl is the segments'; the session lives at least as long, and is
            # re-posted together with the connector info (one call) when the segments run out.
            self._keep_answer(
                answer,
                fresh,
                lookup,
                f"klevu:session:{known}" if known else None,
                refresh_at=1.0,
            )
            return fresh

        def settled() -> dict | None:
            session = _session_entry(self.store.get(lookup)) if lookup else None
            if not session or session["expires"] <= self.clock():
                return None
            fresh = _segments_entry(self.store.get(f"klevu:segments:{session['id']}"), xhash)
            return fresh if fresh and fresh["expires"] > self.clock() else None

        name = f"{lookup}:{xhash}" if lookup else None
        fetched, source = self._single_flight(name, call, settled, due)
        if fetched is not None:
            return self._resolution(fetched, source)
        stale = _segments_entry(self.store.get(f"klevu:segments:{known}"), xhash) if known else None
        if stale and stale["expires"] + self.stale_limit > self.clock():
            return self._resolution(stale, "stale")
        return Resolution(known, (), 0, "none")

    def _keep_answer(
        self,
        answer: SessionAnswer,
        fresh: dict,
        *aliases: str | None,
        refresh_at: float = SESSION_REFRESH_AT,
    ) -> None:
        """A call's new session and its segments. Segments first: a request that finds the
        session then finds its segments, where the other order let a worker reading between
        the two writes see a session without segments and call Klevu again."""
        key = f"klevu:segments:{answer.session_id}"
        self.store.set(key, fresh, timeout=self._segments_timeout(answer))
        self._keep_session(answer.session_id, answer.ttl, *aliases, refresh_at=refresh_at)

    def _segments_timeout(self, answer: SessionAnswer) -> int:
        return max(1, answer.ttl + self.stale_limit)

    def _segments_value(self, answer: SessionAnswer, xhash: str) -> dict:
        return {
            "session": answer.session_id,
            "x": xhash,
            "segments": list(answer.segments),
            "expires": self.clock() + answer.ttl,
        }

    def _segments(
        self,
        lookup: str | None,
        session_id: str,
        exchange_id: str,
        due: float,
        cached: object = _UNREAD,
        *,
        session_expires: float,
    ) -> Resolution:
        """``cached``: the value of the session's segments key, when the caller read it;
        ``session_expires``: when the session is due to be re-posted."""
        key = f"klevu:segments:{session_id}"
        xhash = _digest(exchange_id)
        entry = _segments_entry(self.store.get(key) if cached is _UNREAD else cached, xhash)
        if entry and entry["expires"] > self.clock():
            until = min(entry["expires"], session_expires)
            return self._resolution(entry, "cache", until=until)

        def call() -> dict:
            answer = self.client.start_session(session_id, exchange_id, due=due)
            fresh = self._segments_value(answer, xhash)
            if answer.session_id != session_id:
                # Klevu had let the session expire and opened another. Its own ttl is not in
                # this answer: trust it for the segments' ttl, then refresh and learn it.
                self._keep_answer(answer, fresh, f"klevu:session:{session_id}", lookup)
            # Under the old id too, so requests waiting on this key see the answer (and new id).
            self.store.set(key, fresh, timeout=self._segments_timeout(answer))
            return fresh

        def settled() -> dict | None:
            fresh = _segments_entry(self.store.get(key), xhash)
            return fresh if fresh and fresh["expires"] > self.clock() else None

        fetched, source = self._single_flight(f"{key}:{xhash}", call, settled, due)
        if fetched is not None:
            return self._resolution(fetched, source)
        if entry and entry["expires"] + self.stale_limit > self.clock():
            return self._resolution(entry, "stale")
        return Resolution(session_id, (), 0, "none")

    def _resolution(self, entry: dict, source: str, until: float = 0.0) -> Resolution:
        left = max(0, math.ceil(entry["expires"] - self.clock()))
        return Resolution(entry["session"], tuple(entry["segments"]), left, source, until)

    # -- one upstream call per visitor at a time ---------------------------------------------
    def _single_flight(self, name: str | None, call, settled, due: float):
        """``(value, "klevu")`` when this request made the call, ``(value, "cache")`` when it
        waited for another's, ``(None, "none")`` when the call failed or missed the deadline.

        A waiter that sees the claim gone with nothing settled returns at once: the call
        failed, and piling more calls on a failing service would not help.
        """
        if name is None:  # nothing to meet on: a first visit with no cookie at all
            return self._lead(call, None, due)
        joined = self._flights.join(name, settled, due)
        if joined.lead:
            return self._lead(call, name, due)
        return (joined.value, "cache") if joined.value is not None else (None, "none")

    def _lead(self, call, claim: str | None, due: float):
        if not self._slots.acquire(blocking=False):
            log.warning(
                "visitor service: %d calls already in progress, not adding another", MAX_WORKERS
            )
            if claim:
                self._flights.release(claim)
            return None, "none"
        future = self._pool.submit(self._call_and_release, call, claim)
        try:
            value = future.result(timeout=max(0.0, due - time.monotonic()))
        except FutureTimeout:
            log.warning(
                "visitor service missed the page deadline; its answer is kept for the next page"
            )
            self.client.overdue(due)  # a slow call: a failure for the breaker from now on
            return None, "none"
        return (value, "klevu") if value is not None else (None, "none")

    def _call_and_release(self, call, claim: str | None):
        """Runs on the pool, possibly after the page stopped waiting: nobody else would see
        its errors, so they are logged here and the page falls back to stale or anonymous."""
        try:
            return call()
        except BreakerOpen:
            pass  # counted by the breaker (/healthz), logged once when it opened
        except KlevuError as exc:
            log.warning("visitor service failed: %s", exc)
        except Exception:
            log.exception("visitor-service call failed unexpectedly")
        finally:
            self._slots.release()
            if claim:
                self._flights.release(claim)
        return None


# -- Flask glue ---------------------------------------------------------------------------
bp = Blueprint("segments", __name__)


RESOLVER = "klevu.segments"  # app.extensions key, read through ``segment_resolver()``


def segment_resolver(app: Flask | None = None) -> SegmentResolver:
    """The app's step-1 resolver (``current_app``'s by default)."""
    return (app or current_app).extensions[RESOLVER]


def init_app(app: Flask) -> None:
    store = shared_store(app)
    app.extensions[RESOLVER] = SegmentResolver(
        klevu_client(app), store, deadline=app.config["KLEVU_PAGE_BUDGET_MS"] / 1000
    )


def session_cookie(cookies: Mapping[str, str] | None = None) -> str | None:
    """The visitor's Klevu session id from its cookie (in ``cookies``, the request's by
    default), if it has a well-formed one."""
    value = (request.cookies if cookies is None else cookies).get(SESSION_COOKIE, "")
    return value if SESSION_ID_RE.match(value) else None


def current_segments(visitor: Visitor) -> Resolution:
    """The visitor's session and segments, resolved once per request and visitor.

    The visitor can change mid-request (an email link or a persona choice identifies them), so
    the answer is remembered together with the visitor it was resolved for. A returning
    visitor's answer usually comes from their own ``klevu_segments`` cookie
    (``cookie.py``), else from the resolver. Segments only improve the page: whatever
    fails here (the cache server too), the page renders, for an anonymous visitor.
    """
    # ``g`` and ``request`` looked up once each: every banner page comes here.
    page = g._get_current_object()
    earlier = page.get("segments")
    if earlier is not None and page.segments_visitor == visitor:
        return earlier
    cookies = request.cookies
    # Same browser, same session: keep the id it already has.
    session_id = session_cookie(cookies) or (earlier.session_id if earlier else None)
    resolved = _kept(visitor, session_id, cookies.get(cookie.COOKIE))
    if resolved is None:
        # Timed when it asks the cache or Klevu (``Server-Timing``), not for the browser's own
        # cookie, which takes microseconds: its entry in the header cost more than reading it.
        with trace.timed("segments"):
            resolved = _resolved(visitor, session_id)
    page.segments, page.segments_visitor = resolved, visitor
    trace.note("segments", resolution=resolved)
    return resolved


def _kept(visitor: Visitor, session_id: str | None, kept_value: str | None) -> Resolution | None:
    """The answer the visitor's browser keeps (``kept_value``) for this session and exchange
    id, if valid."""
    if visitor.exchange_id is None or not kept_value:
        return None
    now = time.time()
    kept = cookie.unseal(
        current_app.config["SECRET_KEY"],
        kept_value,
        session_id=session_id,
        exchange_hash=_digest(visitor.exchange_id),
        now=now,
    )
    if kept is None:
        return None
    return Resolution(kept.session_id, kept.segments, kept.seconds_left(now), "cookie")


def _resolved(visitor: Visitor, session_id: str | None) -> Resolution:
    try:
        return segment_resolver().resolve(
            session_id, visitor.exchange_id, browser_id=visitor.browser_id, due=page_due()
        )
    except Exception:
        log.exception("segments unavailable: this page is shown to an anonymous visitor")
        return Resolution(session_id, (), 0, "none")


def forget_segments(visitor: Visitor) -> None:
    """Consent withdrawn or "forget me": drop what we cached about this visitor.

    Called with the visitor being forgotten. If the cache cannot be reached, the consent choice
    still goes through: the segments then expire on their own (ttl + ``STALE_LIMIT``) and are
    never served without the exchange id that is being removed.
    """
    resolved = g.pop("segments", None)
    g.pop("segments_visitor", None)
    g.segments_forgotten = True  # the browser's copy goes too (``keep_session_cookies``)
    try:
        resolver = segment_resolver()
        resolver.forget(session_cookie(), visitor.browser_id)
        if resolved and resolved.session_id and resolved.session_id != session_cookie():
            resolver.forget(resolved.session_id)
    except Exception:
        log.exception("could not drop cached segments; they expire on their own")


@bp.after_app_request
def keep_session_cookies(response):
    """Continuity: the visitor keeps the Klevu session id across pages (and new ones stick);
    a fresh answer from the cache is also kept in the browser, until it runs out. (Every
    cookie gets ``Secure`` under HTTPS from ``security/cookies.py``.)"""
    page = g._get_current_object()  # once: every page runs this
    resolved = page.get("segments")
    if resolved is not None and resolved.source == "cookie" and not page.get("segments_forgotten"):
        return response  # the browser's own cookies, read back: its session id, nothing new
    cookies = request.cookies
    # A resolved id is well-formed, so unequal to the cookie's value exactly when unequal to
    # the well-formed value ``session_cookie`` would read: no second check of the cookie.
    if resolved and resolved.session_id and resolved.session_id != cookies.get(SESSION_COOKIE):
        response.set_cookie(
            SESSION_COOKIE,
            resolved.session_id,
            max_age=SESSION_COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
        )
    now = time.time()
    visitor = page.get("segments_visitor")
    exchange_id = visitor.exchange_id if visitor else None
    if page.get("segments_forgotten"):
        if cookie.COOKIE in cookies:
            response.delete_cookie(cookie.COOKIE, httponly=True, samesite="Lax")
    elif resolved and resolved.until > now and resolved.session_id and exchange_id:
        kept = cookie.KeptSegments(
            resolved.session_id, _digest(exchange_id), resolved.segments, resolved.until
        )
        response.headers.add(
            "Set-Cookie", cookie.set_cookie_header(current_app.config["SECRET_KEY"], kept)
        )
    return response


@bp.get("/klevu/segments")
def current():
    """For the beacon and for demos: what step 1 resolved for this visitor, and from where."""
    resolved = current_segments(klevu.visitor())
    response = jsonify(
        segments=list(resolved.segments),
        seconds_left=resolved.seconds_left,
        source=resolved.source,
        session=bool(resolved.session_id),
    )
    response.cache_control.no_store = True
    return response

"""SegmentResolver's rules over a fake clock and a fake visitor service, with Flask-Caching's
SimpleCache as the store; then the blueprint's glue (cookie, JSON, failures) in a bare app.

The fake service keeps sessions as Klevu does (alive for their ttl on the fake clock, a dead
id silently replaced by a new one) and records every call, so each test counts calls.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from email.utils import parsedate_to_datetime

import pytest
import redis
from flask import Flask, g
from flask_caching.backends import SimpleCache

from storefront.extensions import cache
from storefront.identity import current_identity, current_visitor, load_personas
from storefront.klaviyo import KLA_ID_COOKIE, encode_kla_id
from storefront.klevu import CLIENT
from storefront.klevu.client import KlevuError, SessionAnswer
from storefront.klevu.segments import cookie as segments_cookie, resolver as segments
from storefront.klevu.segments.resolver import (
    ANONYMOUS,
    SESSION_COOKIE,
    Resolution,
    SegmentResolver,
    current_segments,
    forget_segments,
    segment_resolver,
)
from tests.helpers import exchange_id, run_together, wait_until

COMPANY = "DemoCo"
PERSONAS = {p["key"]: p for p in load_personas()["personas"]}
MAYA_XID = exchange_id("maya")
OLIVER_XID = exchange_id("oliver")
SEGMENTS = {MAYA_XID: ("seg_outdoor",), OLIVER_XID: ("seg_vip", "seg_style")}
CID = "YWUyOGU5ZjMtMzI2MS00ZTQ5LTgzNmEtOGNmNDkyOWQ3MTMx"


class FakeKlevu:
    """The visitor service: ``start_session`` as KlevuClient has it (with an exchange id, the
    call carries the connector info and answers the segments too)."""

    def __init__(self, clock, *, session_ttl: int = 3600, segment_ttl: int = 60):
        self.clock = clock
        self.session_ttl = session_ttl
        self.segment_ttl = segment_ttl
        self.sessions: dict[str, float] = {}  # id -> when Klevu forgets it
        self.calls: list[tuple] = []
        self.down = False
        self.delay = 0.0
        self.gates: dict[str, threading.Event] = {}  # kind -> held until set
        self.gave_up: list[float] = []  # deadlines of the pages that stopped waiting
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def overdue(self, due: float) -> None:
        self.gave_up.append(due)

    def count(self, kind: str) -> int:
        return sum(1 for call in self.calls if call[0] == kind)

    def _called(self, kind: str, *args) -> None:
        with self._lock:
            self.calls.append((kind, *args))
        if kind in self.gates:
            assert self.gates[kind].wait(5), "test never released the gate"
        time.sleep(self.delay)
        if self.down:
            raise KlevuError("visitor service down", status=503)

    def _open(self, session_id: str | None) -> str:
        with self._lock:
            if not (session_id and self.sessions.get(session_id, 0) > self.clock()):
                session_id = f"session-{next(self._ids):04d}"
            self.sessions[session_id] = self.clock() + self.session_ttl
            return session_id

    def start_session(
        self, session_id=None, exchange_id=None, *, timeout=None, due=None
    ) -> SessionAnswer:
        if exchange_id is None:
            self._called("session", session_id)
            return SessionAnswer(self._open(session_id), (), self.session_ttl)
        self._called("connector", session_id, exchange_id)
        return SessionAnswer(
            self._open(session_id), SEGMENTS.get(exchange_id, ()), self.segment_ttl
        )


@pytest.fixture
def klevu(clock):
    fake = FakeKlevu(clock)
    yield fake
    for gate in fake.gates.values():  # never leave a pool thread blocked
        gate.set()


def resolver_for(klevu, clock, **kwargs) -> SegmentResolver:
    return SegmentResolver(klevu, SimpleCache(threshold=10_000), clock=clock, **kwargs)


@pytest.fixture
def resolver(klevu, clock):
    return resolver_for(klevu, clock)


# -- ttl ---------------------------------------------------------------------------------------
def test_a_first_visit_opens_the_session_and_gets_segments_in_one_call(resolver, klevu):
    resolved = resolver.resolve(None, MAYA_XID, browser_id=CID)

    assert resolved == Resolution("session-0001", ("seg_outdoor",), 60, "klevu")
    assert klevu.calls == [("connector", None, MAYA_XID)]


def test_a_returning_visitor_within_the_ttl_costs_no_call(resolver, klevu, clock):
    sid = resolver.resolve(None, MAYA_XID).session_id
    clock.advance(59)

    resolved = resolver.resolve(sid, MAYA_XID)

    # The browser may keep it (``until``) while both segments and session are fresh.
    assert resolved == Resolution(sid, ("seg_outdoor",), 1, "cache", until=clock() + 1)
    assert len(klevu.calls) == 1


def test_segments_are_fetched_again_with_the_same_session_when_their_ttl_ends(
    resolver, klevu, clock
):
    sid = resolver.resolve(None, MAYA_XID).session_id
    clock.advance(61)

    assert resolver.resolve(sid, MAYA_XID) == Resolution(sid, ("seg_outdoor",), 60, "klevu")
    assert klevu.calls[1:] == [("connector", sid, MAYA_XID)]


def test_a_session_is_refreshed_by_re_posting_its_id_before_klevu_forgets_it(klevu, clock):
    klevu.session_ttl, klevu.segment_ttl = 100, 1000
    resolver = resolver_for(klevu, clock)
    sid = resolver.resolve(None, None, browser_id=CID).session_id  # anonymous at first
    resolver.resolve(sid, MAYA_XID)  # then identified: the connector
    clock.advance(89)
    resolver.resolve(sid, MAYA_XID)
    assert len(klevu.calls) == 2  # still fresh

    clock.advance(2)  # 91 s: 90% of its ttl has passed
    resolved = resolver.resolve(sid, MAYA_XID)

    # The same id re-posted, with the connector info in the same call.
    assert klevu.calls[2:] == [("connector", sid, MAYA_XID)]
    assert resolved == Resolution(sid, ("seg_outdoor",), 1000, "klevu")


def test_a_new_session_id_from_klevu_replaces_the_old_one_and_the_old_cookie_follows(klevu, clock):
    klevu.session_ttl, klevu.segment_ttl = 100, 1000
    resolver = resolver_for(klevu, clock)
    old = resolver.resolve(None, MAYA_XID).session_id
    klevu.sessions.clear()  # Klevu forgot it (e.g. a restart)
    clock.advance(1001)

    resolved = resolver.resolve(old, MAYA_XID)

    new = resolved.session_id
    assert new != old
    assert klevu.calls[1:] == [("connector", old, MAYA_XID)]
    assert resolved.segments == ("seg_outdoor",)
    # A request still carrying the old cookie gets the new id, without another call.
    kept = resolver.resolve(old, MAYA_XID)
    assert kept == Resolution(new, ("seg_outdoor",), 1000, "cache", until=clock() + 1000)
    assert resolver.resolve(new, MAYA_XID).source == "cache"
    assert len(klevu.calls) == 2


def test_a_new_session_id_in_the_connector_answer_is_adopted(klevu, clock):
    klevu.session_ttl = 100
    resolver = resolver_for(klevu, clock)
    old = resolver.resolve(None, None, browser_id=CID).session_id  # session ttl 100 s
    resolver.resolve(old, MAYA_XID)
    klevu.sessions.clear()  # Klevu lost the session while our copy is still fresh
    clock.advance(61)

    resolved = resolver.resolve(old, MAYA_XID)

    assert klevu.calls[2:] == [("connector", old, MAYA_XID)]
    assert resolved.session_id not in (None, old) and resolved.source == "klevu"
    # Kept in the browser only until the new session is due to be re-posted (90% of 60 s),
    # before its segments run out.
    cached = replace(resolved, source="cache", until=clock() + 54)
    assert resolver.resolve(old, MAYA_XID) == cached
    assert resolver.resolve(resolved.session_id, MAYA_XID) == cached
    assert len(klevu.calls) == 3


def test_a_new_exchange_id_is_asked_about_at_once(resolver, klevu, clock):
    sid = resolver.resolve(None, MAYA_XID).session_id
    clock.advance(5)

    resolved = resolver.resolve(sid, OLIVER_XID)

    assert resolved == Resolution(sid, ("seg_vip", "seg_style"), 60, "klevu")
    assert klevu.calls[1:] == [("connector", sid, OLIVER_XID)]


# -- anonymous visitors -----------------------------------------------------------------------
def test_an_anonymous_visitor_gets_a_session_but_never_a_connector_call(resolver, klevu, clock):
    first = resolver.resolve(None, None, browser_id=CID)
    clock.advance(30)
    again = resolver.resolve(first.session_id, None)

    assert first == Resolution("session-0001", (), 0, "none")
    assert again == first
    assert klevu.calls == [("session", None)]


def test_going_anonymous_drops_the_cached_segments(resolver, klevu):
    sid = resolver.resolve(None, MAYA_XID).session_id
    resolver.resolve(sid, None)  # e.g. __kla_off set by Klaviyo's script

    assert resolver.resolve(sid, MAYA_XID).source == "klevu"
    assert klevu.count("connector") == 2


def test_forget_drops_segments_and_the_klaviyo_cid_link(resolver, klevu):
    sid = resolver.resolve(None, MAYA_XID, browser_id=CID).session_id
    resolver.forget(sid, CID)

    assert resolver.resolve(sid, MAYA_XID).source == "klevu"
    resolver.resolve(None, None, browser_id=CID)  # the cid leads to no session now
    assert klevu.count("session") == 1


# -- failures and the deadline ----------------------------------------------------------------
def test_last_known_segments_serve_until_the_hard_limit_then_the_visitor_is_anonymous(
    resolver, klevu, clock
):
    sid = resolver.resolve(None, MAYA_XID).session_id
    klevu.down = True

    clock.advance(60 + 899)
    assert resolver.resolve(sid, MAYA_XID) == Resolution(sid, ("seg_outdoor",), 0, "stale")
    # Never someone else's: stale segments belong to the exchange id they were fetched for.
    assert resolver.resolve(sid, OLIVER_XID) == Resolution(sid, (), 0, "none")
    clock.advance(2)
    assert resolver.resolve(sid, MAYA_XID) == Resolution(sid, (), 0, "none")


def test_a_failing_first_visit_is_anonymous_after_its_one_call(resolver, klevu):
    klevu.down = True

    assert resolver.resolve(None, MAYA_XID, browser_id=CID) == ANONYMOUS
    assert klevu.calls == [("connector", None, MAYA_XID)]


def test_a_slow_service_costs_the_page_its_deadline_and_the_late_answer_is_kept(klevu, clock):
    resolver = resolver_for(klevu, clock, deadline=0.2)
    klevu.gates["connector"] = threading.Event()

    started = time.monotonic()
    first = resolver.resolve(None, MAYA_XID, browser_id=CID)
    second = resolver.resolve(None, MAYA_XID, browser_id=CID)  # waits on the same call
    elapsed = time.monotonic() - started

    assert first == second == ANONYMOUS
    assert 0.4 <= elapsed < 0.7
    assert klevu.calls == [("connector", None, MAYA_XID)]
    assert len(klevu.gave_up) == 1  # the page that made the call: a slow call from now on
    klevu.gates["connector"].set()
    wait_until(lambda: resolver.store.get("klevu:session:session-0001") is not None, 2)
    resolved = resolver.resolve(None, MAYA_XID, browser_id=CID)
    assert resolved == Resolution("session-0001", ("seg_outdoor",), 60, "cache", until=clock() + 60)
    assert len(klevu.calls) == 1


def test_late_segments_fall_back_to_stale_within_the_deadline(klevu, clock):
    resolver = resolver_for(klevu, clock, deadline=0.2)
    sid = resolver.resolve(None, MAYA_XID).session_id
    clock.advance(61)
    klevu.gates["connector"] = threading.Event()

    started = time.monotonic()
    resolved = resolver.resolve(sid, MAYA_XID)

    assert time.monotonic() - started < 0.35
    assert resolved == Resolution(sid, ("seg_outdoor",), 0, "stale")


def test_with_every_call_slot_busy_a_page_does_not_queue_another_call(klevu, clock):
    resolver = resolver_for(klevu, clock, deadline=0.05)
    klevu.gates["session"] = threading.Event()
    for n in range(segments.MAX_WORKERS):  # that many visitors' calls hang
        resolver.resolve(None, None, browser_id=f"cid{n}")

    resolver.deadline = 1.0
    started = time.monotonic()
    resolved = resolver.resolve(None, MAYA_XID, browser_id=CID)

    assert resolved == ANONYMOUS and time.monotonic() - started < 0.5  # did not wait it out
    assert klevu.count("session") == segments.MAX_WORKERS
    klevu.gates["session"].set()  # slots free again as calls return
    wait_until(lambda: resolver.resolve(None, MAYA_XID, browser_id=CID).source == "klevu", 2)


# -- one call per visitor ---------------------------------------------------------------------
def test_concurrent_first_requests_of_one_visitor_make_one_call(klevu, clock):
    resolver = resolver_for(klevu, clock, deadline=3.0)
    klevu.delay = 0.05

    results = run_together(20, lambda: resolver.resolve(None, MAYA_XID, browser_id=CID))

    assert klevu.calls == [("connector", None, MAYA_XID)]
    assert {r.session_id for r in results} == {"session-0001"}
    assert {r.segments for r in results} == {("seg_outdoor",)}
    assert sorted(r.source for r in results) == ["cache"] * 19 + ["klevu"]


def test_concurrent_requests_during_a_refresh_all_see_the_new_id(klevu, clock):
    resolver = resolver_for(klevu, clock, deadline=3.0)
    old = resolver.resolve(None, MAYA_XID).session_id
    klevu.sessions.clear()
    clock.advance(3601)
    klevu.delay = 0.05

    results = run_together(20, lambda: resolver.resolve(old, MAYA_XID))

    assert klevu.calls[1:] == [("connector", old, MAYA_XID)]
    assert {r.session_id for r in results} == {"session-0002"}
    assert {r.segments for r in results} == {("seg_outdoor",)}


def test_concurrent_requests_share_one_failure_instead_of_retrying_it(klevu, clock):
    resolver = resolver_for(klevu, clock, deadline=3.0)
    klevu.down, klevu.delay = True, 0.1

    started = time.monotonic()
    results = run_together(20, lambda: resolver.resolve(None, MAYA_XID, browser_id=CID))

    assert results == [ANONYMOUS] * 20
    assert len(klevu.calls) == 1
    assert time.monotonic() - started < 1.0  # nobody waited out the 3 s deadline


class RacingStore:
    """A shared store where another worker acts in one of the gaps between this request's
    cache commands (over Redis, each gap is a network round trip): before its first claim, or
    right after its first write of a key starting with ``after_first_set[0]``."""

    def __init__(self, inner):
        self.inner = inner
        self.before_first_claim = None
        self.after_first_set: tuple[str, Callable[[], object]] | None = None

    def add(self, key, value, timeout=None):
        hook, self.before_first_claim = self.before_first_claim, None
        if hook:
            hook()
        return self.inner.add(key, value, timeout=timeout)

    def set(self, key, value, timeout=None):
        stored = self.inner.set(key, value, timeout=timeout)
        if self.after_first_set and key.startswith(self.after_first_set[0]):
            hook, self.after_first_set = self.after_first_set[1], None
            hook()
        return stored

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_call_finished_by_another_worker_just_before_our_claim_is_not_repeated(klevu, clock):
    store = RacingStore(SimpleCache())
    ours = SegmentResolver(klevu, store, clock=clock)
    other_worker = SegmentResolver(klevu, store, clock=clock)
    store.before_first_claim = lambda: other_worker.resolve(None, MAYA_XID, browser_id=CID)

    resolved = ours.resolve(None, MAYA_XID, browser_id=CID)

    assert resolved == Resolution("session-0001", ("seg_outdoor",), 60, "cache")
    assert len(klevu.calls) == 1


@pytest.mark.parametrize(
    ("first_write", "session_cookie", "browser_id"),
    [("klevu:visitor:", None, CID), ("klevu:session:", "session-0001", None)],
)
def test_a_worker_reading_between_the_call_s_writes_finds_the_segments_too(
    klevu, clock, first_write, session_cookie, browser_id
):
    # The shape of a two-process race: the other worker saw the new session before its
    # segments were stored, claimed a different key, and called Klevu a second time.
    store = RacingStore(SimpleCache())
    ours = SegmentResolver(klevu, store, clock=clock)
    other_worker = SegmentResolver(klevu, store, clock=clock)
    seen = []
    store.after_first_set = (
        first_write,
        lambda: seen.append(other_worker.resolve(session_cookie, MAYA_XID, browser_id=browser_id)),
    )

    ours.resolve(None, MAYA_XID, browser_id=CID)

    assert len(klevu.calls) == 1
    assert [(r.session_id, r.segments, r.source) for r in seen] == [
        ("session-0001", ("seg_outdoor",), "cache")
    ]


def test_a_claim_left_by_a_dead_worker_is_taken_over(resolver, klevu, clock):
    resolver.store.add("klevu:flight:session:session-from-cookie", clock() - 6)

    resolved = resolver.resolve("session-from-cookie", None)

    assert resolved.session_id == "session-0001"
    assert klevu.calls == [("session", "session-from-cookie")]


def test_a_live_claim_elsewhere_is_waited_for_not_duplicated(klevu, clock):
    resolver = resolver_for(klevu, clock, deadline=0.2)
    resolver.store.add("klevu:flight:session:session-from-cookie", clock())

    assert resolver.resolve("session-from-cookie", None) == Resolution(
        "session-from-cookie", (), 0, "none"
    )  # the id it had, kept for continuity
    assert klevu.calls == []


# -- the blueprint ----------------------------------------------------------------------------
class BrokenStore:
    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise redis.ConnectionError("cache server down")

        return fail


def glue_app(klevu) -> Flask:
    app = Flask(__name__)
    app.config.update(
        KLAVIYO_COMPANY_ID=COMPANY,
        CONSENT_REQUIRED=True,
        CACHE_TYPE="SimpleCache",
        SECRET_KEY="test",
        KLEVU_PAGE_BUDGET_MS=800,
    )
    cache.init_app(app)
    app.extensions[CLIENT] = klevu
    segments.init_app(app)
    app.register_blueprint(segments.bp)

    @app.post("/forget")
    def forget():
        forget_segments(current_visitor())
        return "forgotten"

    @app.get("/identify-midway")
    def identify_midway():
        before = current_segments(current_visitor())
        g.identity = replace(current_identity(), exchange_id=OLIVER_XID)
        after = current_segments(current_visitor())
        return {
            "before": before.session_id,
            "after": after.session_id,
            "segments": list(after.segments),
        }

    return app


def visitor(app, exchange_id: str | None = None, consent: str | None = "granted"):
    client = app.test_client()
    if exchange_id:
        client.set_cookie(KLA_ID_COOKIE, encode_kla_id(exchange_id, CID))
    if consent:
        client.set_cookie("shop_consent", consent)
    return client


@pytest.fixture
def wall_klevu():
    return FakeKlevu(time.time)


def test_the_endpoint_shows_segments_and_keeps_the_session_in_a_first_party_cookie(wall_klevu):
    browser = visitor(glue_app(wall_klevu), MAYA_XID)

    first = browser.get("/klevu/segments")
    again = browser.get("/klevu/segments")

    assert first.json == {
        "segments": ["seg_outdoor"],
        "seconds_left": 60,
        "source": "klevu",
        "session": True,
    }
    assert first.headers["Cache-Control"] == "no-store"
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=session-0001;")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert again.json["source"] == "cache"
    assert wall_klevu.calls == [("connector", None, MAYA_XID)]


def test_a_returning_visitor_s_segments_then_come_from_their_signed_cookie(wall_klevu):
    """Once step 1 has a fresh answer from the cache, the browser keeps it, as Klevu's own
    JavaScript does: the next pages need neither Klevu nor the cache server."""
    app = glue_app(wall_klevu)
    browser = visitor(app, MAYA_XID)
    browser.get("/klevu/segments")

    cached = browser.get("/klevu/segments")
    kept = cached.headers["Set-Cookie"]
    segment_resolver(app).store = BrokenStore()
    from_cookie = browser.get("/klevu/segments")

    assert kept.startswith(f"{segments_cookie.COOKIE}=")
    assert "HttpOnly" in kept and "SameSite=Lax" in kept
    expires = parsedate_to_datetime(kept.split("Expires=")[1].split(";")[0]).timestamp()
    assert 0 < expires - time.time() <= 60
    assert from_cookie.json == {
        "segments": ["seg_outdoor"],
        "seconds_left": cached.json["seconds_left"],
        "source": "cookie",
        "session": True,
    }
    assert "Set-Cookie" not in from_cookie.headers
    assert wall_klevu.calls == [("connector", None, MAYA_XID)]


@pytest.mark.parametrize("change", ["other persona", "tampered", "junk", "other session"])
def test_a_kept_answer_that_is_not_this_visitor_s_is_not_used(wall_klevu, change):
    app = glue_app(wall_klevu)
    browser = visitor(app, MAYA_XID)
    browser.get("/klevu/segments")
    browser.get("/klevu/segments")  # now the browser keeps Maya's answer
    value = browser.get_cookie(segments_cookie.COOKIE).value
    if change == "other persona":
        browser.set_cookie(KLA_ID_COOKIE, encode_kla_id(OLIVER_XID, CID))
    elif change == "tampered":
        browser.set_cookie(
            segments_cookie.COOKIE, value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
        )
    elif change == "junk":
        browser.set_cookie(segments_cookie.COOKIE, "not%20a cookie\x00" * 100)
    else:
        browser.set_cookie(SESSION_COOKIE, "session-9999")

    answer = browser.get("/klevu/segments")

    assert answer.status_code == 200 and answer.json["source"] != "cookie"
    expected = ["seg_vip", "seg_style"] if change == "other persona" else ["seg_outdoor"]
    assert answer.json["segments"] == expected


def test_forget_expires_the_kept_answer_in_the_same_response(wall_klevu):
    browser = visitor(glue_app(wall_klevu), MAYA_XID)
    browser.get("/klevu/segments")
    browser.get("/klevu/segments")
    assert browser.get_cookie(segments_cookie.COOKIE) is not None

    forgotten = browser.post("/forget")

    assert f"{segments_cookie.COOKIE}=;" in forgotten.headers["Set-Cookie"]
    assert browser.get_cookie(segments_cookie.COOKIE) is None
    assert browser.get("/klevu/segments").json["source"] == "klevu"


def test_without_consent_the_exchange_id_never_reaches_klevu(wall_klevu):
    browser = visitor(glue_app(wall_klevu), MAYA_XID, consent=None)

    assert browser.get("/klevu/segments").json["segments"] == []
    assert wall_klevu.calls == [("session", None)]


def test_a_cache_outage_leaves_the_page_anonymous_not_broken(wall_klevu, caplog):
    app = glue_app(wall_klevu)
    segment_resolver(app).store = BrokenStore()

    with caplog.at_level("ERROR"):
        answer = visitor(app, MAYA_XID).get("/klevu/segments")

    assert answer.status_code == 200
    assert answer.json == {"segments": [], "seconds_left": 0, "source": "none", "session": False}
    assert "segments unavailable" in caplog.text


def test_forget_segments_makes_the_next_page_ask_klevu_again(wall_klevu):
    browser = visitor(glue_app(wall_klevu), MAYA_XID)
    browser.get("/klevu/segments")

    assert browser.post("/forget").status_code == 200
    assert browser.get("/klevu/segments").json["source"] == "klevu"
    assert wall_klevu.count("connector") == 2


def test_an_identity_change_mid_request_is_resolved_again_in_the_same_session(wall_klevu):
    answer = visitor(glue_app(wall_klevu), MAYA_XID).get("/identify-midway").json

    assert answer == {
        "before": "session-0001",
        "after": "session-0001",
        "segments": ["seg_vip", "seg_style"],
    }
    assert wall_klevu.calls == [
        ("connector", None, MAYA_XID),
        ("connector", "session-0001", OLIVER_XID),
    ]


def test_a_browser_without_the_cookie_is_served_from_the_worker_while_its_answer_is_fresh(
    resolver, klevu, clock
):
    """Its first pages, or a refused cookie: the answer read fresh from the cache is kept in
    the worker until it runs out, not asked of the cache on every page."""
    sid = resolver.resolve(None, MAYA_XID).session_id
    read = resolver.resolve(sid, MAYA_XID)
    cache = resolver.store
    resolver.store = BrokenStore()

    kept = resolver.resolve(sid, MAYA_XID)
    with pytest.raises(redis.ConnectionError):  # another exchange id is not served from it
        resolver.resolve(sid, OLIVER_XID)
    clock.advance(61)  # its segments ran out: the cache is asked again
    with pytest.raises(redis.ConnectionError):
        resolver.resolve(sid, MAYA_XID)

    assert read.source == kept.source == "cache" and kept.segments == read.segments
    resolver.store = cache
    resolver.resolve(sid, MAYA_XID)
    resolver.forget(sid)  # "forget me": the worker's copy goes too
    before = klevu.count("connector")
    assert resolver.resolve(sid, MAYA_XID).source == "klevu"
    assert klevu.count("connector") == before + 1

"""Klevu's config and search answers, kept between pages (steps 2 and 3).

Why: both answers are the same for every visitor with the same segments on the same page (the
config is a CDN object keyed by its query, klevu-wire-format.md §2; a search answer depends only
on its body, §3), and asking again on every page view made a banner page ten times slower than
a plain one, and as slow as Klevu on a bad day.

Promises (the keys and settings are in docs/operations.md, "Klevu answers"):

* fresh for Klevu's ``max-age``, else ``KLEVU_CONFIG_TTL`` / ``KLEVU_SEARCH_TTL`` (0: off);
* past freshness, the stale answer at once and one background refresh per key across workers;
* while Klevu fails, is slow or has its breaker open, answers up to ``KLEVU_STALE_LIMIT`` old;
* on a miss, one call per key across workers (``single_flight.py``); a call that outlives the
  page's budget still stores its answer for the next page;
* a fresh answer is also kept in the worker (``LOCAL_ENTRIES``), so a warm page neither asks
  Redis nor unpickles; with a breaker open, a missing answer is read from the shared cache at
  most once a second (``OPEN_READ_SECONDS``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .. import metrics
from ..client import BreakerOpen, KlevuClient, KlevuError, Reply
from ..memo import Memo
from ..single_flight import SingleFlight

log = logging.getLogger(__name__)

REFRESH_WORKERS = 4
LOCAL_ENTRIES = 512
OPEN_READ_SECONDS = 1.0  # see ``_held``
COUNTS = ("hit", "miss", "stale", "refreshed", "failed")
# A Klevu call, given when the page that waits for it stops waiting (None: nobody waits).
Call = Callable[[float | None], Reply]


class NotFresh(Exception):
    """``fresh_only`` was asked and the cache has no fresh answer: Klevu would be needed."""


class LateAnswer(KlevuError):
    """Another worker's call for the same answer did not finish within the page's budget."""


@dataclass(frozen=True)
class Answer:
    """An answer and where it came from: ``cache`` (fresh), ``fresh`` (asked Klevu just now),
    or ``stale`` (past freshness: served while it refreshes, or because Klevu fails).
    ``version`` names this stored answer, so work derived from it can be kept per answer."""

    body: dict
    source: str
    version: str = ""
    fresh_until: float = 0.0  # wall clock; 0: not a fresh cached answer


def _entry(value: object) -> dict | None:
    if not isinstance(value, dict):
        return None
    ok = (
        isinstance(value.get("body"), dict)
        and isinstance(value.get("v"), str)
        and isinstance(value.get("fresh_until"), float)
        and isinstance(value.get("usable_until"), float)
    )
    return value if ok else None


def served_counts(sources: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """What ``KlevuAnswers.count`` counts for answers served with ``fresh_only`` (service →
    "cache" or "stale"): made once per warm page, counted on each of its views."""
    return tuple(
        (service, "hit" if source == "cache" else "stale") for service, source in sources.items()
    )


def refused_counts(service: str) -> tuple[tuple[str, str], ...]:
    """What ``KlevuAnswers.count`` counts for a page view that ``service``'s open breaker
    refused without being asked again (what ``fresh_only`` counts when it raises
    ``BreakerOpen``)."""
    return ((service, "failed"),)


class KlevuAnswers:
    """The config and search calls of a page, through a shared cache.

    ``store`` is a cachelib-style backend (``get/set/add/delete``), usable from pool threads
    without an app context; ``clock`` is wall time because entries are compared on every host.
    """

    def __init__(
        self,
        client: KlevuClient,
        store,
        *,
        config_ttl: int = 300,
        search_ttl: int = 60,
        stale_limit: int = 3600,
        clock: Callable[[], float] = time.time,
        metrics: bool = False,
    ):
        self.client = client
        self.metrics = metrics  # also count in Prometheus (``klevu/metrics.py``)
        self.store = store
        self.ttls = {"config": config_ttl, "search": search_ttl}
        self.stale_limit = stale_limit
        self.clock = clock
        self._counts = {service: Counter[str]() for service in self.ttls}
        self._counts_lock = threading.Lock()
        self._refreshes = ThreadPoolExecutor(REFRESH_WORKERS, thread_name_prefix="answers")
        self._refresh_slots = threading.BoundedSemaphore(REFRESH_WORKERS)
        self._local: Memo[str, dict] = Memo(LOCAL_ENTRIES)
        self._open_reads: Memo[str, tuple[float, dict | None]] = Memo(LOCAL_ENTRIES)
        self._flights = SingleFlight(store, clock=clock)

    # -- the two calls ----------------------------------------------------------------------
    def config(
        self, recs_key: str, params: dict[str, str], due: float, *, fresh_only: bool = False
    ) -> Answer:
        """``fresh_only``: a fresh cached answer, a stale one while the service's breaker is
        open, ``BreakerOpen`` when there is none, else ``NotFresh``; never a call or a wait
        (not counted: the caller counts what it served with ``count``)."""
        request = json.dumps([recs_key, sorted(params.items())])  # every parameter counts
        return self._get(
            "config",
            request,
            lambda by: self.client.recs_config(recs_key, params, due=by),
            due,
            fresh_only,
        )

    def search(
        self, base_path: str, payload: dict, due: float, *, fresh_only: bool = False
    ) -> Answer:
        url = self.client.search_url(base_path)
        body = self.client.search_body(payload)
        return self._get(
            "search",
            f"{url}\n{body}",
            lambda by: self.client.search(url, body, due=by),
            due,
            fresh_only,
        )

    def count(self, counted: Sequence[tuple[str, str]]) -> None:
        """Add one to each (service, result), under one lock: what a page took with
        ``fresh_only`` (``served_counts``), and what a view of a page whose placement an open
        breaker refused counts again without asking (``refused_counts``)."""
        with self._counts_lock:
            for service, name in counted:
                self._counts[service][name] += 1
        if self.metrics:
            for service, name in counted:
                metrics.answer(service, name)

    def stats(self) -> dict:
        """Per service since start (this process): hits, misses, stale answers served,
        background refreshes done, calls that failed."""
        with self._counts_lock:
            return {
                service: {name: counts[name] for name in COUNTS}
                for service, counts in self._counts.items()
            }

    # -- the rules --------------------------------------------------------------------------
    def _count(self, service: str, name: str) -> None:
        self.count(((service, name),))

    def _get(
        self,
        service: str,
        request: str,
        call: Call,
        due: float,
        fresh_only: bool = False,
    ) -> Answer:
        if fresh_only:
            return self._fresh(service, request)
        if not self.ttls[service]:
            self._count(service, "miss")
            return Answer(self._called(service, call, due).body, "fresh", uuid.uuid4().hex)
        key = self._key(service, request)
        entry = self._read(key)
        now = self.clock()
        if entry and entry["fresh_until"] > now:
            self._count(service, "hit")
            return Answer(entry["body"], "cache", entry["v"])
        if entry and entry["usable_until"] > now:
            self._count(service, "stale")
            self._refresh(service, key, call)
            return Answer(entry["body"], "stale", entry["v"])
        self._count(service, "miss")
        return self._fetch(service, key, call, due)

    @staticmethod
    def _key(service: str, request: str) -> str:
        return f"klevu:answer:{service}:{hashlib.sha256(request.encode()).hexdigest()[:40]}"

    def _fresh(self, service: str, request: str) -> Answer:
        key = self._key(service, request)
        entry = self._in_process(key) if self.ttls[service] else None
        if entry is not None:  # a warm page: no cache round trip, not even the breaker's
            return Answer(entry["body"], "cache", entry["v"], entry["fresh_until"])
        breaker_open = self.client.breakers[service].is_open()
        if self.ttls[service]:
            entry = self._held(key) if breaker_open else self._read(key)
        now = self.clock()
        if entry is not None and entry["fresh_until"] > now:
            return Answer(entry["body"], "cache", entry["v"], entry["fresh_until"])
        if not breaker_open:
            raise NotFresh(service)
        if entry is not None and entry["usable_until"] > now:
            return Answer(entry["body"], "stale", entry["v"])
        self._count(service, "failed")
        raise BreakerOpen(f"{service}: circuit open", service=service)

    def _in_process(self, key: str) -> dict | None:
        """This worker's copy of a fresh entry (``LOCAL_ENTRIES``), if it has one."""
        local = self._local.get(key)
        return local if local is not None and local["fresh_until"] > self.clock() else None

    def _held(self, key: str) -> dict | None:
        """What the shared cache holds for ``key`` while its service's breaker is open, read at
        most once per ``OPEN_READ_SECONDS`` in this worker. While the breaker is open no call
        changes it (bar another worker's probe, seen that much later), and every page asks:
        a cache round trip per page made an open breaker's page dearer than a plain one."""
        held = self._open_reads.get(key)
        if held is not None and time.monotonic() - held[0] < OPEN_READ_SECONDS:
            return held[1]
        entry = self._read(key)
        self._open_reads.put(key, (time.monotonic(), entry))
        return entry

    def _read(self, key: str) -> dict | None:
        local = self._in_process(key)
        if local is not None:
            return local
        try:
            entry = _entry(self.store.get(key))
        except Exception:  # a cache server that fails must not fail the banner
            log.warning("answers cache unreadable for %s", key, exc_info=True)
            return None
        if entry is not None and entry["fresh_until"] > self.clock():
            self._local.put(key, entry)
        return entry

    def _called(self, service: str, call: Call, due: float | None) -> Reply:
        try:
            return call(due)
        except KlevuError:
            self._count(service, "failed")
            raise

    def _keep(self, service: str, key: str, reply: Reply) -> dict:
        now = self.clock()
        fresh_for = self.ttls[service] if reply.max_age is None else reply.max_age
        usable_for = max(fresh_for, self.stale_limit)
        entry = {
            "body": reply.body,
            "v": uuid.uuid4().hex,
            "fresh_until": float(now + fresh_for),
            "usable_until": float(now + usable_for),
        }
        if fresh_for > 0:
            self._local.put(key, entry)
        try:
            self.store.set(key, entry, timeout=max(1, usable_for))
        except Exception:
            log.warning("answers cache unwritable for %s", key, exc_info=True)
        return entry

    def _fetch(self, service: str, key: str, call: Call, due: float) -> Answer:
        """A miss: make the one call, or wait for the worker that makes it."""
        breaker = self.client.breakers[service]
        if breaker.is_open():  # no call would go out: do not even claim one
            self._count(service, "failed")
            raise BreakerOpen(f"{service}: circuit open", service=service)
        had_time = time.monotonic() < due

        def settled() -> dict | None:
            if breaker.is_open():  # the call we wait on is probably hung: stop waiting
                raise BreakerOpen(f"{service}: circuit open", service=service)
            entry = self._read(key)
            return entry if entry and entry["usable_until"] > self.clock() else None

        joined = self._flights.join(key, settled, due)
        if joined.value is not None:
            return Answer(joined.value["body"], "cache", joined.value["v"])
        if joined.lead:
            try:
                entry = self._keep(service, key, self._called(service, call, due))
                return Answer(entry["body"], "fresh", entry["v"])
            finally:
                self._flights.release(key)
        if joined.failed:
            raise KlevuError(f"{service}: the shared call failed")
        if not had_time:  # the page's budget went on earlier steps
            raise LateAnswer(f"{service}: no time left in the page's budget")
        # A page that timed out waiting on the service is a timeout for its breaker too: with
        # one call per key across workers, waiters are most of the pages a hung service holds.
        breaker.failed()
        raise LateAnswer(f"{service}: another worker's call missed the page's budget")

    def _refresh(self, service: str, key: str, call: Call) -> None:
        """One background refresh per key across workers; a busy pool skips it (the next
        page that sees the stale answer tries again)."""
        if not self._refresh_slots.acquire(blocking=False):
            return
        claimed = self._flights.claim(key)
        entry = self._read(key) if claimed else None
        if not claimed or (entry and entry["fresh_until"] > self.clock()):
            # Another worker refreshes it, or did so between our look and our claim.
            if claimed:
                self._flights.release(key)
            self._refresh_slots.release()
            return

        def refresh() -> None:
            try:
                self._keep(service, key, self._called(service, call, None))
                self._count(service, "refreshed")
            except BreakerOpen:
                pass  # the breaker logged when it opened; the stale answer serves on
            except KlevuError as exc:
                log.warning("refresh of a stale %s answer failed: %s", service, exc)
            except Exception:
                log.exception("refresh of a stale %s answer failed unexpectedly", service)
            finally:
                self._flights.release(key)
                self._refresh_slots.release()

        self._refreshes.submit(refresh)

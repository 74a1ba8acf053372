"""A circuit breaker per Klevu service, so a sick service costs pages nothing.

Without one, every page keeps sending calls to a service that is down or hung and waits for
each until its budget runs out. After ``failures`` failed calls in a row (transport errors,
timeouts, 429 and 5xx answers) the breaker opens: calls fail at once with ``BreakerOpen`` for
``cooldown`` seconds, and pages fall back to stale answers or no banner without waiting. Then
one probe call at a time is let through; its success closes the breaker, its failure opens it
for another cool-down. Opening and closing are logged once each, not once per page.

A slow call is a failure (resilience4j's slow-call rule), counted the moment its page stops
waiting for it, not when its socket times out: a call registered with its page's deadline
(``started``) that is still in flight when that deadline passes (``overdue``, run by the page
that gives up, and by anyone asking the breaker) counts once, and its late end counts no more.
Otherwise a hung service held every page for the whole budget until the first calls reached
their 2 s read timeout. Failures in a row are also counted in the shared cache, so that with
several workers the first ``failures`` waiting pages open it, whichever worker served them.

State is per process, and an opening is also written to the shared cache (``shared``: the
Flask-Caching backend, Redis with ``CACHE_REDIS_URL``) for the cool-down and a probe's time,
renewed while probes fail: a worker that only ever waits on another worker's call for the same
answer (single flight) makes no calls of its own to fail, yet must stop waiting on a service
that is down as well. Probes are per process; while one is in flight, nobody waits on it.
A worker that has seen another's opening takes it as given for ``ELSEWHERE_SECONDS``: while a
breaker is open, every page asks, and a cache round trip per page would make an open breaker's
page dearer than a plain one. A closing elsewhere is therefore seen up to that much later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
SHARE_GRACE = 5  # seconds a shared opening outlives the cool-down: a probe's own timeout
ELSEWHERE_SECONDS = 1.0
FAILURES_WINDOW = 60  # seconds the shared count of failures in a row lasts after its first


class CircuitBreaker:
    def __init__(
        self,
        service: str,
        *,
        failures: int = 3,
        cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        shared=None,
    ):
        self.service = service
        self.shared = shared
        self._shared_key = f"klevu:breaker:{service}"
        self._failures_key = f"klevu:breaker-failures:{service}"
        self.threshold = failures
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0  # in a row
        self._opened_at = 0.0
        self._probing = False
        self._opened = 0  # times opened since start, for /healthz
        self._refused = 0  # calls refused since start, for /healthz
        self._elsewhere_until = 0.0  # another worker's opening, taken as given until then
        self._in_flight: dict[object, float] = {}  # a page's call → that page's deadline
        self._counted: set[object] = set()  # calls counted as slow, still in flight

    # -- calls ------------------------------------------------------------------------------
    def started(self, due: float | None = None) -> object:
        """A call goes out; ``due`` (on this breaker's clock): when its page stops waiting
        for it (None: nobody waits, e.g. a background refresh). Give the result to ``ended``."""
        call = object()
        if due is not None:
            with self._lock:
                self._in_flight[call] = due
        return call

    def ended(self, call: object, ok: bool) -> None:
        """The call answered (``ok``: the service is well) or failed; a call already counted
        as slow counts no more, so a late success does not hide a hung service."""
        with self._lock:
            self._in_flight.pop(call, None)
            if call in self._counted:
                self._counted.discard(call)
                return
        if ok:
            self.succeeded()
        else:
            self.failed()

    def overdue(self, now: float | None = None) -> None:
        """Count every call still in flight past its page's deadline as one failure: its page
        has stopped waiting (``now``: that page's deadline, when it is the one asking)."""
        if not self._in_flight:
            return
        now = max(self.clock(), now or 0.0)
        with self._lock:
            late = [call for call, due in self._in_flight.items() if due <= now]
            for call in late:
                del self._in_flight[call]
                self._counted.add(call)
        for _ in late:
            self.failed()

    # -- state ------------------------------------------------------------------------------
    def allow(self) -> bool:
        """May a call go out now? In half-open state only the one probe may. Refusals are
        counted (``/healthz``), not logged: an open breaker refuses once per page."""
        self.overdue()
        if self._allow():
            return True
        with self._lock:
            self._refused += 1
        return False

    def _allow(self) -> bool:
        with self._lock:
            closed = self._state == CLOSED
            if not closed:
                cooling = self._state == OPEN and self.clock() - self._opened_at < self.cooldown
                if cooling or self._probing:
                    return False
                self._state, self._probing = HALF_OPEN, True
                return True
        return not self.opened_elsewhere()

    def is_open(self) -> bool:
        """Should nobody wait on this service now? Open here, its one probe in flight, or
        opened by another worker."""
        self.overdue()
        with self._lock:
            probing = self._probing
        state = self.state
        return (
            state == OPEN
            or (state == HALF_OPEN and probing)
            or (state == CLOSED and self.opened_elsewhere())
        )

    def opened_elsewhere(self) -> bool:
        if self.shared is None:
            return False
        now = self.clock()
        if now < self._elsewhere_until:
            return True
        try:
            opened = self.shared.get(self._shared_key) is not None
        except Exception:  # no shared cache: this worker's own state decides
            return False
        if opened:
            self._elsewhere_until = now + ELSEWHERE_SECONDS
        return opened

    def _share(self, opened: bool) -> None:
        if self.shared is None:
            return
        try:
            if opened:  # until after this worker's next probe has had time to fail
                self.shared.set(
                    self._shared_key, 1, timeout=max(1, int(self.cooldown)) + SHARE_GRACE
                )
            else:
                self.shared.delete(self._shared_key)
        except Exception:
            log.warning("klevu %s: breaker state not shared (cache unavailable)", self.service)

    def _shared_failures(self) -> int:
        """This failure added to the count every worker shares; 0 without a shared cache."""
        if self.shared is None:
            return 0
        try:
            self.shared.add(self._failures_key, 0, timeout=FAILURES_WINDOW)
            return int(self.shared.inc(self._failures_key) or 0)
        except Exception:  # no shared cache: this worker's own count decides
            return 0

    def succeeded(self) -> None:
        with self._lock:
            was = self._state
            self._state, self._failures, self._probing = CLOSED, 0, False
            self._elsewhere_until = 0.0  # an answer here: the service is back
        if self.shared is not None:
            try:  # a success ends the failures in a row of every worker
                self.shared.delete(self._failures_key)
            except Exception:
                log.warning("klevu %s: failure count not shared (cache unavailable)", self.service)
        if was != CLOSED:
            self._share(False)
            log.info("klevu %s: circuit closed, the service answers again", self.service)

    def failed(self) -> None:
        shared = self._shared_failures()
        with self._lock:
            self._failures += 1
            probe_failed = self._state == HALF_OPEN
            in_a_row = max(self._failures, shared)
            opens = self._state == CLOSED and in_a_row >= self.threshold
            if probe_failed or opens:
                self._state, self._opened_at, self._probing = OPEN, self.clock(), False
            if opens:
                self._opened += 1
        if probe_failed or opens:
            self._share(True)
        if opens:
            log.warning(
                "klevu %s: circuit open after %d failures in a row; calls stop for "
                "%.0f s, pages use stale answers or no banner",
                self.service,
                in_a_row,
                self.cooldown,
            )

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self.clock() - self._opened_at >= self.cooldown:
                return HALF_OPEN
            return self._state

    def stats(self) -> dict:
        state = self.state
        elsewhere = state == CLOSED and self.opened_elsewhere()
        with self._lock:
            return {
                "state": OPEN if elsewhere else state,
                "opened_elsewhere": elsewhere,
                "failures_in_a_row": self._failures,
                "times_opened": self._opened,
                "refused": self._refused,
            }

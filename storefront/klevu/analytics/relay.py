"""Delivery of the analytics outbox to Klevu's collector: the only I/O the outbox does.

Klevu's own browser code posts each event alone and drops it on any HTTP error. The relay
sends batches of up to 50, keeps every event in the outbox until a 2xx confirms it, and waits
between failures, so a collector outage costs time, not events. One policy for every store
(SQLite or Redis Streams): what a failed send says about its events decides their fate
(docs/operations.md, "Failures", has the table):

* a 4xx about the batch: halved until the bad event stands alone; it alone is dead-lettered;
* an answer about the collector (wrong URL or access, 408, 429, 502-504, no answer): retried,
  the attempt refunded, so an outage dead-letters by age (``max_age``), never by attempts;
* 500 and other 5xx, a bug in ``send``: retried on the event's own jittered backoff, so a
  poison event drifts from its batch-mates, and dead-lettered after ``max_attempts``.

After any failure the whole relay pauses (exponential backoff with jitter, at least the
``Retry-After`` asked for) rather than hammer a down host. Attempts are counted when events
are claimed, so an event that kills the relay still reaches its limit. On SQLite one relay
per data directory works at a time (a ``flock``); on Redis every host's relay reads through one
consumer group. Either way what a dead relay had claimed is taken back by another.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..client import KlevuError

if TYPE_CHECKING:
    from .outbox import Pending, Store

log = logging.getLogger(__name__)

BATCH_SIZE = 50
NOT_ABOUT_THE_EVENTS = frozenset({401, 403, 404, 405, 408, 429, 502, 503, 504})
PRUNE_EVERY = 300.0  # seconds between sweeps of expired idempotency keys
DB_ERROR_PAUSE = 5.0  # seconds; the events are safe where they are

Send = Callable[[list[dict], list[str]], object]


def rejects_events(exc: Exception) -> bool:
    status = getattr(exc, "status", None)
    return status is not None and 400 <= status < 500 and status not in NOT_ABOUT_THE_EVENTS


def counts_against_events(exc: Exception) -> bool:
    if not isinstance(exc, KlevuError):
        return True
    return exc.status is not None and exc.status >= 500 and exc.status not in NOT_ABOUT_THE_EVENTS


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": a random delay in [ceiling/2, ceiling].

    Half of it is guaranteed, so retries really slow down; the random half spreads retries
    from several sources apart.
    """

    base: float = 0.5
    cap: float = 60.0

    def ceiling(self, failures: int) -> float:
        return min(self.cap, self.base * 2.0 ** min(max(failures, 1) - 1, 60))

    def delay(self, failures: int, rng: random.Random) -> float:
        ceiling = self.ceiling(failures)
        return rng.uniform(ceiling / 2, ceiling)


class Relay:
    """Moves due events from a ``Store`` (SQLite or Redis) to ``send``, one batch per ``run_once``.

    ``run_once`` never sleeps: it returns how long to wait, so tests drive it with a fake clock
    and ``run`` does the waiting (woken early by ``store.wake`` when this process puts events;
    other processes' events are found by polling every ``poll_interval``).
    """

    def __init__(
        self,
        store: Store,
        send: Send,
        *,
        batch_size: int = BATCH_SIZE,
        max_attempts: int = 20,
        max_age: float = 24 * 3600.0,
        backoff: Backoff = Backoff(0.5, 60.0),
        event_backoff: Backoff = Backoff(0.5, 600.0),
        max_retry_after: float = 3600.0,
        poll_interval: float = 0.5,
        lease_seconds: float = 60.0,
        linger: float = 0.05,
        rng: random.Random | None = None,
    ):
        self.store = store
        self.send = send
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.max_age = max_age
        self.backoff = backoff  # the relay's pause after any failure
        self.event_backoff = event_backoff  # an event's own wait after a counted attempt
        self.max_retry_after = max_retry_after
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds  # far longer than a send: lapses only if we died
        # Seconds to let more events arrive before sending a part batch: under load, batches
        # fill up (one POST per up to ``batch_size`` events) instead of one POST per put.
        self.linger = linger
        self.rng = rng or random.Random()  # noqa: S311 - retry jitter, not a secret
        self.failures = 0  # consecutive failed sends
        self.paused_until = 0.0
        self._prune_at = 0.0
        # Events the collector confirmed whose deletion has not been written yet (a database
        # error after the 2xx): deleted before anything else is claimed or taken back, so the
        # relay does not send again what it knows was delivered.
        self._delivered: list[Pending] = []

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set. Only the holder of the relay lock may call this."""
        self._ack_delivered()
        recovered = self.store.recover()
        if recovered:
            log.warning(
                "outbox: took back %d events a previous relay claimed but never "
                "confirmed; they will be sent again",
                recovered,
            )
        while not stop.is_set():
            try:
                delay = self.run_once()
            except self.store.failures as exc:
                log.error("outbox: database error, retrying in %.0f s: %s", DB_ERROR_PAUSE, exc)
                delay = DB_ERROR_PAUSE
            if delay > 0 and self.store.wake.wait(delay) and self.linger:
                self.store.wake.clear()
                stop.wait(self.linger)
            self.store.wake.clear()

    def run_once(self) -> float:
        """Deliver at most one batch; return the seconds to wait before calling again."""
        now = self.store.clock()
        self._ack_delivered()
        if now < self.paused_until:
            return self.paused_until - now
        if now >= self._prune_at:
            self.store.forget_seen(now - self.max_age)
            self._prune_at = now + PRUNE_EVERY
        batch = self.store.claim(
            self.batch_size,
            lease_seconds=self.lease_seconds,
            max_attempts=self.max_attempts,
            max_age=self.max_age,
        )
        if not batch:
            due = self.store.next_due()
            return (
                self.poll_interval if due is None else min(self.poll_interval, max(0.0, due - now))
            )
        if self._deliver(batch):
            return 0.0 if len(batch) >= self.batch_size else self.linger
        return max(0.0, self.paused_until - self.store.clock())

    def _deliver(self, batch: list[Pending]) -> bool:
        """Send a batch, halving it on rejection; False when a transient failure stopped it."""
        parts = [batch]
        while parts:
            part = parts.pop()
            try:
                self.send([row.payload for row in part], [row.event_id for row in part])
            except Exception as exc:  # any failure leaves the events queued
                if not isinstance(exc, KlevuError):
                    log.exception("outbox: send raised an unexpected error")
                if rejects_events(exc):
                    self._rejected(part, parts, exc)
                    continue
                self._failed(part, [row for rest in parts for row in rest], exc)
                return False
            self._delivered = part
            self._ack_delivered()
            self.failures = 0
        return True

    def _ack_delivered(self) -> None:
        if self._delivered:
            self.store.ack(self._delivered)
            self._delivered = []

    def _rejected(self, part: list[Pending], parts: list[list[Pending]], exc: Exception) -> None:
        if len(part) == 1:
            log.warning(
                "outbox: collector rejected event %s (%s); dead-lettered", part[0].event_id, exc
            )
            self.store.dead_letter(part, "rejected_4xx", str(exc))
            return
        half = len(part) // 2
        parts += [part[half:], part[:half]]  # first half is sent first

    def _failed(self, part: list[Pending], unsent: list[Pending], exc: Exception) -> None:
        self.failures += 1
        now = self.store.clock()
        retry_after = min(getattr(exc, "retry_after", None) or 0.0, self.max_retry_after)
        pause = max(self.backoff.delay(self.failures, self.rng), retry_after)
        self.paused_until = now + pause
        error = str(exc) or type(exc).__name__
        log.warning(
            "outbox: delivery of %d events failed (%s); pausing %.1f s", len(part), error, pause
        )
        self.store.note_error(error)
        if counts_against_events(exc):
            spent = [row for row in part if row.attempts >= self.max_attempts]
            retry = [row for row in part if row.attempts < self.max_attempts]
            self.store.dead_letter(spent, "dead_letter_attempts", error)
            self.store.release(
                retry,
                [
                    now + max(pause, self.event_backoff.delay(row.attempts, self.rng))
                    for row in retry
                ],
                error,
                refund=False,
            )
        else:
            unsent = part + unsent
        self.store.release(unsent, [now + pause] * len(unsent), error, refund=True)


class RelayLock:
    """A non-blocking ``flock`` on a file; the file holds the holder's pid for ``/healthz``.

    ``flock`` belongs to the open file, so two threads of one process exclude each other as
    well as two processes do, and the kernel releases it when the holder dies.
    """

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the file releases the lock


def lock_holder(path: str) -> int | None:
    """The pid relaying for ``path``'s directory, None when no relay holds the lock.

    Probes with a shared lock: while no relay runs, the probe holds the file for a few
    microseconds, and a standby trying that instant simply retries a second later. Returns 0
    in the instant between a holder taking the lock and writing its pid.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).strip()
        return int(text) if text.isdigit() else 0
    finally:
        os.close(fd)
    return None


class RelayRunner:
    """Keeps trying to become the data directory's relay, and relays while it is.

    ``start`` runs this in a daemon thread (the in-app relay, started by a worker's first
    request); ``run`` runs it in the foreground (``flask relay``). Both only ever deliver
    while holding the lock, so any number of them may exist.
    """

    def __init__(self, relay: Relay, *, retry: float = 1.0):
        self.relay = relay
        self.retry = retry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._exit_hook = False

    def start(self) -> None:
        """Start the thread once per process; cheap enough to call on every request.

        After a fork the parent's thread does not exist in the child (``is_alive`` is False),
        so a forked worker starts its own.
        """
        if self._thread is not None and self._thread.is_alive():
            return
        with self._starting:
            if self._stop.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self.run, name="outbox-relay", daemon=True)
            self._thread.start()
            if not self._exit_hook:
                atexit.register(self.stop)  # finish the batch in flight, release the lock
                self._exit_hook = True

    def stop(self, timeout: float = 5.0) -> None:
        """Safe from a signal handler: only joins when called from another thread."""
        self._stop.set()
        self.relay.store.wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def run(self) -> None:
        lock = RelayLock(self.relay.store.lock_path)
        standing_by = False
        while not self._stop.is_set():
            if not lock.acquire():
                if not standing_by:
                    log.info(
                        "outbox: relay lock held by pid %s; standing by", lock_holder(lock.path)
                    )
                    standing_by = True
                self._stop.wait(self.retry)
                continue
            standing_by = False
            log.info("outbox: pid %d is the relay for %s", os.getpid(), self.relay.store.path)
            try:
                self.relay.run(self._stop)
            except Exception:  # a relay bug must not end delivery for good
                log.exception("outbox: relay crashed; retrying in %.0f s", self.retry)
            finally:
                lock.release()
            self._stop.wait(self.retry)

"""The analytics outbox: an accepted event is on disk before the route answers.

Klevu's browser code loses an event whenever the collector hiccups (docs/klevu-wire-format.md
§5). Here the beacon route writes the event to SQLite in ``STOREFRONT_DATA_DIR`` and answers
202 only after the commit; the relay (``relay.py``) delivers it later. The queue is the only
copy of an event until the collector confirms it, so an outage, a crashed worker or a restart
costs time, never events. Delivery is at least once: a relay killed between the collector's 2xx
and its own bookkeeping sends that batch again, and the simulator counts such duplicates.

Durability: WAL with ``synchronous=FULL``. WAL alone survives kill -9 of the process, but on a
power loss it may roll back the last commits, which are events the route already
acknowledged; FULL syncs the WAL on every commit (docs/operations.md has the cost).

Many writers: every worker process and thread writes the same file. Each thread keeps its own
connection; writes take the database lock up front (``BEGIN IMMEDIATE``) and wait for it up to
``BUSY_TIMEOUT``, so concurrent puts queue instead of failing with "database is locked".
Within a process, concurrent puts share one transaction and one fsync (group commit), which
is what lets the queue take thousands of events a second on an ordinary disk.

Idempotency: an event id is remembered (table ``seen``) for ``max_age`` after it was accepted,
whether the event is still queued, delivered or dead, so a retried beacon or a double click is
one event. ``max_age`` is also the age at which an undelivered event is dead-lettered.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

BUSY_TIMEOUT = 5.0  # seconds a write waits for another writer before giving up
SETUP_LOCK = "outbox.setup.lock"  # ``flock``ed while a process creates or upgrades the schema
DROP_REASONS = (
    "full",
    "client_share",
    "dead_letter_attempts",
    "dead_letter_age",
    "rejected_4xx",
)
CLIENT_SHARE_FLOOR = 100  # events any one client may queue, however small the queue
SEEN_PER_EVENT = 10  # ids remembered, per event the queue holds (``max_seen``)
DEAD_LETTER_DAYS = 7.0  # dead letters are kept this long...
MAX_DEAD_LETTERS = 10_000  # ...and at most this many, the newest

SCHEMA = (
    # seq orders delivery; next_attempt_at doubles as the lease expiry while a relay holds a
    # row, so a row whose relay died becomes due again by itself.
    """CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        lease_until REAL,
        last_error TEXT)""",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_at)",
    # Tiny (a batch at most): keeps /healthz's in-flight count and recovery off the payloads.
    """CREATE INDEX IF NOT EXISTS outbox_leased ON outbox (lease_until)
        WHERE lease_until IS NOT NULL""",
    # Who queued each event (``client``, added by ``_upgrade``): a client's share is counted
    # on this index.
    "CREATE INDEX IF NOT EXISTS outbox_client ON outbox (client)",
    """CREATE TABLE IF NOT EXISTS seen (
        event_id TEXT PRIMARY KEY, accepted_at REAL NOT NULL) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS seen_age ON seen (accepted_at)",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        event_id TEXT PRIMARY KEY,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL,
        reason TEXT NOT NULL,
        last_error TEXT,
        dead_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS dead_letters_age ON dead_letters (dead_at)",
    """CREATE TABLE IF NOT EXISTS counters (
        name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS relay_status (
        name TEXT PRIMARY KEY, value TEXT, at REAL NOT NULL) WITHOUT ROWID""",
)


class OutboxError(Exception):
    """The events were not accepted; the route should answer 503 so the client retries."""


class OutboxFull(OutboxError):
    """The queue holds ``max_events`` undelivered events (the collector is far behind)."""


class ClientShareFull(OutboxFull):
    """This client's queued events fill its share of the queue; others' still fit."""


@dataclass(frozen=True)
class Pending:
    """A queued event as claimed by the relay; ``attempts`` includes the current one."""

    seq: int | str  # SQLite's row, or a Redis stream entry (``outbox_redis.py``)
    event_id: str
    payload: dict
    created_at: float
    attempts: int
    last_error: str | None


def expired(row: Pending, now: float, *, max_attempts: int, max_age: float) -> str | None:
    """Why a due event is dead-lettered instead of sent (its drop reason), or None: both
    backends' ``claim`` ask this, so the rule is one."""
    if now - row.created_at >= max_age:
        return "dead_letter_age"
    return "dead_letter_attempts" if row.attempts >= max_attempts else None


class Store(Protocol):
    """What the beacon, the relay, ``/healthz`` and the inspector use of a queue: the SQLite
    ``OutboxStore`` below, or ``outbox_redis.RedisOutbox`` shared by every host."""

    path: str  # where the events are, for people
    lock_path: str  # this host's relay lock (``relay.RelayLock``)
    max_events: int
    clock: Callable[[], float]
    wake: threading.Event
    failures: tuple[type[Exception], ...]  # what the relay waits out instead of crashing

    def put(self, items: Iterable[tuple[str, dict]], *, client: str = "") -> int: ...
    def claim(
        self, limit: int, *, lease_seconds: float, max_attempts: int, max_age: float
    ) -> list[Pending]: ...
    def ack(self, rows: Sequence[Pending]) -> None: ...
    def release(
        self, rows: Sequence[Pending], retry_at: Sequence[float], error: str, *, refund: bool
    ) -> None: ...
    def dead_letter(self, rows: Sequence[Pending], reason: str, error: str) -> None: ...
    def recover(self) -> int: ...
    def next_due(self) -> float | None: ...
    def forget_seen(self, before: float) -> None: ...
    def note_error(self, message: str) -> None: ...
    def whereabouts(self, event_ids: Sequence[str]) -> dict[str, dict]: ...
    def stats(self) -> dict: ...


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


@dataclass
class _Put:
    """One caller's events waiting for a group commit, and what became of them."""

    rows: dict[str, str]
    client: str = ""
    fresh: int = 0
    error: OutboxError | None = None
    done: bool = False


class GroupCommit:
    """Puts from concurrent threads wait their turn together, and the first to get it commits
    all of them with ``commit``: one fsync (SQLite) or one script call (Redis) for the group.
    Each put still returns only once its own events are stored."""

    def __init__(
        self,
        commit: Callable[[list[_Put]], None],
        wake: threading.Event,
        failures: tuple[type[Exception], ...],
    ):
        self.commit = commit
        self.wake = wake
        self.failures = failures  # errors of the store: they fail every put of the group
        self._queue: list[_Put] = []  # puts waiting for the next group commit
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()  # held by the thread committing a group

    def put(self, items: Iterable[tuple[str, dict]], *, client: str = "") -> int:
        """A store's ``put``: the events of one put, committed with others; how many were new
        (``wake`` is set when any was)."""
        rows: dict[str, str] = {}
        for event_id, payload in items:
            if not isinstance(event_id, str) or not event_id:
                raise ValueError(f"event id must be a non-empty string, got {event_id!r}")
            rows.setdefault(event_id, json.dumps(payload, separators=(",", ":")))
        if not rows:
            return 0
        request = _Put(rows, client)
        self._grouped(request)
        if request.error is not None:
            raise request.error
        if request.fresh:
            self.wake.set()
        return request.fresh

    def _grouped(self, request: _Put) -> None:
        with self._queue_lock:
            self._queue.append(request)
        with self._commit_lock:
            if not request.done:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                try:
                    self.commit(group)
                except self.failures as exc:
                    for each in group:
                        each.fresh, each.error = 0, OutboxError(f"outbox unavailable: {exc}")
                finally:
                    for each in group:
                        each.done = True


class OutboxStore:
    """The SQLite queue in one data directory: ``outbox.sqlite3``, the ``relay.lock``, and
    the ``outbox.setup.lock`` that processes opening it at once take in turn."""

    failures: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(
        self,
        data_dir: str,
        *,
        max_events: int = 100_000,
        client_share: float = 0.05,
        clock: Callable[[], float] = time.time,
    ):
        """``client_share``: the fraction of ``max_events`` one client may hold queued."""
        self.path = os.path.join(data_dir, "outbox.sqlite3")
        self.lock_path = os.path.join(data_dir, "relay.lock")
        self.max_events = max_events
        self.max_per_client = max(math.ceil(max_events * client_share), CLIENT_SHARE_FLOOR)
        self.max_seen = max_events * SEEN_PER_EVENT
        self.clock = clock
        self.wake = threading.Event()  # set by put: the relay in this process starts at once
        self._local = threading.local()
        self._group_commit = GroupCommit(
            lambda group: self._commit(group), self.wake, self.failures
        )
        os.makedirs(data_dir, exist_ok=True)
        # One process at a time sets the database up: workers start together, and switching a
        # new database to WAL does not wait for another process doing the same, it fails with
        # "database is locked" (in 6 of 40 two-worker starts, measured before this lock).
        with open(os.path.join(data_dir, SETUP_LOCK), "a") as setup_lock:
            fcntl.flock(setup_lock, fcntl.LOCK_EX)
            # A short-lived connection: none is left open to be inherited by a forked worker.
            with closing(self._connect()) as db:
                db.execute("PRAGMA journal_mode=WAL")
                with self._transaction(db):
                    for statement in SCHEMA[:1]:
                        db.execute(statement)
                    self._upgrade(db)
                    for statement in SCHEMA[1:]:
                        db.execute(statement)
                    seen = db.execute("SELECT count(*) FROM seen").fetchone()[0]
                    db.execute("INSERT OR REPLACE INTO counters VALUES ('seen_rows', ?)", (seen,))

    @staticmethod
    def _upgrade(db: sqlite3.Connection) -> None:
        """Columns added since the first release, on a database that was made before them."""
        columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
        if "client" not in columns:
            db.execute("ALTER TABLE outbox ADD COLUMN client TEXT NOT NULL DEFAULT ''")

    # -- connections ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _db(self) -> sqlite3.Connection:
        """This thread's connection; a forked child opens its own instead of sharing one."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.db, local.pid = self._connect(), os.getpid()
        return local.db

    @staticmethod
    @contextmanager
    def _transaction(db: sqlite3.Connection):
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")

    def _write(self):
        return self._transaction(self._db())

    @staticmethod
    def _count(db: sqlite3.Connection, name: str, n: int) -> None:
        if n:
            db.execute(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT (name) "
                "DO UPDATE SET value = value + excluded.value",
                (name, n),
            )

    # -- the route's side -------------------------------------------------------------------
    def put(self, items: Iterable[tuple[str, dict]], *, client: str = "") -> int:
        """Queue ``(event_id, payload)`` pairs durably; return how many were new.

        All or nothing: when the new events do not fit, none is queued, the refusal is counted
        as drops "full", and ``OutboxFull`` is raised. ``client`` (an address) may hold at most
        ``max_per_client`` queued events, so one client cannot fill the queue for everyone
        during an outage: past it, ``ClientShareFull`` (drops "client_share"). Any database
        failure is an ``OutboxError`` too: either way the client should retry later, with the
        same ids.

        Group commit: each fsync costs milliseconds, so puts from concurrent threads wait
        their turn together and the first to get it commits all of them in one transaction
        (one fsync). Every put still returns only once its own events are on disk.
        """
        return self._group_commit.put(items, client=client)

    def _commit(self, group: list[_Put]) -> None:
        """One transaction for a group of puts; a database error fails every one of them."""
        with self._write() as db:
            depth = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            for request in group:
                depth += self._insert(db, request, depth)

    def _insert(self, db: sqlite3.Connection, request: _Put, depth: int) -> int:
        """Queue one put's new events (all, or none when they do not fit); how many."""
        fresh = [
            (event_id, payload)
            for event_id, payload in request.rows.items()
            if db.execute("SELECT 1 FROM seen WHERE event_id = ?", (event_id,)).fetchone() is None
        ]
        if not fresh:
            return 0
        seen = db.execute("SELECT value FROM counters WHERE name = 'seen_rows'").fetchone()
        if depth + len(fresh) > self.max_events or (seen or (0,))[0] + len(fresh) > self.max_seen:
            # Ids are never forgotten early to make room: the queue refuses instead.
            self._count(db, "full", len(fresh))
            request.error = OutboxFull(
                f"outbox holds {depth} of {self.max_events} events; refused {len(fresh)}"
            )
            return 0
        if request.client:
            held = db.execute(
                "SELECT count(*) FROM outbox WHERE client = ?", (request.client,)
            ).fetchone()[0]
            if held + len(fresh) > self.max_per_client:
                self._count(db, "client_share", len(fresh))
                request.error = ClientShareFull(
                    f"client holds {held} of its {self.max_per_client} events"
                )
                return 0
        now = self.clock()
        db.executemany("INSERT INTO seen VALUES (?, ?)", [(event_id, now) for event_id, _ in fresh])
        self._count(db, "seen_rows", len(fresh))
        db.executemany(
            "INSERT INTO outbox (event_id, payload, created_at, next_attempt_at, client) "
            "VALUES (?, ?, ?, ?, ?)",
            [(e, p, now, now, request.client) for e, p in fresh],
        )
        request.fresh = len(fresh)
        return len(fresh)

    # -- the relay's side -------------------------------------------------------------------
    def claim(
        self, limit: int, *, lease_seconds: float, max_attempts: int, max_age: float
    ) -> list[Pending]:
        """Lease up to ``limit`` due events, oldest due first, counting the attempt now.

        Due events past ``max_age``, or already at ``max_attempts`` (a relay died on them
        each time), are dead-lettered instead of sent.
        """
        now = self.clock()
        with self._write() as db:
            while True:
                due = [
                    Pending(seq, event_id, json.loads(payload), created_at, attempts, error)
                    for seq, event_id, payload, created_at, attempts, error in db.execute(
                        "SELECT seq, event_id, payload, created_at, attempts, last_error "
                        "FROM outbox WHERE next_attempt_at <= ? "
                        "ORDER BY next_attempt_at, seq LIMIT ?",
                        (now, limit),
                    )
                ]
                if not due:
                    return []
                old: list[Pending] = []
                spent: list[Pending] = []
                live: list[Pending] = []
                for row in due:
                    reason = expired(row, now, max_attempts=max_attempts, max_age=max_age)
                    (old if reason == "dead_letter_age" else spent if reason else live).append(row)
                self._bury(db, old, "dead_letter_age", None, now)
                self._bury(db, spent, "dead_letter_attempts", None, now)
                if live:
                    until = now + lease_seconds
                    db.executemany(
                        "UPDATE outbox SET attempts = attempts + 1, lease_until = ?, "
                        "next_attempt_at = ? WHERE seq = ?",
                        [(until, until, row.seq) for row in live],
                    )
                    return [replace(row, attempts=row.attempts + 1) for row in live]

    def ack(self, rows: Sequence[Pending]) -> None:
        """The collector answered 2xx: the events are Klevu's now."""
        with self._write() as db:
            db.executemany("DELETE FROM outbox WHERE seq = ?", [(row.seq,) for row in rows])
            self._count(db, "delivered", len(rows))
            db.execute(
                "INSERT OR REPLACE INTO relay_status VALUES ('last_delivery', NULL, ?)",
                (self.clock(),),
            )

    def release(
        self, rows: Sequence[Pending], retry_at: Sequence[float], error: str, *, refund: bool
    ) -> None:
        """Back in the queue until ``retry_at``; ``refund`` un-counts the claim's attempt."""
        if not rows:
            return
        with self._write() as db:
            db.executemany(
                "UPDATE outbox SET lease_until = NULL, next_attempt_at = ?, "
                "attempts = attempts - ?, last_error = ? WHERE seq = ?",
                [(at, int(refund), error, row.seq) for row, at in zip(rows, retry_at, strict=True)],
            )
            self._count(db, "retried", len(rows))

    def dead_letter(self, rows: Sequence[Pending], reason: str, error: str) -> None:
        if not rows:
            return
        with self._write() as db:
            self._bury(db, rows, reason, error, self.clock())

    def _bury(
        self,
        db: sqlite3.Connection,
        rows: Sequence[Pending],
        reason: str,
        error: str | None,
        now: float,
    ) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    row.event_id,
                    json.dumps(row.payload, separators=(",", ":")),
                    row.created_at,
                    row.attempts,
                    reason,
                    error or row.last_error,
                    now,
                )
                for row in rows
            ],
        )
        db.executemany("DELETE FROM outbox WHERE seq = ?", [(row.seq,) for row in rows])
        self._count(db, reason, len(rows))

    def recover(self) -> int:
        """Make everything a previous relay had claimed due now; only the lock holder calls
        this, so that relay is gone and its leases mean nothing."""
        with self._write() as db:
            return db.execute(
                "UPDATE outbox SET lease_until = NULL, next_attempt_at = ? "
                "WHERE lease_until IS NOT NULL",
                (self.clock(),),
            ).rowcount

    def next_due(self) -> float | None:
        return self._db().execute("SELECT min(next_attempt_at) FROM outbox").fetchone()[0]

    def forget_seen(self, before: float) -> None:
        """Expire idempotency keys, except those of events still queued; and dead letters
        older than ``DEAD_LETTER_DAYS`` or beyond the newest ``MAX_DEAD_LETTERS``."""
        with self._write() as db:
            gone = db.execute(
                "DELETE FROM seen WHERE accepted_at < ? AND event_id NOT IN "
                "(SELECT event_id FROM outbox)",
                (before,),
            ).rowcount
            self._count(db, "seen_rows", -gone)
            db.execute(
                "DELETE FROM dead_letters WHERE dead_at < ? OR dead_at < (SELECT dead_at "
                "FROM dead_letters ORDER BY dead_at DESC LIMIT 1 OFFSET ?)",
                (self.clock() - DEAD_LETTER_DAYS * 86400, MAX_DEAD_LETTERS - 1),
            )

    def note_error(self, message: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO relay_status VALUES ('last_error', ?, ?)",
                (message, self.clock()),
            )

    def whereabouts(self, event_ids: Sequence[str]) -> dict[str, dict]:
        """Where each accepted event is now: ``queued``, ``retrying`` (an attempt failed),
        ``dead`` or ``delivered``; ids never accepted are left out. For the page inspector,
        which knows a page view's event ids without storing anything of its own."""
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return {}
        wanted = (json.dumps(ids),)
        db = self._db()
        db.execute("BEGIN")

        def rows(columns: str, table: str) -> dict:
            """The wanted ids found in one of our tables (names are constants, ids bound)."""
            where = "WHERE event_id IN (SELECT value FROM json_each(?))"
            found = db.execute(f"SELECT event_id{columns} FROM {table} {where}", wanted)  # noqa: S608
            return {row[0]: row[1:] for row in found}

        try:
            seen = set(rows("", "seen"))
            queued = rows(", attempts, last_error", "outbox")
            dead = rows(", reason, last_error", "dead_letters")
        finally:
            db.execute("COMMIT")
        found: dict[str, dict] = {}
        for event_id in ids:
            if event_id in queued:
                attempts, error = queued[event_id]
                found[event_id] = {
                    "state": "retrying" if error else "queued",
                    "attempts": attempts,
                    "error": error,
                }
            elif event_id in dead:
                found[event_id] = {
                    "state": "dead",
                    "reason": dead[event_id][0],
                    "error": dead[event_id][1],
                }
            elif event_id in seen:
                found[event_id] = {"state": "delivered"}
        return found

    # -- /healthz ---------------------------------------------------------------------------
    def stats(self) -> dict:
        """One consistent snapshot (a read transaction) of the queue.

        Index-only queries: a full queue must not make /healthz slow.
        """
        now = self.clock()
        db = self._db()
        db.execute("BEGIN")
        try:
            depth = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            in_flight = db.execute(
                "SELECT count(*) FROM outbox WHERE lease_until > ?", (now,)
            ).fetchone()[0]
            first = db.execute("SELECT created_at FROM outbox ORDER BY seq LIMIT 1").fetchone()
            dead = db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
            counters = dict(db.execute("SELECT name, value FROM counters"))
            status = {
                name: (value, at)
                for name, value, at in db.execute("SELECT name, value, at FROM relay_status")
            }
        finally:
            db.execute("COMMIT")
        error = status.get("last_error")
        return {
            "depth": depth,
            "capacity": self.max_events,
            "oldest_age_seconds": None if first is None else round(max(0.0, now - first[0]), 3),
            "in_flight": in_flight,
            "delivered": counters.get("delivered", 0),
            "retried": counters.get("retried", 0),
            "dead_letters": dead,
            "drops": {reason: counters.get(reason, 0) for reason in DROP_REASONS},
            "last_delivery_at": _iso(status.get("last_delivery", (None, None))[1]),
            "last_error": None if error is None else {"message": error[0], "at": _iso(error[1])},
        }

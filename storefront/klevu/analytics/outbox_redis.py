"""The analytics outbox on Redis Streams (``OUTBOX_URL=redis://...``): one queue for every host.

The SQLite outbox lives on one host's disk, and a host replaced during a collector outage takes
its undelivered events with it. Here every host's beacon writes to one Redis, and every host's
relay reads it through one consumer group, so any host delivers what any other accepted.

Acceptance is one script (one round trip, atomic): ids not yet in the ``seen`` set are added to
it and their events to the stream, or, when they do not fit under ``max_events``, nothing is.
The 202 follows the script's reply, so an event is as durable as Redis's persistence makes it:
``appendonly yes`` with ``appendfsync always`` loses nothing a 202 confirmed, ``everysec`` up to
about a second of them on a power loss (docs/operations.md, "Several hosts").

Claiming reads new entries for this host's consumer (``XREADGROUP``) and takes over entries a
dead relay left pending longer than the lease (``XAUTOCLAIM``). An acknowledged entry is deleted
from the stream at once. A retry leaves the stream for a sorted set scored by its due time and
re-enters it when due. Attempts, errors and dead letters are hashes by event id. The policy
(what a failure means, backoff, halving, dead letters) is the relay's, the same for both stores.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import redis

from .outbox import (
    CLIENT_SHARE_FLOOR,
    DROP_REASONS,
    ClientShareFull,
    GroupCommit,
    OutboxFull,
    Pending,
    _iso,
    _Put,
    expired,
)

GROUP = "relays"
# One hash tag: a Redis Cluster keeps every key of the queue on one node, as scripts need.
KEYS = (
    *("stream", "seen", "queued", "delayed", "attempts", "errors", "dead", "counters", "status"),
    *("owner", "held"),  # event id → the client that queued it; client → events it holds
)

# A group of puts (each: a count, its client, then id/payload pairs), in order: each put's new
# ids go into the seen set and its events into the stream, or, when they do not fit, none of
# them (-1: the queue is full; -2: the client's share of it is).
PUT = """
local seen, queued, stream, counters = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local owner, held = KEYS[5], KEYS[6]
local now, max_events, per_client = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local depth = redis.call('ZCARD', queued)
local results = {}
local i = 4
while i <= #ARGV do
  local n, client = tonumber(ARGV[i]), ARGV[i + 1]
  local fresh = {}
  for j = i + 2, i + 1 + 2 * n, 2 do
    if not redis.call('ZSCORE', seen, ARGV[j]) then fresh[#fresh + 1] = j end
  end
  local holds = client ~= '' and tonumber(redis.call('HGET', held, client) or '0') or 0
  if #fresh > 0 and depth + #fresh > max_events then
    redis.call('HINCRBY', counters, 'full', #fresh)
    results[#results + 1] = -1
  elseif #fresh > 0 and client ~= '' and holds + #fresh > per_client then
    redis.call('HINCRBY', counters, 'client_share', #fresh)
    results[#results + 1] = -2
  else
    for _, j in ipairs(fresh) do
      redis.call('ZADD', seen, now, ARGV[j])
      redis.call('ZADD', queued, now, ARGV[j])
      redis.call('XADD', stream, '*', 'id', ARGV[j], 'p', ARGV[j + 1], 'c', now)
      if client ~= '' then redis.call('HSET', owner, ARGV[j], client) end
    end
    if client ~= '' and #fresh > 0 then redis.call('HINCRBY', held, client, #fresh) end
    depth = depth + #fresh
    results[#results + 1] = #fresh
  end
  i = i + 2 + 2 * n
end
results[#results + 1] = depth
return results
"""

# Events out of the queue (delivered or dead-lettered): each leaves its client's share.
RELEASE = """
local queued, owner, held = KEYS[1], KEYS[2], KEYS[3]
for _, id in ipairs(ARGV) do
  local client = redis.call('HGET', owner, id)
  if client then
    redis.call('HDEL', owner, id)
    if redis.call('HINCRBY', held, client, -1) <= 0 then redis.call('HDEL', held, client) end
  end
  redis.call('ZREM', queued, id)
end
return 0
"""

# Due retries back into the stream, then a dead relay's entries, then new ones; each counted.
CLAIM = """
local stream, delayed, attempts, errors = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer, limit, now, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
for _, member in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, limit)) do
  local e = cjson.decode(member)
  redis.call('XADD', stream, '*', 'id', e.id, 'p', e.p, 'c', e.c)
  redis.call('ZREM', delayed, member)
end
local taken = redis.call('XAUTOCLAIM', stream, group, consumer, lease_ms, '0-0', 'COUNT', limit)[2]
if #taken < limit then
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', limit - #taken,
                          'STREAMS', stream, '>')
  if read then for _, entry in ipairs(read[1][2]) do taken[#taken + 1] = entry end end
end
local out = {}
for _, entry in ipairs(taken) do
  local f = {}
  for j = 1, #entry[2], 2 do f[entry[2][j]] = entry[2][j + 1] end
  local before = redis.call('HINCRBY', attempts, f.id, 1) - 1
  local error = redis.call('HGET', errors, f.id) or ''
  out[#out + 1] = {entry[1], f.id, f.p, f.c, tostring(before), error}
end
return out
"""

# This consumer's pending entries (its previous process died holding them) become new again.
RECOVER = """
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
local n = 0
for _, p in ipairs(redis.call('XPENDING', stream, group, '-', '+', 100000, consumer)) do
  local entry = redis.call('XRANGE', stream, p[1], p[1])[1]
  redis.call('XACK', stream, group, p[1])
  redis.call('XDEL', stream, p[1])
  if entry then
    redis.call('XADD', stream, '*', unpack(entry[2]))
    n = n + 1
  end
end
return n
"""

# Entries no relay has read yet (a count), the first retry's due time, and how long the
# oldest claimed entry has been held (ms): it is due again when that reaches the lease.
NEXT_DUE = """
local stream, delayed, group = KEYS[1], KEYS[2], ARGV[1]
redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
local unread = redis.call('XLEN', stream) - redis.call('XPENDING', stream, group)[1]
local held = redis.call('XPENDING', stream, group, '-', '+', 1)[1]
local retry = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')[2]
return {unread, retry or '', held and tostring(held[3]) or ''}
"""

# Expire idempotency keys older than ARGV[1], except those of events still queued; and forget
# consumers that hold nothing and were idle longer than ARGV[3] ms (hosts replaced long ago: a
# live relay's next read makes its consumer again).
FORGET = """
local seen, queued, stream = KEYS[1], KEYS[2], KEYS[3]
local n = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', seen, '-inf', ARGV[1], 'LIMIT', 0, 10000)) do
  if not redis.call('ZSCORE', queued, id) then
    redis.call('ZREM', seen, id)
    n = n + 1
  end
end
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', stream, ARGV[2])
if ok then
  for _, c in ipairs(consumers) do
    local info = {}
    for j = 1, #c, 2 do info[c[j]] = c[j + 1] end
    if info.pending == 0 and info.idle > tonumber(ARGV[3]) then
      redis.call('XGROUP', 'DELCONSUMER', stream, ARGV[2], info.name)
    end
  end
end
return n
"""


def consumer_name(data_dir: str) -> str:
    """This data directory's consumer in the group, kept in a file so that a restarted relay
    takes back what its previous process held (``recover``) without waiting for the lease.
    Written aside and hard-linked into place: concurrent workers read one complete name."""
    path = os.path.join(data_dir, "outbox.consumer")
    if not os.path.exists(path):
        os.makedirs(data_dir, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as file:
            file.write(f"{socket.gethostname()}-{uuid.uuid4().hex[:12]}")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    with open(path) as file:
        return file.read().strip()


def _text(url: str) -> str:
    """The URL without its password, for logs and ``flask relay``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


class RedisOutbox:
    """The same ``Store`` as ``outbox.OutboxStore``, on one Redis shared by every host."""

    failures: tuple[type[Exception], ...] = (redis.RedisError,)

    def __init__(
        self,
        url: str,
        data_dir: str,
        *,
        max_events: int = 100_000,
        client_share: float = 0.05,
        prefix: str = "storefront:outbox",
        clock: Callable[[], float] = time.time,
    ):
        self.path = _text(url)
        self.lock_path = os.path.join(data_dir, "relay.lock")  # one relay per host
        self.consumer = consumer_name(data_dir)
        self.max_events = max_events
        self.max_per_client = max(math.ceil(max_events * client_share), CLIENT_SHARE_FLOOR)
        self.clock = clock
        self.wake = threading.Event()
        self._group_commit = GroupCommit(
            lambda group: self._commit(group), self.wake, self.failures
        )
        self._lease = 60.0  # seconds, as the relay last claimed with: see ``next_due``
        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.keys = {name: f"{prefix}:{{q}}:{name}" for name in KEYS}
        self._put = self.redis.register_script(PUT)
        self._release = self.redis.register_script(RELEASE)
        self._claim = self.redis.register_script(CLAIM)
        self._recover = self.redis.register_script(RECOVER)
        self._forget = self.redis.register_script(FORGET)
        self._next_due = self.redis.register_script(NEXT_DUE)

    # -- the route's side -------------------------------------------------------------------
    def put(self, items: Iterable[tuple[str, dict]], *, client: str = "") -> int:
        """As ``OutboxStore.put``: all or nothing, ``OutboxFull`` when they do not fit, any
        Redis failure an ``OutboxError``; returns once Redis has replied (and, with
        ``appendfsync always``, written the events to its disk). Concurrent puts share one
        script call (``GroupCommit``): Redis fsyncs once per call, not once per put.
        ``client`` (an address) may hold ``max_per_client`` queued events, as on SQLite: past
        it, ``ClientShareFull``."""
        return self._group_commit.put(items, client=client)

    def _commit(self, group: list[_Put]) -> None:
        """One script call for a group of puts (a Redis error fails every one of them)."""
        k = self.keys
        args: list[str | int] = [repr(self.clock()), self.max_events, self.max_per_client]
        for request in group:
            args.extend((len(request.rows), request.client))
            args.extend(x for row in request.rows.items() for x in row)
        *results, depth = self._put(
            keys=[k[name] for name in ("seen", "queued", "stream", "counters", "owner", "held")],
            args=args,
        )
        for request, fresh in zip(group, results, strict=True):
            if fresh == -2:
                request.error = ClientShareFull(
                    f"client holds its {self.max_per_client} events; refused {len(request.rows)}"
                )
            elif fresh < 0:
                request.error = OutboxFull(
                    f"outbox holds {depth} of {self.max_events} events; refused {len(request.rows)}"
                )
            else:
                request.fresh = fresh

    # -- the relay's side -------------------------------------------------------------------
    def claim(
        self, limit: int, *, lease_seconds: float, max_attempts: int, max_age: float
    ) -> list[Pending]:
        """As ``OutboxStore.claim``; the lease is the group's: an entry pending longer than
        ``lease_seconds`` on any host's consumer is taken over by the next claim."""
        k = self.keys
        self._lease = lease_seconds
        while True:
            now = self.clock()
            taken = self._claim(
                keys=[k["stream"], k["delayed"], k["attempts"], k["errors"]],
                args=[GROUP, self.consumer, limit, repr(now), int(lease_seconds * 1000)],
            )
            if not taken:
                return []
            due = [
                Pending(
                    entry.decode(),
                    event_id.decode(),
                    json.loads(payload),
                    float(created),
                    int(before),
                    error.decode() or None,
                )
                for entry, event_id, payload, created, before, error in taken
            ]
            live: list[Pending] = []
            dead: dict[str, list[Pending]] = {}
            for row in due:
                reason = expired(row, now, max_attempts=max_attempts, max_age=max_age)
                if reason:
                    dead.setdefault(reason, []).append(row)
                else:
                    live.append(replace(row, attempts=row.attempts + 1))
            for reason, rows in dead.items():
                self._remove(rows, reason, None)
            if live:
                return live

    def ack(self, rows: Sequence[Pending]) -> None:
        self._remove(rows, "delivered", None)

    def release(
        self, rows: Sequence[Pending], retry_at: Sequence[float], error: str, *, refund: bool
    ) -> None:
        if not rows:
            return
        k = self.keys
        with self.redis.pipeline(transaction=True) as tx:
            for row, at in zip(rows, retry_at, strict=True):
                entry = {"id": row.event_id, "p": _payload(row), "c": repr(row.created_at)}
                tx.zadd(k["delayed"], {json.dumps(entry, separators=(",", ":")): at})
                tx.hset(k["errors"], row.event_id, error)
                if refund:
                    tx.hincrby(k["attempts"], row.event_id, -1)
            ids = [row.seq for row in rows]
            tx.xack(k["stream"], GROUP, *ids)
            tx.xdel(k["stream"], *ids)
            tx.hincrby(k["counters"], "retried", len(rows))
            tx.execute()

    def dead_letter(self, rows: Sequence[Pending], reason: str, error: str) -> None:
        self._remove(rows, reason, error)

    def _remove(self, rows: Sequence[Pending], outcome: str, error: str | None) -> None:
        """Out of the queue in one transaction: delivered, or dead-lettered for ``outcome``."""
        if not rows:
            return
        k = self.keys
        ids, event_ids, now = (
            [row.seq for row in rows],
            [row.event_id for row in rows],
            self.clock(),
        )
        with self.redis.pipeline(transaction=True) as tx:
            tx.xack(k["stream"], GROUP, *ids)
            tx.xdel(k["stream"], *ids)
            self._release(keys=[k["queued"], k["owner"], k["held"]], args=event_ids, client=tx)
            if outcome != "delivered":
                tx.hset(
                    k["dead"],
                    mapping={
                        row.event_id: json.dumps(
                            {
                                "payload": row.payload,
                                "created_at": row.created_at,
                                "attempts": row.attempts,
                                "reason": outcome,
                                "last_error": error or row.last_error,
                                "dead_at": now,
                            }
                        )
                        for row in rows
                    },
                )
            tx.hdel(k["attempts"], *event_ids)
            tx.hdel(k["errors"], *event_ids)
            tx.hincrby(k["counters"], outcome, len(rows))
            if outcome == "delivered":
                tx.hset(k["status"], "last_delivery", repr(now))
            tx.execute()

    def recover(self) -> int:
        """What this host's previous relay held, new again; only the lock holder calls this.
        (Other hosts' dead relays' entries are taken over by ``claim`` after the lease.)"""
        return self._recover(keys=[self.keys["stream"]], args=[GROUP, self.consumer])

    def next_due(self) -> float | None:
        unread, retry, held = self._next_due(
            keys=[self.keys["stream"], self.keys["delayed"]], args=[GROUP]
        )
        now = self.clock()
        if unread > 0:
            return now
        due = [float(retry)] if retry else []
        if held:
            due.append(now + max(0.0, self._lease - int(held) / 1000))
        return min(due, default=None)

    def forget_seen(self, before: float) -> None:
        idle_ms = int(max(0.0, self.clock() - before) * 1000)
        keys = [self.keys["seen"], self.keys["queued"], self.keys["stream"]]
        self._forget(keys=keys, args=[repr(before), GROUP, idle_ms])

    def note_error(self, message: str) -> None:
        status = json.dumps({"message": message, "at": self.clock()})
        self.redis.hset(self.keys["status"], "last_error", status)

    def whereabouts(self, event_ids: Sequence[str]) -> dict[str, dict]:
        """As ``OutboxStore.whereabouts``: ``queued``, ``retrying``, ``dead`` or ``delivered``."""
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return {}
        k = self.keys
        with self.redis.pipeline(transaction=True) as tx:
            tx.zmscore(k["seen"], ids)
            tx.zmscore(k["queued"], ids)
            tx.hmget(k["attempts"], ids)
            tx.hmget(k["errors"], ids)
            tx.hmget(k["dead"], ids)
            seen, queued, attempts, errors, dead = tx.execute()
        found: dict[str, dict] = {}
        for i, event_id in enumerate(ids):
            if queued[i] is not None:
                error = errors[i].decode() if errors[i] else None
                found[event_id] = {
                    "state": "retrying" if error else "queued",
                    "attempts": int(attempts[i] or 0),
                    "error": error,
                }
            elif dead[i] is not None:
                letter = json.loads(dead[i])
                found[event_id] = {
                    "state": "dead",
                    "reason": letter["reason"],
                    "error": letter["last_error"],
                }
            elif seen[i] is not None:
                found[event_id] = {"state": "delivered"}
        return found

    # -- /healthz ---------------------------------------------------------------------------
    def stats(self) -> dict:
        """As ``OutboxStore.stats``, for the whole queue (every host's events)."""
        k = self.keys
        now = self.clock()
        with self.redis.pipeline(transaction=True) as tx:
            tx.zcard(k["queued"])
            tx.zrange(k["queued"], 0, 0, withscores=True)
            tx.xinfo_groups(k["stream"])  # an error while nothing was ever put: no stream
            tx.hlen(k["dead"])
            tx.hgetall(k["counters"])
            tx.hgetall(k["status"])
            depth, first, groups, dead, counters, status = tx.execute(raise_on_error=False)
        for reply in (depth, first, dead, counters, status):
            if isinstance(reply, Exception):
                raise reply
        counts = {name.decode(): int(value) for name, value in counters.items()}
        error = json.loads(status[b"last_error"]) if b"last_error" in status else None
        last_delivery = float(status[b"last_delivery"]) if b"last_delivery" in status else None
        in_flight = sum(g["pending"] for g in groups) if isinstance(groups, list) else 0
        return {
            "depth": depth,
            "capacity": self.max_events,
            "oldest_age_seconds": round(max(0.0, now - first[0][1]), 3) if first else None,
            "in_flight": in_flight,
            "delivered": counts.get("delivered", 0),
            "retried": counts.get("retried", 0),
            "dead_letters": dead,
            "drops": {reason: counts.get(reason, 0) for reason in DROP_REASONS},
            "last_delivery_at": _iso(last_delivery),
            "last_error": None
            if error is None
            else {"message": error["message"], "at": _iso(error["at"])},
        }


def _payload(row: Pending) -> str:
    return json.dumps(row.payload, separators=(",", ":"))

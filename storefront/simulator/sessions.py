"""Visitor sessions of the simulated visitor service (docs/klevu-wire-format.md §1).

Only what the storefront can observe is modelled: a session id lives for its ttl, re-posting
a live id refreshes it and gives the same id back (continuity), and an unknown or expired id
silently gets a new one — which is what a client must cope with after a simulator restart.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

# Expired sessions are swept at most this often, so a busy simulator stays O(1) per call.
SWEEP_EVERY_S = 60.0


class SessionStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_sweep = clock() + SWEEP_EVERY_S

    def open(self, session_id: str | None, ttl: int) -> tuple[str, bool]:
        """``(session id, refreshed)``: the same live id extended by ``ttl``, or a new id."""
        now = self._clock()
        with self._lock:
            self._sweep(now)
            refreshed = session_id is not None and self._expires.get(session_id, now) > now
            if session_id is None or not refreshed:
                session_id = secrets.token_hex(16)
            self._expires[session_id] = now + ttl
            return session_id, refreshed

    def active(self) -> int:
        now = self._clock()
        with self._lock:
            return sum(expires > now for expires in self._expires.values())

    def _sweep(self, now: float) -> None:
        if now >= self._next_sweep:
            self._expires = {sid: t for sid, t in self._expires.items() if t > now}
            self._next_sweep = now + SWEEP_EVERY_S

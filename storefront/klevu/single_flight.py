"""One upstream call per cache key across every worker sharing the cache.

The visitor service (``segments/resolver.py``) and the config and search answers
(``banners/answers.py``) share these rules, so a claim means the same to both. The first
request claims the key's ``klevu:flight:`` twin with ``add`` (Redis ``SETNX``); the others poll
the key its call fills, and share its failure rather than repeat it at once.

A claim holds the wall-clock time it was made (hosts compare it) and lapses after
``FLIGHT_SECONDS``: longer than one call may take (the client's 1 s connect + 2 s read
timeouts), and no longer, since a claim whose worker died starves that key's pages till then.
Anything else in a claim (not a time) is not ours: abandoned too.

cachelib's ``RedisCache.add`` sends ``SETNX`` and ``EXPIRE`` apart: a worker dying between them
leaves a claim that never lapses, so an abandoned claim is taken over, not only waited out.
The store has no compare-and-set: overwriting with ``set`` made every waiter that saw the old
claim an owner, and ``delete`` then ``add`` let a late waiter delete the new owner's claim.
So the take-over is decided by ``add`` on a key named after the abandoned claim's time: one
winner per dead claim, who then writes its own claim. A cache that fails grants every claim:
without one, each worker calls for itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

FLIGHT_SECONDS = 5
POLL_SECONDS = 0.01

T = TypeVar("T")


class Store(Protocol):
    """The part of a cachelib backend (Flask-Caching's ``cache.cache``) a flight uses."""

    def add(self, key: str, value: Any, timeout: int | None = None) -> Any: ...
    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...
    def delete(self, key: str) -> Any: ...


@dataclass(frozen=True)
class Joined(Generic[T]):
    """``lead``: this worker owns the call now, and releases it when the call ends;
    ``value``: what another worker's call stored; neither: ``failed`` (the claim went and
    nothing was stored: the call failed, not worth repeating at once) or too late."""

    lead: bool = False
    value: T | None = None
    failed: bool = False


def claim_name(key: str) -> str:
    """The claim on the call that fills ``key`` (``klevu:x:y`` → ``klevu:flight:x:y``)."""
    return "klevu:flight:" + key.removeprefix("klevu:")


def takeover_name(name: str, claimed_at: object) -> str:
    """The key whose ``add`` decides who takes over the claim ``name`` made at ``claimed_at``."""
    return f"{name}:after:{claimed_at if _is_time(claimed_at) else 'invalid'}"


def _is_time(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class SingleFlight:
    """Claims in ``store``; ``clock`` is wall time, ``due`` and polling are ``time.monotonic``."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def claim(self, key: str) -> bool:
        """Does this worker now own the one call that fills ``key``?"""
        name = claim_name(key)
        try:
            if self.store.add(name, self.clock(), timeout=FLIGHT_SECONDS):
                return True
            claimed_at = self.store.get(name)
            if claimed_at is None or not self._abandoned(claimed_at):
                return False  # a live claim, or one released since: its call is over
            if not self.store.add(takeover_name(name, claimed_at), 1, timeout=FLIGHT_SECONDS):
                return False  # another worker took this one over
            log.warning("taking over an abandoned Klevu call (%s)", name)
            self.store.set(name, self.clock(), timeout=FLIGHT_SECONDS)
            return True
        except Exception:
            log.warning("the cache cannot hold claims: calling without one", exc_info=True)
            return True

    def release(self, key: str) -> None:
        try:
            self.store.delete(claim_name(key))
        except Exception:
            log.warning("could not release the claim on %s; it lapses on its own", key)

    def join(self, key: str, settled: Callable[[], T | None], due: float) -> Joined[T]:
        """Own the call for ``key``, or wait until ``due`` for the owner's: ``settled()`` reads
        what the call stores (None: nothing yet) and may raise to stop the wait. An owner
        looks once more before calling, since another worker may have stored it between the
        caller's first look and the claim."""
        while True:
            if self.claim(key):
                try:
                    seen = settled()
                except BaseException:
                    self.release(key)
                    raise
                if seen is None:
                    return Joined(lead=True)
                self.release(key)
                return Joined(value=seen)
            while True:
                claimed_at = self.store.get(claim_name(key))  # before settled(): a call
                seen = settled()  # stores, then releases its claim
                if seen is not None:
                    return Joined(value=seen)
                if claimed_at is None:
                    return Joined(failed=True)
                left = due - time.monotonic()
                if left <= 0:
                    return Joined()
                time.sleep(min(POLL_SECONDS, left))  # before a take-over too: never a spin
                if self._abandoned(claimed_at):
                    break

    def _abandoned(self, claimed_at: object) -> bool:
        """Older than the flight time, or not a time at all (not a claim we wrote)."""
        if not _is_time(claimed_at):
            return True
        assert isinstance(claimed_at, (int, float))
        return claimed_at + FLIGHT_SECONDS < self.clock()

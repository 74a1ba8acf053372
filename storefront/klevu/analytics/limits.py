"""Fixed-window rate counters that a flood of other keys cannot wipe out.

The beacon's limits key on what a visitor cannot choose freely: the client's address (behind
``STOREFRONT_PROXY_HOPS``, an IPv6 client by its /64) and the page view its signed token
names. A counter kept in the shared page cache was no limit at all: SimpleCache evicts the
soonest-expiring keys first when it fills, which are the counters, so 6,000 requests with new
cookies emptied them. Here the counters live apart from any cache of pages' data: in Redis
when the shop has one (``INCR`` on a key that expires with its window, shared by every
worker), otherwise in this process, where a window's counts are dropped together when it ends
and a full table counts a new key as over its limit rather than forgetting an old one.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable
from typing import Any


def client_key(address: str | None) -> str:
    """The address a limit counts against: an IPv6 host by its /64, which one client holds."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "-"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class WindowCounter:
    """Counts per key in fixed windows of ``window`` seconds; ``hit`` says how many so far.

    ``redis``: a redis-py client (shared counts); None keeps them in this process, at most
    ``max_keys`` per window.
    """

    def __init__(
        self,
        window: float,
        *,
        redis: Any = None,
        prefix: str = "rate:",
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.time,
    ):
        self.window = window
        self.redis = redis
        self.prefix = prefix
        self.max_keys = max_keys
        self.clock = clock
        self._lock = threading.Lock()
        self._slot = -1
        self._counts: dict[str, int] = {}

    def hit(self, key: str) -> tuple[float, float]:
        """Count one more for ``key``; its count in this window and the seconds left in it."""
        now = self.clock()
        slot = int(now // self.window)
        left = (slot + 1) * self.window - now
        if self.redis is not None:
            name = f"{self.prefix}{key}:{slot}"
            pipe = self.redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, math.ceil(self.window) + 1)
            count, _ = pipe.execute()
            return int(count), left
        with self._lock:
            if slot != self._slot:
                self._slot, self._counts = slot, {}
            if key not in self._counts and len(self._counts) >= self.max_keys:
                return math.inf, left
            count = self._counts[key] = self._counts.get(key, 0) + 1
        return count, left

"""``Memo``: a bounded, thread-safe memo, least recently used dropped first.

What a worker keeps in its own memory between pages: renders (``render/once.py``), the
answers' in-process copies (``banners/answers.py``), a banner's per-answer parts
(``banners/placement.py``), the banners a worker showed (``analytics/shown.py``) and a
cookie-less visitor's fresh segments (``segments/resolver.py``). A module of its own, beside
the steps rather than in one of them, so that each step may use it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

ENTRIES = 256  # a shop has a few placements × segment combinations × page contexts

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    """At most ``entries`` values, the least recently used dropped first; thread-safe."""

    def __init__(self, entries: int = ENTRIES):
        self.entries = entries
        self._values: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def pop(self, key: K) -> None:
        with self._lock:
            self._values.pop(key, None)

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.entries:
                self._values.popitem(last=False)
        return value

"""Work done once per answer, not once per page view: a small memo, and the banner renderer.

With config and search answers cached (``answers.py``), a warm page hands the renderer the
same template and the same data again and again; running the JavaScript engine and the HTML
sanitizer for each view would make a banner page several times dearer than a plain one. The
result (the sanitized HTML, or the ``RenderError`` of a template that fails) is kept per
(template, data), least recently used dropped first. What differs per page view — the
analytics token and the click links — is added by the caller afterwards (``recs._banner``).

It wraps the renderer's public ``render()`` only, so the engine behind it may change.
``Memo`` is the bounded, thread-safe memo behind it, also used for the answers' in-process copy
(``answers.py``) and a banner's per-answer parts (``recs.py``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Generic, Protocol, TypeVar

from .engine import RenderError

ENTRIES = 256  # a shop has a few placements × segment combinations × page contexts


class Renderer(Protocol):
    def render(self, template: str, data: Mapping[str, Any]) -> str: ...


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

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.entries:
                self._values.popitem(last=False)
        return value


class RenderOnce:
    def __init__(self, renderer: Renderer, entries: int = ENTRIES):
        self.renderer = renderer
        self._done: Memo[bytes, str | RenderError] = Memo(entries)

    @staticmethod
    def key(template: str, data: Mapping[str, Any]) -> bytes:
        """What identifies a render: the template and the data (so, the answers behind it)."""
        digest = hashlib.sha256(template.encode("utf-8", "surrogatepass"))
        digest.update(b"\0" + json.dumps(data, sort_keys=True, default=str).encode())
        return digest.digest()

    def render(self, template: str, data: Mapping[str, Any], *, key: bytes | None = None) -> str:
        """``renderer.render(template, data)``, or what it gave last time for the same input;
        ``key`` when the caller already has ``RenderOnce.key(template, data)``."""
        key = key or self.key(template, data)
        done = self._done.get(key)
        if done is None:
            try:
                done = self.renderer.render(template, data)
            except RenderError as exc:
                done = exc
            self._done.put(key, done)
        if isinstance(done, RenderError):
            raise done.with_traceback(None)  # not one more traceback on each page
        return done

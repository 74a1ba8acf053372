"""Work done once per answer, not once per page view: a small memo, and the banner renderer.

With config and search answers cached (``answers.py``), a warm page hands the renderer the
same template and the same data again and again; running the JavaScript engine and the HTML
sanitizer for each view would make a banner page several times dearer than a plain one. The
result (the sanitized HTML, or the ``RenderError`` of a template that fails) is kept per
(template, data), least recently used dropped first. What differs per page view — the
analytics token and the click links — is added by the caller afterwards (``placement._banner``).

It wraps the renderer's public ``render()`` only, so the engine behind it may change.
It keeps its renders in a ``Memo`` (``klevu/memo.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from ..memo import ENTRIES, Memo
from .engine import RenderError


class Renderer(Protocol):
    def render(self, template: str, data: Mapping[str, Any]) -> str: ...


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

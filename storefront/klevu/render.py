"""Klevu's ``templates.base`` rendered on the server with the semantics of Klevu's browser library.

Klevu templates are JavaScript (an Underscore-style dialect, see ``js/template.js``), so they
run in an embedded JavaScript engine, QuickJS, rather than in a Python imitation that would
drift from the browser's behaviour. QuickJS was chosen over V8 (mini-racer) by measurement:
docs/performance.md, "Banner rendering", has the figures and the command that produced them.

Sandbox: the engine has no host objects at all (no I/O, no network, no Python callbacks), only
ECMAScript built-ins, the template's helpers and the data passed in, as JSON. Each render has a
CPU-time limit and each engine a memory limit; built-ins are frozen so a template cannot change
what the next one sees. Every failure (syntax error, exception, time or memory limit, size
limits) is one ``RenderError``, on which the caller shows the shop's own banner. Known gap:
QuickJS cannot interrupt a backtracking regular expression, which keeps its thread busy
(docs/performance.md). Two things bound the harm: the caller's page deadline leaves that
banner out, and a template version with a render still running well past its time limit is
marked runaway, so later renders of it fail at once instead of tying up thread after thread.

Threads: a QuickJS runtime must only ever be used by the thread that created it (its stack
checks are tied to that thread), so each thread gets its own engine, lazily, with its own cache
of compiled templates. Renders on different threads run in parallel: the engine releases the
GIL while JavaScript runs. Measured against one shared engine on a dedicated thread in
docs/performance.md.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import quickjs

from .sanitize import sanitize_banner_html, scope_css

# The banner code gets everything that turns a config into safe markup from this module.
__all__ = ["RenderError", "TemplateRenderer", "sanitize_banner_html", "scope_css"]

# Loaded into every engine, in this order: the dialect, the helpers, then the hardening that
# freezes both.
_ENGINE_SOURCES = tuple(
    resources.files(__package__).joinpath("js", name).read_text(encoding="utf-8")
    for name in ("template.js", "helpers.js", "harden.js"))

# Template versions kept compiled per thread. A page shows a handful of banners; configs
# change rarely. Compiled templates live inside the engine, under its memory limit.
COMPILED_PER_THREAD = 32

# QuickJS reports hitting a limit as an InternalError ("interrupted", "out of memory",
# "stack overflow") or, when memory ran out while building the error itself, as a bare
# "null". Such a render may have stopped half-way through the engine's own bookkeeping (an
# interrupt skips `finally`), so the engine is replaced rather than reused.
_LOST_ERROR = "null"
_LIMIT_FAILURES = ("InternalError", _LOST_ERROR)


# Where a JavaScript error happened in the compiled template function ("at <input>:7").
_JS_LINE = re.compile(r"<input>:(\d+)")
# js/template.js: the template's text starts on line 6 of the function QuickJS compiles (the
# `new Function` wrapper, its inner function, the var and with lines come first).
_FIRST_TEMPLATE_LINE = 6
_DELIMITERS = re.compile(r"<%-([\s\S]+?)%>|<%=([\s\S]+?)%>|<%([\s\S]+?)%>")


@cache
def helper_names() -> frozenset[str]:
    """The helpers a template may call (``helper.<name>``), asked of the engine itself."""
    context = quickjs.Context()
    for source in _ENGINE_SOURCES[:2]:
        context.eval(source)
    return frozenset(context.eval(
        "Object.keys(makeKlevuHelper('{}', '{}')({}).helper).join(',')").split(","))


def template_line(template: str, error: BaseException) -> int | None:
    """The template line a ``RenderError`` points at, for people fixing a template.

    QuickJS reports lines of the function js/template.js compiles, in which literal text keeps
    no line breaks and each ``<% %>`` adds one before and after its code; this walks the
    template the same way to map the reported line back.
    """
    found = _JS_LINE.search(str(error.__cause__ or error))
    if not found:
        return None
    wanted, generated, line, index = int(found.group(1)), _FIRST_TEMPLATE_LINE, 1, 0
    for match in _DELIMITERS.finditer(template):
        line += template.count("\n", index, match.start())
        code = next(group for group in match.groups() if group is not None)
        generated += 1
        if generated <= wanted <= generated + code.count("\n"):
            return line + wanted - generated   # "<%", "<%=", "<%-" hold no line break
        generated += code.count("\n") + 1
        line += match.group(0).count("\n")
        index = match.end()
    return line + (template.count("\n", index) if wanted > generated else 0)


class RenderError(Exception):
    """The template produced no usable banner: show the shop's own instead."""


class _Engine:
    """One QuickJS runtime with the Klevu dialect loaded, for the thread that created it."""

    def __init__(self, *, time_limit_ms: int, memory_limit_bytes: int, translations_json: str,
                 currencies_json: str):
        context = quickjs.Context()
        context.set_memory_limit(memory_limit_bytes)
        for source in _ENGINE_SOURCES:
            context.eval(source)
        self._helper = context.get("makeKlevuHelper")(translations_json, currencies_json)
        context.get("hardenKlevuEngine")()
        # Only now: the limit counts the whole process's CPU time, so under load a small limit
        # would interrupt the ~10 ms of our own set-up above.
        context.set_time_limit(time_limit_ms / 1000)
        self._compile = context.get("compileKlevuTemplate")
        self._render = context.get("renderKlevuTemplate")
        self._compiled: OrderedDict[bytes, quickjs.Object] = OrderedDict()
        self._context = context  # keeps the runtime alive as long as the engine

    def render(self, key: bytes, template: str, payload: str, max_chars: int) -> Any:
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compile(template)
            self._compiled[key] = compiled
            if len(self._compiled) > COMPILED_PER_THREAD:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(key)
        return self._render(compiled, self._helper, payload, max_chars)


class TemplateRenderer:
    """Renders Klevu banner templates; one instance serves every thread of the app.

    ``time_limit_ms`` is CPU time for each call into the engine (compiling a new template
    version and rendering are separate calls), read from the process's CPU clock: under
    parallel load it is reached sooner, never later. ``memory_limit_bytes`` bounds each
    thread's engine, compiled templates included. ``translations`` feeds ``helper.translate``;
    ``currencies`` are the shop's registered formats for ``helper.processCurrency`` (JSv2's
    currency map: ``string``, ``format``, ``atEnd``, ``precision``, ``decimal``, ``thousand``,
    ``grouping``), checked by ``config.currency_formats``.
    """

    def __init__(self, *, time_limit_ms: int = 250, memory_limit_bytes: int = 32 << 20,
                 max_template_bytes: int = 64 << 10, max_output_bytes: int = 256 << 10,
                 translations: Mapping[str, str] | None = None,
                 currencies: Mapping[str, Mapping[str, Any]] | None = None,
                 sanitize: bool = True):
        self.time_limit_ms = time_limit_ms
        self.sanitize = sanitize  # False only in tests (STOREFRONT_UNSAFE_NO_SANITIZE)
        self.memory_limit_bytes = memory_limit_bytes
        self.max_template_bytes = max_template_bytes
        self.max_output_bytes = max_output_bytes
        self._translations_json = json.dumps(dict(translations or {}))
        self._currencies_json = json.dumps({code: dict(fmt)
                                            for code, fmt in (currencies or {}).items()})
        self._local = threading.local()
        # Runaway guard: when each template version's oldest render in progress started.
        self.runaway_after = max(1.0, 8 * time_limit_ms / 1000)
        self._running: dict[bytes, list[float]] = {}
        self._runaway: set[bytes] = set()
        self._guard = threading.Lock()

    def render(self, template: str, data: Mapping[str, Any], *, data_local: Any = None,
               scope: Any = None) -> str:
        """Sanitized banner HTML wrapped in ``<div class="klevuWrap">``.

        The template is called as ``(data, dataLocal, helper, scope)``; ``data_local`` and
        ``scope`` are optional JSON-able values. Omitted, they are what JSv2 passes: ``data``
        itself, and the engine's own scope object (see ``js/helpers.js``).
        Raises ``RenderError`` when the template cannot produce a banner.
        """
        payload = json.dumps({key: value for key, value in
                              (("data", data), ("dataLocal", data_local), ("scope", scope))
                              if value is not None}, allow_nan=False)
        html = self._run(template, payload)
        if self.sanitize:
            html = sanitize_banner_html(html)
        return f'<div class="klevuWrap">{html}</div>'

    def _run(self, template: str, payload: str) -> str:
        try:
            source = template.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RenderError("template is not valid text") from exc
        if len(source) > self.max_template_bytes:
            raise RenderError(f"template exceeds {self.max_template_bytes} bytes")
        key = hashlib.sha256(source).digest()
        started = self._enter(key)
        try:
            html = self._engine().render(key, template, payload, self.max_output_bytes)
        except quickjs.JSException as exc:
            message = str(exc).partition("\n")[0]
            if message.startswith(_LIMIT_FAILURES):
                self._local.engine = None
            if message == _LOST_ERROR:
                message = "out of memory (or the template threw null)"
            raise RenderError(message) from exc
        except UnicodeDecodeError as exc:  # the output held a lone surrogate
            raise RenderError("template output is not valid text") from exc
        finally:
            self._leave(key, started)
        # QuickJS hands back None, not a string, when copying the output out runs out of memory.
        if not isinstance(html, str):
            raise RenderError("template output could not be read")
        if len(html.encode("utf-8")) > self.max_output_bytes:
            raise RenderError(f"template output exceeds {self.max_output_bytes} bytes")
        return html

    def _enter(self, key: bytes) -> float:
        """Refuse a template version known to run away; else note this render's start."""
        now = time.monotonic()
        with self._guard:
            starts = self._running.setdefault(key, [])
            if key not in self._runaway and starts and now - min(starts) > self.runaway_after:
                self._runaway.add(key)
            if key in self._runaway:
                raise RenderError("template ran away before (a render never finished)")
            starts.append(now)
            return now

    def _leave(self, key: bytes, started: float) -> None:
        with self._guard:
            starts = self._running[key]
            starts.remove(started)
            if not starts:
                del self._running[key]

    def _engine(self) -> _Engine:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = self._local.engine = _Engine(
                time_limit_ms=self.time_limit_ms, memory_limit_bytes=self.memory_limit_bytes,
                translations_json=self._translations_json,
                currencies_json=self._currencies_json)
        return engine

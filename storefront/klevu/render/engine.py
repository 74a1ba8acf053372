"""Klevu's ``templates.base`` rendered on the server with the semantics of Klevu's browser library.

Klevu templates are JavaScript (an Underscore-style dialect, ``js/template.js``) written for
browsers, so they run in V8, Chromium's engine, with its ICU: ``Intl``, ``toLocaleString`` and
``localeCompare`` format as a visitor's browser set to the shop's locale would
(``js/locale.js``); a Chromium test holds the two to the same output. Why V8 and not QuickJS:
docs/performance.md, "Banner rendering".

Sandbox: no host objects (no I/O, network, timers or Python callbacks), only ECMAScript
built-ins, the helpers and the data, as JSON. Each call has a time limit after which V8 stops
the template wherever it is (a backtracking regular expression too), each engine a memory
limit, and built-ins are frozen so one template cannot change what the next sees. Every
failure is one ``RenderError``, on which the caller shows the shop's own banner; a template
stopped by a limit ``QUARANTINE_AFTER`` times fails at once from then on (logged once).

Threads: engines are pooled, each with its own compiled templates; a render takes an idle
engine (or starts one), so renders on different threads run in parallel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources
from typing import Any

from py_mini_racer import JSEvalException, JSFunction, JSOOMException, JSTimeoutException, MiniRacer
from py_mini_racer._exc import JSTerminatedException

from .sanitize import sanitize_banner_html, scope_css

# The banner code gets everything that turns a config into safe markup from this module.
__all__ = [
    "RenderError",
    "TemplateQuarantined",
    "TemplateRenderer",
    "sanitize_banner_html",
    "scope_css",
]

log = logging.getLogger(__name__)

# Loaded into every engine, in this order: the dialect, the helpers, the locale defaults, the
# hardening that freezes them all, and the set-up that calls them (also run by the Chromium
# parity test, on the same files).
ENGINE_SCRIPTS = ("template.js", "helpers.js", "locale.js", "harden.js", "start.js")
_ENGINE_SOURCES = tuple(
    resources.files(__package__).joinpath("js", name).read_text(encoding="utf-8")
    for name in ENGINE_SCRIPTS
)

# Nothing may run after a render returns. mini-racer installs timers in every context
# (`setTimeout` on Atomics.waitAsync), and promise jobs and finalizer callbacks run after the
# call that queued them, outside its time limit, where V8 cannot be stopped any more: an
# endless loop there would hold the engine for good. So timers and every built-in that
# queues later work go, template.js refuses `async`, `await` and `import` in template code,
# and harden.js refuses code made from strings. Shared memory and WebAssembly go too: their
# memory lives outside the JavaScript heap. Browsers have all of these; no banner's HTML
# depends on them.
_REMOVE_DEFERRED_WORK = (
    "setTimeout = clearTimeout = __timer_manager = __TimerManager = undefined;"
    "delete Array.fromAsync;"
    + "".join(
        f"delete globalThis.{name};"
        for name in (
            "Promise",
            "FinalizationRegistry",
            "AsyncDisposableStack",
            "SharedArrayBuffer",
            "Atomics",
            "WebAssembly",
        )
    )
)

# Template versions kept compiled per engine. A page shows a handful of banners; configs
# change rarely. Compiled templates live inside the engine, under its memory limit.
COMPILED_PER_ENGINE = 32

# Limit failures of one template version after which it is refused without running.
QUARANTINE_AFTER = 3

_OUT_OF_MEMORY = "memory limit reached: out of memory"

# V8 reports an exception as "<where>:<line>: <Name>: <message>" and then the source excerpt.
_ERROR_LOCATION = re.compile(r"^[^:\n]*:\d+: ")


# Where a JavaScript error happened in the compiled template function: its frame in V8's stack
# ("eval at compileKlevuTemplate (...), <anonymous>:7:16"), or, for a syntax error, the line V8
# puts first ("undefined:7: SyntaxError: ...").
_JS_LINE = re.compile(
    r"compileKlevuTemplate \([^)]*\), <anonymous>:(\d+)|^undefined:(\d+): ", re.MULTILINE
)
# js/template.js: the template's text starts on line 6 of the function V8 compiles (the
# `new Function` wrapper, its inner function, the var and with lines come first).
_FIRST_TEMPLATE_LINE = 6
_DELIMITERS = re.compile(r"<%-([\s\S]+?)%>|<%=([\s\S]+?)%>|<%([\s\S]+?)%>")


@cache
def helper_names() -> frozenset[str]:
    """The helpers a template may call (``helper.<name>``), asked of the engine itself."""
    racer = _new_racer()
    try:
        for source in _ENGINE_SOURCES[:2]:
            racer.eval(source)
        names = racer.eval("Object.keys(makeKlevuHelper('{}', '{}')({}).helper).join(',')")
    finally:
        racer.close()
    return frozenset(str(names).split(","))


def template_line(template: str, error: BaseException) -> int | None:
    """The template line a ``RenderError`` points at, for people fixing a template.

    V8 reports lines of the function js/template.js compiles, in which literal text keeps
    no line breaks and each ``<% %>`` adds one before and after its code; this walks the
    template the same way to map the reported line back.
    """
    found = _JS_LINE.search(str(error.__cause__ or error))
    if not found:
        return None
    wanted = int(found.group(1) or found.group(2))
    generated, line, index = _FIRST_TEMPLATE_LINE, 1, 0
    for match in _DELIMITERS.finditer(template):
        line += template.count("\n", index, match.start())
        code = next(group for group in match.groups() if group is not None)
        generated += 1
        if generated <= wanted <= generated + code.count("\n"):
            return line + wanted - generated  # "<%", "<%=", "<%-" hold no line break
        generated += code.count("\n") + 1
        line += match.group(0).count("\n")
        index = match.end()
    return line + (template.count("\n", index) if wanted > generated else 0)


class RenderError(Exception):
    """The template produced no usable banner: show the shop's own instead."""


class TemplateQuarantined(RenderError):
    """The template version kept hitting the limits; it is no longer run (logged once)."""


class _LimitReached(RenderError):
    """A time or memory limit stopped the render (counted towards quarantine)."""


class _EngineSpent(_LimitReached):
    """The engine cannot be trusted with another template: it is replaced."""


class _Engine:
    """One V8 isolate with the Klevu dialect loaded."""

    def __init__(
        self,
        *,
        time_limit_ms: int,
        memory_limit_bytes: int,
        max_string_chars: int,
        translations_json: str,
        currencies_json: str,
        locale: str,
    ):
        racer = _new_racer()
        racer.set_hard_memory_limit(memory_limit_bytes)
        racer.eval(_REMOVE_DEFERRED_WORK)
        for source in _ENGINE_SOURCES:
            racer.eval(source)
        self._render_tools = _function(racer, "startKlevuEngine")(
            translations_json, currencies_json, locale, max_string_chars
        )
        self._timeout_s = time_limit_ms / 1000
        self._memory_limit_bytes = memory_limit_bytes
        self._compile = _function(racer, "compileKlevuTemplate")
        self._render = _function(racer, "renderKlevuTemplate")
        self._compiled: OrderedDict[bytes, Any] = OrderedDict()
        self._stuck = False
        self.racer = racer

    def render(self, key: bytes, template: str, payload: str, max_chars: int) -> Any:
        try:
            compiled = self._compiled.get(key)
            if compiled is None:
                compiled = self._compile(template, timeout_sec=self._timeout_s)
                self._compiled[key] = compiled
                if len(self._compiled) > COMPILED_PER_ENGINE:
                    self._compiled.popitem(last=False)
            else:
                self._compiled.move_to_end(key)
            html = self._render(
                compiled, self._render_tools, payload, max_chars, timeout_sec=self._timeout_s
            )
        except JSTimeoutException as exc:
            message = f"time limit reached: interrupted after {self._timeout_s * 1000:.0f} ms"
            if not self._settled():
                self._stuck = True
                raise _EngineSpent(message) from exc
            if self._over_memory_limit():
                raise _EngineSpent(message) from exc
            # V8 unwound the template; what it left behind, the next render clears (template.js).
            raise _LimitReached(message) from exc
        except (JSOOMException, JSTerminatedException) as exc:
            raise _EngineSpent(_OUT_OF_MEMORY) from exc
        except JSEvalException as exc:
            if self.racer.was_hard_memory_limit_reached() or self._over_memory_limit():
                raise _EngineSpent(_OUT_OF_MEMORY) from exc
            message = _ERROR_LOCATION.sub("", str(exc).partition("\n")[0])
            if message.startswith("EngineSpentError"):
                raise _EngineSpent(message) from exc
            raise RenderError(message) from exc
        if self._over_memory_limit():
            raise _EngineSpent(_OUT_OF_MEMORY)
        return html

    def _over_memory_limit(self) -> bool:
        """Whether the last call took the heap past the limit, garbage included.

        V8 checks the limit after each garbage collection only, so a render that makes one big
        object (a 256 MiB string, read once) and drops it could pass between two collections;
        the heap holds it until the next one. A heap past half the limit is collected here,
        so each render starts below half and only a render that itself allocated more than
        half the limit (a banner needs well under 1 MiB) ends up past the limit.
        """
        used = self.racer.heap_stats()["used_heap_size"]
        if used > self._memory_limit_bytes:
            return True
        if used > self._memory_limit_bytes // 2:
            self.racer.low_memory_notification()
        return False

    def _settled(self) -> bool:
        """Whether V8 has finished the interrupted call, so the next one starts at once.

        The time limit answers the caller at once, while V8 stops the template a moment later
        (later still on a busy machine): a render sent before that would wait its turn and
        spend its own time limit waiting.
        """
        try:
            self.racer.eval("0", timeout_sec=max(1.0, 4 * self._timeout_s))
        except JSEvalException:
            return False
        return True

    def close(self) -> None:
        if self._stuck:
            # Closing waits for V8, which did not come back: keep it, rather than a thread.
            _STUCK_ENGINES.append(self)
            log.error("a banner engine did not stop after its time limit; it is set aside")
        else:
            self.racer.close()


# Engines that never came back from an interrupted template (none has been seen: V8 stops
# loops, regular expressions and the guarded built-ins). Referenced so that no garbage
# collection tries to close them, which would wait forever.
_STUCK_ENGINES: list[_Engine] = []


def _new_racer() -> MiniRacer:
    """A MiniRacer with an event loop of its own.

    mini-racer adopts the calling thread's running asyncio loop, if there is one, and then
    refuses time limits on calls from that thread; a new thread never has one.
    """
    _start_v8()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="v8-start") as starter:
        return starter.submit(MiniRacer).result()


_v8_started_in: int | None = None  # the pid of the process whose V8 has made its first isolate
_v8_starting = threading.Lock()


def _start_v8() -> None:
    """Make this process's first V8 isolate alone, before any other thread can make one.

    The first isolate sets up V8's process-wide memory pools, and first isolates made on
    several threads at once race there: the process dies on ``Check failed:
    !IsConfigurablePoolInitialized()`` (SIGTRAP), with every request it was serving. Measured
    with 8 threads each making an isolate in a new process: 3 crashes in 100 processes; 0 in
    100 once one isolate had been made alone first. Per pid: a forked child starts its own.
    """
    global _v8_started_in
    if _v8_started_in == os.getpid():
        return
    with _v8_starting:
        if _v8_started_in != os.getpid():
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="v8-start") as starter:
                starter.submit(MiniRacer).result().close()
            _v8_started_in = os.getpid()


def _function(racer: MiniRacer, name: str) -> JSFunction:
    function = racer.eval(name)
    assert isinstance(function, JSFunction), name
    return function


class TemplateRenderer:
    """Renders Klevu banner templates; one instance serves every thread of the app.

    ``time_limit_ms`` is wall-clock time for each call into the engine (compiling a new
    template version and rendering are separate calls); V8 is stopped wherever it is when the
    limit passes. ``memory_limit_bytes`` bounds each engine, compiled templates included
    (there is one engine per render running at the same moment). ``locale`` is the default of
    every locale-sensitive built-in (a BCP 47 tag). ``translations`` feeds
    ``helper.translate``; ``currencies`` are the shop's registered formats for
    ``helper.processCurrency`` (JSv2's currency map: ``string``, ``format``, ``atEnd``,
    ``precision``, ``decimal``, ``thousand``, ``grouping``), checked by
    ``config.currency_formats``.
    """

    def __init__(
        self,
        *,
        time_limit_ms: int = 250,
        memory_limit_bytes: int = 32 << 20,
        max_template_bytes: int = 64 << 10,
        max_output_bytes: int = 256 << 10,
        locale: str = "en-US",
        translations: Mapping[str, str] | None = None,
        currencies: Mapping[str, Mapping[str, Any]] | None = None,
        sanitize: bool = True,
    ):
        self.time_limit_ms = time_limit_ms
        self.sanitize = sanitize  # False only in tests (STOREFRONT_UNSAFE_NO_SANITIZE)
        self.memory_limit_bytes = memory_limit_bytes
        self.max_template_bytes = max_template_bytes
        self.max_output_bytes = max_output_bytes
        self.locale = locale
        self._translations_json = json.dumps(dict(translations or {}))
        self._currencies_json = json.dumps(
            {code: dict(fmt) for code, fmt in (currencies or {}).items()}
        )
        self._idle: list[_Engine] = []
        self._warming = False
        # Quarantine: limit failures per template version, and the versions no longer run.
        self._limit_failures: dict[bytes, int] = {}
        self._quarantined: set[bytes] = set()
        self._guard = threading.Lock()

    @property
    def max_string_chars(self) -> int:
        """The longest string a built-in may make in one step: a one-byte string of this length
        fills half the memory limit, a two-byte one all of it (js/harden.js)."""
        return self.memory_limit_bytes // 2

    def render(
        self, template: str, data: Mapping[str, Any], *, data_local: Any = None, scope: Any = None
    ) -> str:
        """Sanitized banner HTML wrapped in ``<div class="klevuWrap">``.

        The template is called as ``(data, dataLocal, helper, scope)``; ``data_local`` and
        ``scope`` are optional JSON-able values. Omitted, they are what JSv2 passes: ``data``
        itself, and the engine's own scope object (see ``js/helpers.js``).
        Raises ``RenderError`` when the template cannot produce a banner.
        """
        html = self.render_raw(template, data, data_local=data_local, scope=scope)
        if self.sanitize:
            html = sanitize_banner_html(html)
        return f'<div class="klevuWrap">{html}</div>'

    def render_raw(
        self, template: str, data: Mapping[str, Any], *, data_local: Any = None, scope: Any = None
    ) -> str:
        """What the template itself prints, before sanitizing: what Klevu's library would put
        in a browser's page, and what the Chromium parity test compares."""
        payload = json.dumps(
            {
                key: value
                for key, value in (("data", data), ("dataLocal", data_local), ("scope", scope))
                if value is not None
            },
            allow_nan=False,
        )
        return self._run(template, payload)

    def _run(self, template: str, payload: str) -> str:
        try:
            source = template.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RenderError("template is not valid text") from exc
        if len(source) > self.max_template_bytes:
            raise RenderError(f"template exceeds {self.max_template_bytes} bytes")
        key = hashlib.sha256(source).digest()
        if key in self._quarantined:
            raise TemplateQuarantined("template quarantined: it kept hitting the limits")
        engine = self._checkout()
        spent = False
        try:
            html = engine.render(key, template, payload, self.max_output_bytes)
        except _LimitReached as exc:
            spent = isinstance(exc, _EngineSpent)
            self._count_limit_failure(key)
            raise
        finally:
            if spent:
                engine.close()
            else:
                self._checkin(engine)
        if not isinstance(html, str):  # `renderKlevuTemplate` only ever returns a string
            raise RenderError("template output could not be read")
        if len(html.encode("utf-8", "surrogatepass")) > self.max_output_bytes:
            raise RenderError(f"template output exceeds {self.max_output_bytes} bytes")
        return html

    def _count_limit_failure(self, key: bytes) -> None:
        with self._guard:
            failures = self._limit_failures[key] = self._limit_failures.get(key, 0) + 1
            if failures < QUARANTINE_AFTER:
                return
            del self._limit_failures[key]
            self._quarantined.add(key)
        log.warning(
            "banner template %s quarantined after %d renders stopped by its limits; "
            "the shop's own banner shows instead",
            key.hex()[:12],
            failures,
        )

    def warm_up(self) -> None:
        """Starts an engine ahead of the first banner.

        A process's first engine loads V8 and ICU's data from disk: from 50 ms to a second on a
        busy machine, which the first page's banner deadline should not pay. Later engines
        take about 20 ms.
        """
        with self._guard:
            if self._idle:
                return
        self._checkin(self._new_engine())

    def warm_up_soon(self) -> None:
        """``warm_up`` on a thread of its own, once (the first page with banners calls this)."""
        if self._warming:  # every banner page asks: most need not take the lock to hear no
            return
        with self._guard:
            if self._warming:
                return
            self._warming = True
        threading.Thread(target=self.warm_up, name="banner-engine-warm-up", daemon=True).start()

    def _checkout(self) -> _Engine:
        with self._guard:
            if self._idle:
                return self._idle.pop()  # the most recently used: its templates are compiled
        return self._new_engine()

    def _checkin(self, engine: _Engine) -> None:
        with self._guard:
            self._idle.append(engine)

    def _new_engine(self) -> _Engine:
        return _Engine(
            time_limit_ms=self.time_limit_ms,
            memory_limit_bytes=self.memory_limit_bytes,
            max_string_chars=self.max_string_chars,
            translations_json=self._translations_json,
            currencies_json=self._currencies_json,
            locale=self.locale,
        )

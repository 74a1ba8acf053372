"""A per-request trace of what one page view asked Klevu and what came back.

The page inspector tells the story of a page view from these notes, so the code that does the
work only has to say what it saw, in one line, at the point where it saw it:
``note("config", metadata=...)``. Nothing is recorded unless the request started a trace
(``begin``), so with the inspector off a note costs one lookup.

Banners are fetched on a thread pool; ``carry`` runs a function in a copy of the request's
context, so notes made there land in the same trace, tagged with the banner they belong to.

Beside the notes, ``timed(step)`` adds a block's time to the request's ``Timings`` (when the
shop started them: ``time_request``), which the shop sends as a ``Server-Timing`` header, so
what segments, config, search and render took shows in the browser next to the page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import g

T = TypeVar("T")

# Facts every note made in this context carries (e.g. which banner a pool thread works on).
_scope: ContextVar[dict[str, Any] | None] = ContextVar("storefront_trace_scope", default=None)
# The request's ``Timings`` (``time_request``): found by a ``timed`` block in one lookup, on the
# request's thread and on the pool's (``carry`` copies the context). Each request sets its own.
_timings: ContextVar[Timings | None] = ContextVar("storefront_trace_timings", default=None)
# Notes held back by ``tentative`` until its block is done.
_held: ContextVar[list[tuple[str, dict[str, Any]]] | None] = ContextVar(
    "storefront_trace_held", default=None
)


@dataclass(frozen=True)
class Note:
    step: str
    at_ms: float  # since the request began
    facts: dict[str, Any]


@dataclass
class Trace:
    started: float = field(default_factory=time.perf_counter)
    notes: list[Note] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, step: str, facts: dict[str, Any]) -> None:
        at_ms = round((time.perf_counter() - self.started) * 1000, 1)
        with self._lock:
            self.notes.append(Note(step, at_ms, facts))

    def find(self, step: str, **match: Any) -> list[Note]:
        with self._lock:
            return [
                n
                for n in self.notes
                if n.step == step and all(n.facts.get(k) == v for k, v in match.items())
            ]


@dataclass
class Timings:
    """Seconds spent per step in one request, summed over the page's banners (which run in
    parallel: a step's sum may exceed the page's time)."""

    spent: dict[str, list[float]] = field(default_factory=dict)  # step → [seconds, count]
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, step: str, seconds: float) -> None:
        with self._lock:
            total = self.spent.setdefault(step, [0.0, 0])
            total[0] += seconds
            total[1] += 1

    def header(self) -> str:
        """The ``Server-Timing`` value: ``config;dur=1.2;desc="n=2", ...`` (how many times)."""
        with self._lock:
            return ", ".join(
                f'{step};dur={seconds * 1000:.1f};desc="n={count}"'
                for step, (seconds, count) in self.spent.items()
            )


def time_request() -> Timings:
    """Start summing the current request's ``timed`` steps."""
    timings = Timings()
    _timings.set(timings)
    return timings


def timings() -> Timings | None:
    """The current request's ``Timings``, if it is timed."""
    return _timings.get()


class timed:  # lower case: used as a function, ``with timed("render"):``
    """Add the block's wall time to the request's ``step``, if the request is timed.

    A class, not a ``contextmanager`` generator: a warm banner page times two steps, and the
    generator's machinery cost more than the clock reads."""

    __slots__ = ("started", "step", "timings")

    def __init__(self, step: str):
        self.step = step

    def __enter__(self) -> None:
        self.timings: Timings | None = _timings.get()
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        if self.timings is not None:
            self.timings.add(self.step, time.perf_counter() - self.started)


def begin() -> Trace:
    """Start tracing the current request."""
    g.trace = Trace()
    return g.trace


def current() -> Trace | None:
    """The request's trace, or None (not traced, or outside an app context). Through
    ``_get_current_object`` (the proxies' documented way to the object behind them), which
    raises ``RuntimeError`` outside one (asking ``has_app_context`` first cost two more calls):
    each of ``g``'s own lookups goes through four Python calls, and a banner page asks twice."""
    try:
        page = g._get_current_object()
    except RuntimeError:
        return None
    return page.get("trace")


def note(step: str, **facts: Any) -> None:
    """Record what ``step`` saw, if this request is traced; never raises into the caller."""
    trace = current()
    if trace is None:
        return
    facts = {**(_scope.get() or {}), **facts}
    held = _held.get()
    if held is None:
        trace.add(step, facts)
    else:
        held.append((step, facts))


@contextmanager
def tentative() -> Iterator[None]:
    """Notes made inside count only if the block ends without an exception: a try that is
    given up and redone elsewhere (a warm page's cache-only try at a banner) must not tell
    the story twice."""
    held: list[tuple[str, dict[str, Any]]] = []
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)
    trace = current()
    if trace is not None:
        for step, facts in held:
            trace.add(step, facts)


def carry(fn: Callable[..., T], **scope: Any) -> Callable[..., T]:
    """``fn`` to be run on another thread, in a copy of this context, its notes tagged with
    ``scope``. One copy per call: a context cannot be entered by two threads at once. A
    request neither traced (the inspector off) nor timed has nothing to carry: ``fn`` runs
    as it is."""
    if current() is None and _timings.get() is None:
        return fn
    context = copy_context()

    def scoped(*args: Any, **kwargs: Any) -> T:
        _scope.set({**(_scope.get() or {}), **scope})
        return fn(*args, **kwargs)

    return lambda *args, **kwargs: context.run(scoped, *args, **kwargs)

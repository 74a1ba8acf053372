"""Banner rendering: the figures behind docs/performance.md, "Banner rendering".

    .venv/bin/python -m bench.bench_render            # 30-50 s on 2 shared cores

The shop renders banners in V8 (mini-racer); it used QuickJS before. Both engines run here in
the same run, on the same template and data, and every figure is printed as a ratio to QuickJS
measured alongside it, because absolute times on a shared machine say little. QuickJS runs
the same JavaScript files the shop loads, except the locale layer (QuickJS has no Intl), with a
two-line stand-in for `String.prototype.isWellFormed`, which it lacks.

A page view costs one render per banner when every view renders ("answers cache off"); with
Klevu's answers cached, a banner is rendered once per answer and reused ("answers cache on",
modelled as one render per ANSWER_REUSE page views plus a dictionary look-up each view).

Sandbox probes run each attack in a child process, so an attack an engine cannot stop costs a
timeout, not the bench. Linux only (resident memory is read from /proc).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# The engine layer below TemplateRenderer is measured too, so the bench reaches past the
# public interface.
from storefront.klevu.render.engine import (
    _ENGINE_SOURCES,
    ENGINE_SCRIPTS,
    TemplateRenderer,
    sanitize_banner_html,
)
from tests.helpers import SANDBOX_PROBES, sandbox_probe_template

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "unit" / "template_corpus"
TEMPLATE = (CORPUS / "klevu_reference.tmpl").read_text(encoding="utf-8")  # 12 products
DATA = json.loads((CORPUS / "banner.json").read_text(encoding="utf-8"))["data"]
PAYLOAD = json.dumps({"data": DATA})
TIME_LIMIT_MS, MEMORY_LIMIT_BYTES = 250, 32 << 20  # the shop's defaults
MAX_CHARS = 256 << 10
ANSWER_REUSE = 20  # page views served from one cached Klevu answer
PROBE_TIMEOUT_S = 4.0


def per_call_us(call: Callable[[], object], *, number: int) -> float:
    started = time.perf_counter()
    for _ in range(number):
        call()
    return (time.perf_counter() - started) / number * 1e6


def compare(
    baseline: Callable[[], object],
    other: Callable[[], object],
    *,
    rounds: int = 7,
    number: int = 30,
) -> tuple[float, float, float]:
    """Median microseconds per call of `baseline` and `other`, and the median of their ratios.

    The two are timed in alternating short blocks so that both run under the same load: on a
    machine shared with other workers the load changes from one second to the next, and timing
    one after the other compares two different machines.
    """
    base_times, other_times, ratios = [], [], []
    for _ in range(rounds):
        base_times.append(per_call_us(baseline, number=number))
        other_times.append(per_call_us(other, number=number))
        ratios.append(other_times[-1] / base_times[-1])
    return (
        statistics.median(base_times),
        statistics.median(other_times),
        statistics.median(ratios),
    )


def resident_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<50} {value:>12}  {note}")


# --- QuickJS, as the shop ran it before -------------------------------------------------------

QUICKJS_SHIMS = """String.prototype.isWellFormed = function () {
    var lone = /[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?:^|[^\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]/;
    return !lone.test(this);
};"""


class QuickJSRenderer:
    """What the shop's renderer did with QuickJS: compile once, render, sanitize, wrap."""

    def __init__(self) -> None:
        import quickjs

        context = quickjs.Context()
        context.set_memory_limit(MEMORY_LIMIT_BYTES)
        context.eval(QUICKJS_SHIMS)
        for name, source in zip(ENGINE_SCRIPTS, _ENGINE_SOURCES, strict=True):
            if name not in ("locale.js", "start.js"):
                context.eval(source)
        self.render_tools = context.get("makeKlevuHelper")("{}", "{}")
        context.get("hardenKlevuEngine")(MEMORY_LIMIT_BYTES // 2)
        context.set_time_limit(TIME_LIMIT_MS / 1000)
        self.compile = context.get("compileKlevuTemplate")
        self.run = context.get("renderKlevuTemplate")
        self.compiled = self.compile(TEMPLATE)
        self.context = context

    def engine_call(self) -> str:
        return self.run(self.compiled, self.render_tools, PAYLOAD, MAX_CHARS)

    def render(self) -> str:
        html = self.run(self.compiled, self.render_tools, json.dumps({"data": DATA}), MAX_CHARS)
        return f'<div class="klevuWrap">{sanitize_banner_html(html)}</div>'


class V8Renderer:
    """The shop's renderer, and the engine call inside it."""

    def __init__(self) -> None:
        self.renderer = TemplateRenderer(
            time_limit_ms=TIME_LIMIT_MS, memory_limit_bytes=MEMORY_LIMIT_BYTES
        )
        self.renderer.render(TEMPLATE, DATA)
        [self.engine] = self.renderer._idle
        self.key = next(iter(self.engine._compiled))

    def engine_call(self) -> str:
        return str(
            self.engine._render(
                self.engine._compiled[self.key],
                self.engine._render_tools,
                PAYLOAD,
                MAX_CHARS,
                timeout_sec=1.0,
            )
        )

    def render(self) -> str:
        return self.renderer.render(TEMPLATE, DATA)


def page_views(render: Callable[[], str], *, cached: bool) -> Callable[[], None]:
    """ANSWER_REUSE page views of one banner, with or without the answers cache."""

    def views() -> None:
        cache: dict[str, str] = {}
        for _ in range(ANSWER_REUSE):
            if not cached:
                render()
                continue
            key = PAYLOAD  # the answer the banner was rendered from
            if key not in cache:
                cache[key] = render()

    return views


def cost_figures() -> None:
    print(
        f"Per banner: V8 (now) vs QuickJS (before); ratios to QuickJS measured alongside\n"
        f"  (12-product banner; {ANSWER_REUSE} page views per cached answer)"
    )
    quickjs, v8 = QuickJSRenderer(), V8Renderer()
    assert quickjs.engine_call() == v8.engine_call()
    for _ in range(50):
        v8.render()  # let the JIT warm up
    for label, old, new, per in [
        ("engine call, template compiled", quickjs.engine_call, v8.engine_call, 1),
        ("TemplateRenderer.render (+ JSON, sanitize, wrap)", quickjs.render, v8.render, 1),
        (
            "page view, answers cache off",
            page_views(quickjs.render, cached=False),
            page_views(v8.render, cached=False),
            ANSWER_REUSE,
        ),
        (
            "page view, answers cache on",
            page_views(quickjs.render, cached=True),
            page_views(v8.render, cached=True),
            ANSWER_REUSE,
        ),
    ]:
        base, other, ratio = compare(old, new, number=max(2, 30 // per))
        row(label, f"{other / per:8.0f} us", f"x{ratio:.2f} (QuickJS: {base / per:.0f} us)")
    _, v8_cached, ratio = compare(
        page_views(quickjs.render, cached=False), page_views(v8.render, cached=True), number=2
    )
    row(
        "page view: V8 cache on, vs QuickJS cache off",
        f"{v8_cached / ANSWER_REUSE:8.0f} us",
        f"x{ratio:.2f}",
    )

    started = time.perf_counter()
    for _ in range(5):
        QuickJSRenderer()
    quickjs_start = (time.perf_counter() - started) / 5
    started = time.perf_counter()
    for _ in range(5):
        V8Renderer()
    v8_start = (time.perf_counter() - started) / 5
    row(
        "new engine, loaded and first render",
        f"{v8_start * 1000:8.1f} ms",
        f"x{v8_start / quickjs_start:.1f} (QuickJS: {quickjs_start * 1000:.1f} ms)",
    )

    before = resident_kib()
    quickjs_engines = [QuickJSRenderer() for _ in range(10)]
    quickjs_kib = (resident_kib() - before) / len(quickjs_engines)
    before = resident_kib()
    v8_engines = [V8Renderer() for _ in range(10)]
    v8_kib = (resident_kib() - before) / len(v8_engines)
    row(
        "resident memory per engine (10 engines)",
        f"{v8_kib:8.0f} KiB",
        f"x{v8_kib / quickjs_kib:.1f} (QuickJS: {quickjs_kib:.0f} KiB)",
    )
    heap = v8.engine.racer.heap_stats()["total_heap_size"] >> 10
    row("V8 heap of an engine after renders", f"{heap:8.0f} KiB")


# --- Sandbox probes ---------------------------------------------------------------------------

# Each probe prints how the attack ended, then whether the same renderer still answers a
# trivial render, then leaves without interpreter teardown, which an engine still running
# would block.
PROBE_RUN = """
import os, sys, time
from bench.bench_render import {engine} as Engine
render, usable = Engine.probe_callables({template!r})
started = time.perf_counter()
try:
    render()
    outcome = "completed"
except Exception as exc:
    outcome = str(exc).splitlines()[0]
print(f"{{(time.perf_counter() - started) * 1000:.0f}} ms  {{outcome[:44]}}", flush=True)
try:
    usable()
    print("; usable", flush=True)
except Exception as exc:
    print("; unusable: " + str(exc)[:40], flush=True)
os._exit(0)
"""


class QuickJSProbe:
    @staticmethod
    def probe_callables(template: str) -> tuple[Callable[[], object], Callable[[], object]]:
        engine = QuickJSRenderer()
        compiled = engine.compile(template)
        return (
            lambda: engine.run(compiled, engine.render_tools, '{"data": {}}', MAX_CHARS),
            lambda: engine.engine_call(),
        )


class V8Probe:
    @staticmethod
    def probe_callables(template: str) -> tuple[Callable[[], object], Callable[[], object]]:
        renderer = TemplateRenderer(
            time_limit_ms=TIME_LIMIT_MS, memory_limit_bytes=MEMORY_LIMIT_BYTES
        )
        renderer.warm_up()
        return (lambda: renderer.render(template, {}), lambda: renderer.render(TEMPLATE, DATA))


def probe(engine: str, code: str) -> str:
    source = PROBE_RUN.format(engine=engine, template=sandbox_probe_template(code))
    try:
        done = subprocess.run(
            [sys.executable, "-c", source],
            cwd=ROOT,  # where `bench` is a package
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
        output = done.stdout or done.stderr.strip().splitlines()[-1]
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode() or "not stopped"
        output += f"; still running at {PROBE_TIMEOUT_S:.0f} s"
    return output.replace("\n", "")


def sandbox_probes() -> None:
    print(
        f"\nSandbox probes (limits {TIME_LIMIT_MS} ms / {MEMORY_LIMIT_BYTES >> 20} MiB;"
        " each in a child process)"
    )
    for name, code in SANDBOX_PROBES.items():
        for label, engine in (("QuickJS", "QuickJSProbe"), ("V8", "V8Probe")):
            row(f"{name} [{label}]", "", probe(engine, code))


def main() -> None:
    started = time.perf_counter()
    cost_figures()
    sandbox_probes()
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

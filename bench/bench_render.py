"""Banner rendering: the figures behind docs/performance.md, "Banner rendering".

    .venv/bin/python bench/bench_render.py            # 15-25 s on 2 shared cores

Every figure is printed next to a baseline measured in the same run, because absolute times
on a shared machine say little: compiled render vs compile-every-time, per-thread engines vs
one shared engine, QuickJS vs V8. The V8 part runs only when mini-racer is installed
(`pip install mini-racer`; it is not a dependency of the storefront). Sandbox probes run each
attack in a child process, so an attack an engine cannot stop costs a timeout, not the bench.
Linux only (resident memory is read from /proc).
"""
from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The engine layer below TemplateRenderer is measured too, so the bench reaches past the
# public interface.
from storefront.klevu.render import _ENGINE_SOURCES, TemplateRenderer, _Engine
from storefront.klevu.sanitize import sanitize_banner_html, scope_css

CORPUS = ROOT / "tests" / "unit" / "template_corpus"
TEMPLATE = (CORPUS / "klevu_reference.tmpl").read_text(encoding="utf-8")   # 12 products
DATA = json.loads((CORPUS / "banner.json").read_text(encoding="utf-8"))["data"]
PAYLOAD = json.dumps({"data": DATA})
CSS = """.kuRECS-container { display: grid; gap: 12px } .kuRECS-list { list-style: none; margin: 0 }
.kuRECSItem img { width: 100%; aspect-ratio: 4 / 5; object-fit: cover;
background: url(/img/ph.png) }
@media (max-width: 600px) { .kuRECS-list { grid-template-columns: repeat(2, 1fr) } }""" * 4
LIMITS = {"time_limit_ms": 250, "memory_limit_bytes": 32 << 20}
MAX_CHARS = 256 << 10
PROBE_TIMEOUT_S = 3.0
HAS_V8 = importlib.util.find_spec("py_mini_racer") is not None


def per_call_us(call, *, number: int) -> float:
    started = time.perf_counter()
    for _ in range(number):
        call()
    return (time.perf_counter() - started) / number * 1e6


def compare(baseline, other, *, rounds: int = 9, number: int = 40) -> tuple[float, float, float]:
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
    return (statistics.median(base_times), statistics.median(other_times),
            statistics.median(ratios))


def resident_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<46} {value:>14}  {note}")


# --- QuickJS, as the storefront runs it ----------------------------------------------------

class QuickJSEngine:
    """The storefront's engine, driven call by call (what TemplateRenderer does inside)."""

    def __init__(self):
        self.engine = _Engine(translations_json="{}", currencies_json="{}", **LIMITS)

    def render_compiled(self):
        return self.engine.render(b"bench", TEMPLATE, PAYLOAD, MAX_CHARS)

    def render_compiling(self):
        engine = self.engine
        return engine._render(engine._compile(TEMPLATE), engine._helper, PAYLOAD, MAX_CHARS)

    def empty_call(self):
        return self.engine._context.eval("0")


def quickjs_figures() -> tuple[QuickJSEngine, float]:
    """Prints QuickJS's figures; returns the engine and its resident KiB for the V8 ratios."""
    print("QuickJS (quickjs binding), 12-product banner; ratios to the compiled render")
    quickjs = QuickJSEngine()
    raw_html = quickjs.render_compiled()
    renderer = TemplateRenderer()
    scope = '[data-klevu-banner="k-home-1"]'
    compiled, every_time, ratio = compare(quickjs.render_compiled, quickjs.render_compiling)
    row("render, template compiled once", f"{compiled:8.0f} us", "(baseline)")
    row("render, compiling every time", f"{every_time:8.0f} us", f"x{ratio:.2f}")
    for label, call in [
            ("sanitize the banner HTML (nh3)", lambda: sanitize_banner_html(raw_html)),
            ("TemplateRenderer.render (render+sanitize+wrap)",
             lambda: renderer.render(TEMPLATE, DATA)),
            (f"scope_css, {len(CSS) / 1024:.1f} KiB of CSS, first time",
             lambda: scope_css.__wrapped__(CSS, scope)),
            ("scope_css, same CSS again (cached)", lambda: scope_css(CSS, scope))]:
        _, other, ratio = compare(quickjs.render_compiled, call)
        row(label, f"{other:8.1f} us", f"x{ratio:.3g}")
    created = per_call_us(
        lambda: _Engine(translations_json="{}", currencies_json="{}", **LIMITS), number=20)
    row("new engine (first render on a thread)", f"{created / 1000:8.1f} ms")

    before = resident_kib()
    engines = [QuickJSEngine() for _ in range(20)]
    for each in engines:
        each.render_compiled()
    rss = (resident_kib() - before) / len(engines)
    heap = quickjs.engine._context.memory()["memory_used_size"] / 1024
    row("engine heap after a render (QuickJS count)", f"{heap:8.0f} KiB")
    row("resident memory per engine (20 engines)", f"{rss:8.0f} KiB")
    return quickjs, rss


def threading_figures() -> None:
    print("\nThreads: 4 threads rendering 200 banners, 9 alternating rounds (2 CPU cores)")
    shared_renderer = TemplateRenderer()
    one_thread = ThreadPoolExecutor(max_workers=1)   # QuickJS runtimes cannot change threads

    def shared(template, data):
        return one_thread.submit(shared_renderer.render, template, data).result()

    per_thread = TemplateRenderer().render
    with ThreadPoolExecutor(max_workers=4) as pool:
        def batch(render):
            return lambda: list(pool.map(lambda _: render(TEMPLATE, DATA), range(200)))
        batch(shared)()
        batch(per_thread)()                              # every thread has its engine
        shared_us, per_thread_us, ratio = compare(batch(shared), batch(per_thread),
                                                  rounds=9, number=1)
    one_thread.shutdown()
    row("one shared engine, calls handed to its thread", f"{200e6 / shared_us:8.0f} /s",
        "(baseline)")
    row("an engine per thread (TemplateRenderer)", f"{200e6 / per_thread_us:8.0f} /s",
        f"x{1 / ratio:.2f} banners/s")


# --- V8 (mini-racer), same JavaScript --------------------------------------------------------

class V8Engine:
    """The same three JavaScript files in V8, through mini-racer's API."""

    def __init__(self):
        from py_mini_racer import MiniRacer
        self.racer = MiniRacer()
        self.racer.set_hard_memory_limit(LIMITS["memory_limit_bytes"])
        for source in _ENGINE_SOURCES:
            self.racer.eval(source)
        self.helper = self.racer.eval("makeKlevuHelper('{}')")
        self.racer.eval("hardenKlevuEngine()")
        self.compile = self.racer.eval("compileKlevuTemplate")
        self.render = self.racer.eval("renderKlevuTemplate")

    def run(self, compiled, payload: str = PAYLOAD):
        return self.render(compiled, self.helper, payload, MAX_CHARS,
                           timeout_sec=LIMITS["time_limit_ms"] / 1000)


def v8_figures(quickjs: QuickJSEngine, quickjs_rss_kib: float) -> None:
    if not HAS_V8:
        print("\nV8: skipped (pip install mini-racer to compare)")
        return
    print("\nV8 (mini-racer), same template, same JavaScript; ratios to QuickJS")
    v8 = V8Engine()
    compiled = v8.compile(TEMPLATE)
    for _ in range(50):
        v8.run(compiled)                                      # let the JIT warm up
    for label, ours, theirs in [
            ("render, template compiled once", quickjs.render_compiled, lambda: v8.run(compiled)),
            ("render, compiling every time", quickjs.render_compiling,
             lambda: v8.run(v8.compile(TEMPLATE))),
            ("one empty call into the engine", quickjs.empty_call, lambda: v8.racer.eval("0"))]:
        base, other, ratio = compare(ours, theirs, number=20)
        row(label, f"{other:8.0f} us", f"x{ratio:.2f} (QuickJS: {base:.0f} us)")
    before = resident_kib()
    isolates = [V8Engine() for _ in range(5)]
    for each in isolates:
        each.run(each.compile(TEMPLATE))
    rss = (resident_kib() - before) / len(isolates)
    row("resident memory per engine (5 engines)", f"{rss:8.0f} KiB",
        f"x{rss / quickjs_rss_kib:.1f}")


# --- Sandbox probes ---------------------------------------------------------------------------

PROBES = {
    "endless loop": "while (true) {}",
    "endless loop inside try/catch": "for (;;) { try { while (true) {} } catch (e) {} }",
    "regex backtracking": "/(a+)+$/.test('a'.repeat(40) + 'b')",
    "256 MiB string": "'x'.repeat(Math.pow(2, 28)).length",
    "growing object graph": "var a = []; for (;;) a = [a, {text: 'y'.repeat(100)}]",
    "deep recursion": "(function f() { return f() + 1; })()",
    "sparse array join": "Array(Math.pow(2, 32) - 1).join('')",
    "array-like scan": "[].indexOf.call({length: Math.pow(2, 53)}, 1)",
}

# Each probe prints how the attack ended, then whether the engine still answers a trivial call
# (a stopped attack can leave the engine busy or broken), then leaves without interpreter
# teardown, which an engine still running would block.
QUICKJS_PROBE = """
import os, sys, time
sys.path.insert(0, {root!r})
from storefront.klevu.render import RenderError, TemplateRenderer
renderer = TemplateRenderer()
renderer.render("<p></p>", {{}})
started = time.perf_counter()
try:
    renderer.render("<%= (function () {{ " + {code!r} + " }})() %>", {{}})
    outcome = "completed"
except RenderError as exc:
    outcome = str(exc)
print(f"{{(time.perf_counter() - started) * 1000:.0f}} ms  {{outcome[:40]}}", flush=True)
try:
    renderer.render("<p></p>", {{}})
    print("; engine usable", flush=True)
except RenderError as exc:
    print("; engine unusable: " + str(exc), flush=True)
os._exit(0)
"""

V8_PROBE = """
import os, sys, time
sys.path.insert(0, {root!r})
from bench.bench_render import V8Engine
engine = V8Engine()
compiled = engine.compile("<%= (function () {{ " + {code!r} + " }})() %>")
started = time.perf_counter()
try:
    engine.run(compiled, '{{"data": {{}}}}')
    outcome = "completed"
except Exception as exc:
    outcome = type(exc).__name__ + ": " + str(exc).splitlines()[0]
print(f"{{(time.perf_counter() - started) * 1000:.0f}} ms  {{outcome[:40]}}", flush=True)
try:
    engine.racer.eval("0", timeout_sec=1)
    print("; engine usable", flush=True)
except Exception as exc:
    print("; engine unusable: " + type(exc).__name__, flush=True)
os._exit(0)
"""


def probe(script: str, code: str) -> str:
    source = script.format(root=str(ROOT), code=code)
    try:
        done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S)
        output = done.stdout or done.stderr.strip().splitlines()[-1]
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode() or "not stopped"
        output += f"; still running at {PROBE_TIMEOUT_S:.0f} s"
    return output.replace("\n", "")


def sandbox_probes() -> None:
    engines = {"QuickJS": QUICKJS_PROBE, **({"V8": V8_PROBE} if HAS_V8 else {})}
    print(f"\nSandbox probes (hardened runtime, limits {LIMITS['time_limit_ms']} ms / "
          f"{LIMITS['memory_limit_bytes'] >> 20} MiB)")
    for name, code in PROBES.items():
        for engine, script in engines.items():
            row(f"{name} [{engine}]", "", probe(script, code))


def main() -> None:
    started = time.perf_counter()
    quickjs, quickjs_rss_kib = quickjs_figures()
    threading_figures()
    v8_figures(quickjs, quickjs_rss_kib)
    sandbox_probes()
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

"""TemplateRenderer: compile cache, limits, quarantine, isolation between renders, threads.

What a template prints is covered by the corpus (test_render_corpus.py); this file covers what
the renderer guarantees around it.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storefront.klevu.render import engine as render_module
from storefront.klevu.render.engine import (
    COMPILED_PER_ENGINE,
    QUARANTINE_AFTER,
    RenderError,
    TemplateQuarantined,
    TemplateRenderer,
)
from tests.helpers import SANDBOX_PROBES, sandbox_probe_template

BANNER = json.loads(
    (Path(__file__).parent / "template_corpus" / "banner.json").read_text(encoding="utf-8")
)["data"]
LIST_TEMPLATE = (
    '<ul class="<%= cls %>"><% helper.each(items, function (i, item) { %>'
    '<li class="kuRECSItem" data-id="<%= item.id %>">'
    "<%= helper.escapeHTML(item.name) %>"
    ' <%= helper.processCurrency("EUR", item.price) %></li><% }); %></ul>'
)


def wrapped(html: str) -> str:
    return f'<div class="klevuWrap">{html}</div>'


@pytest.fixture
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def count_compiles(renderer: TemplateRenderer) -> list[str]:
    """Records each template the renderer's (one, reused) engine compiles."""
    renderer.warm_up()
    [engine] = renderer._idle
    compiled_texts: list[str] = []
    compile_in_engine = engine._compile

    def counting(text, **limits):
        compiled_texts.append(text)
        return compile_in_engine(text, **limits)

    engine._compile = counting  # type: ignore[assignment]
    return compiled_texts


# --- compile once per template version ----------------------------------------------------


def test_compiles_each_template_version_once(renderer):
    compiled = count_compiles(renderer)
    first, second = "<p><%= a %></p>", "<p><%= a %>!</p>"
    outputs = [
        renderer.render(first, {"a": 1}),
        renderer.render(first, {"a": 2}),
        renderer.render(second, {"a": 3}),
        renderer.render(first, {"a": 4}),
    ]
    assert outputs == [
        wrapped("<p>1</p>"),
        wrapped("<p>2</p>"),
        wrapped("<p>3!</p>"),
        wrapped("<p>4</p>"),
    ]
    assert compiled == [first, second]


def test_least_recently_used_template_is_compiled_again(renderer):
    compiled = count_compiles(renderer)
    templates = [f"<p>{n}</p>" for n in range(COMPILED_PER_ENGINE + 1)]
    for template in templates:
        renderer.render(template, {})
    renderer.render(templates[-1], {})  # still cached
    renderer.render(templates[0], {})  # evicted by the last one
    assert compiled == [*templates, templates[0]]


# --- limits ------------------------------------------------------------------------------


def test_template_size_is_counted_in_utf8_bytes():
    renderer = TemplateRenderer(max_template_bytes=11)
    assert renderer.render("<p>éé</p>", {}) == wrapped("<p>éé</p>")  # 9 characters, 11 bytes
    with pytest.raises(RenderError, match="template exceeds 11 bytes"):
        renderer.render("<p>éé!</p>", {})  # 10 characters, 12 bytes


def test_output_size_is_counted_in_utf8_bytes():
    renderer = TemplateRenderer(max_output_bytes=100)
    assert renderer.render('<%= "é".repeat(50) %>', {}) == wrapped("é" * 50)  # 100 bytes
    with pytest.raises(RenderError, match="output exceeds 100 bytes"):
        renderer.render('<%= "é".repeat(51) %>', {})  # 102 bytes
    with pytest.raises(RenderError, match="output exceeds 100 characters"):
        renderer.render('<%= "x".repeat(101) %>', {})  # refused before leaving the engine


def test_time_limit_stops_an_endless_loop_promptly():
    renderer = TemplateRenderer(time_limit_ms=50)
    started = time.monotonic()
    with pytest.raises(RenderError, match="interrupted"):
        renderer.render("<% while (true) {} %>", {})
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("probe", list(SANDBOX_PROBES))
def test_every_sandbox_probe_stops_within_the_limits_and_the_engine_goes_on(probe):
    renderer = TemplateRenderer()  # the shop's defaults: 250 ms, 32 MiB
    renderer.warm_up()
    started = time.monotonic()
    with pytest.raises(RenderError):
        renderer.render(sandbox_probe_template(SANDBOX_PROBES[probe]), {})
    # 250 ms, plus V8 unwinding or a new engine, on a loaded machine: generous.
    assert time.monotonic() - started < 3.0
    started = time.monotonic()
    assert renderer.render("<p><%= 1 + 1 %></p>", {}) == wrapped("<p>2</p>")
    assert time.monotonic() - started < 1.0


def test_a_256_mib_string_fails_under_a_32_mib_limit_however_it_is_made():
    renderer = TemplateRenderer(memory_limit_bytes=32 << 20, time_limit_ms=20_000)
    with pytest.raises(RenderError, match="String repeat refused"):
        renderer.render(sandbox_probe_template(SANDBOX_PROBES["256 MiB string"]), {})
    doubled = sandbox_probe_template(SANDBOX_PROBES["256 MiB string, doubled and read"])
    with pytest.raises(RenderError, match="memory limit reached"):
        renderer.render(doubled, {})
    # The same string as garbage of a failing render: the engine is not left over its limit.
    with pytest.raises(RenderError, match="memory limit reached"):
        renderer.render(doubled.replace("return s.indexOf('y')", "s.indexOf('y'); throw 1"), {})
    assert renderer.render("<p>next</p>", {}) == wrapped("<p>next</p>")


def test_an_engine_that_does_not_come_back_is_set_aside_not_waited_for(monkeypatch):
    """Closing an engine waits for V8: one still busy after its limit must not block a page."""
    renderer = TemplateRenderer(time_limit_ms=250)
    renderer.warm_up()
    [engine] = renderer._idle
    monkeypatch.setattr(engine, "_settled", lambda: False)  # as if V8 ignored the interrupt
    with pytest.raises(RenderError, match="time limit reached"):
        renderer.render("<% while (true) {} %>", {})
    assert engine in render_module._STUCK_ENGINES and engine not in renderer._idle
    assert renderer.render("<p>ok</p>", {}) == wrapped("<p>ok</p>")
    render_module._STUCK_ENGINES.remove(engine)
    engine.racer.close()


def test_time_limit_applies_to_templates_not_to_engine_set_up():
    """Building an engine takes 20-80 ms (a process's first up to a second): not a template's
    time."""
    assert TemplateRenderer(time_limit_ms=100).render("<p>ok</p>", {}) == wrapped("<p>ok</p>")


def test_memory_limit_is_per_engine_and_configurable():
    template = '<% var s = "x".repeat(10 << 20); %><%= s.length %>'  # a 10 MiB string
    assert TemplateRenderer(memory_limit_bytes=32 << 20).render(template, {}) == wrapped("10485760")
    with pytest.raises(RenderError, match="String repeat refused: more than 4194304 characters"):
        TemplateRenderer(memory_limit_bytes=8 << 20).render(template, {})
    growing = "<% var a = []; for (var i = 0; i < 6e5; i++) a = [a, {id: i}]; %>"  # ~40 MiB
    roomy = TemplateRenderer(memory_limit_bytes=256 << 20, time_limit_ms=20_000)
    assert roomy.render(growing, {}) == wrapped("")
    with pytest.raises(RenderError, match="memory limit reached: out of memory"):
        TemplateRenderer(memory_limit_bytes=8 << 20, time_limit_ms=20_000).render(growing, {})


# --- what the template sees ----------------------------------------------------------------


def test_translations_table_feeds_helper_translate():
    renderer = TemplateRenderer(translations={"Original price %s": "Prix d'origine : %s"})
    template = (
        '<p><%= helper.translate("Original price %s", helper.processCurrency("EUR", 5)) %>'
        ' | <%= helper.translate("Sold out") %></p>'
    )
    # no records name EUR, so JSv2 has not registered it: the amount, then the code
    assert renderer.render(template, {}) == wrapped("<p>Prix d'origine : 5.00EUR | Sold out</p>")


def test_globals_a_template_creates_are_gone_for_the_next_render(renderer):
    template = '<% seen = (typeof seen === "undefined") ? 1 : seen + 1; %><%= seen %>'
    assert renderer.render(template, {}) == wrapped("1")
    assert renderer.render(template, {}) == wrapped("1")


def test_globals_of_a_render_stopped_by_a_limit_are_gone_for_the_next_render():
    """An interrupt skips the template's `finally`; the next render clears what it left."""
    renderer = TemplateRenderer(time_limit_ms=250)
    with pytest.raises(RenderError, match="interrupted"):
        renderer.render("<% leaked = 1; while (true) {} %>", {})
    assert renderer.render("<%= typeof leaked %>", {}) == wrapped("undefined")


def test_output_stays_inside_the_wrapper(renderer):
    html = renderer.render("</div></div><p>after</p><div>unclosed", {})
    assert html == wrapped("<p>after</p><div>unclosed</div>")


def test_text_that_is_not_unicode_fails_cleanly(renderer):
    with pytest.raises(RenderError, match="not valid text"):
        renderer.render("<%= name %>", {"name": "\ud800"})
    with pytest.raises(RenderError, match="not valid text"):
        renderer.render('<%= "\\ud800" %>', {})
    with pytest.raises(RenderError, match="URIError"):
        renderer.render("<%- name %>", {"name": "\ud800"})
    with pytest.raises(RenderError, match="not valid text"):
        renderer.render("<p>\ud800</p>", {})


def test_data_that_is_not_json_is_a_caller_error(renderer):
    with pytest.raises(ValueError, match="not JSON compliant"):
        renderer.render("<p></p>", {"price": float("nan")})


# --- threads -----------------------------------------------------------------------------


def test_parallel_renders_give_the_serial_results():
    """Banners render in a thread pool: each thread gets its own engine, results never mix."""
    renderer = TemplateRenderer()
    records = BANNER["query"]["klevuRECSItemList"]["result"]
    cases = [
        (
            LIST_TEMPLATE.replace("<ul", f'<ul data-variant="{n % 3}"'),
            {"cls": f"list-{n}", "items": records[n : n + 4]},
        )
        for n in range(8)
    ]
    cases.append(("<%= data.missing.deeper %>", {}))  # a failing banner in the mix
    expected = []
    for template, data in cases:
        try:
            expected.append(renderer.render(template, data))
        except RenderError as exc:
            expected.append(str(exc))

    start = threading.Barrier(8)

    def render(index: int) -> str:
        if index < 8:
            start.wait()
        template, data = cases[index % len(cases)]
        try:
            return renderer.render(template, data)
        except RenderError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(render, range(180)))
    assert results == [expected[i % len(cases)] for i in range(180)]


def test_a_template_that_keeps_hitting_the_limits_is_quarantined_and_logged_once(caplog):
    renderer = TemplateRenderer(time_limit_ms=250)
    hog = '<%= /(a+)+$/.test("a".repeat(40) + "b") %>'
    for _ in range(QUARANTINE_AFTER):
        with pytest.raises(RenderError, match="interrupted") as stopped:
            renderer.render(hog, {})
        assert not isinstance(stopped.value, TemplateQuarantined)
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(TemplateQuarantined, match="quarantined"):
            renderer.render(hog, {})
    assert time.monotonic() - started < 0.1  # refused without running
    quarantines = [r for r in caplog.records if "quarantined" in r.getMessage()]
    assert len(quarantines) == 1
    assert renderer.render("<p>fine</p>", {}) == wrapped("<p>fine</p>")


def test_a_template_failing_for_other_reasons_is_not_quarantined(renderer):
    for _ in range(QUARANTINE_AFTER + 2):
        with pytest.raises(RenderError, match="TypeError"):
            renderer.render("<%= data.missing.deeper %>", {})


def test_nothing_a_template_schedules_runs_after_its_render(renderer):
    """Work running after the call would be out of reach of the time limit, for good."""
    for template, refused in [
        ("<% (async function () { await 0; while (true) {} })() %>", "'async' is not"),
        ("<% Promise.resolve().then(function () { while (true) {} }) %>", "Promise"),
        ("<% new FinalizationRegistry(function () {}) %>", "FinalizationRegistry"),
        ("<% setTimeout(function () { while (true) {} }, 0) %>", "TypeError"),
        ('<% eval("1 + 1") %>', "eval from a string"),
        ('<% (function () {}).constructor("while (true) {}")() %>', "Function from a string"),
        ("<% Array.fromAsync([1]) %>", "TypeError"),
    ]:
        with pytest.raises(RenderError, match=refused):
            renderer.render(template, {})
    assert renderer.render(
        "<p><%= [1, 2].map(function (n) { return n * 2; }) %></p>", {}
    ) == wrapped("<p>2,4</p>")


# --- the shop's locale ---------------------------------------------------------------------


def test_the_shop_locale_is_the_default_of_every_locale_sensitive_built_in():
    renderer = TemplateRenderer(locale="de-DE")
    template = (
        "<%= (1234.5).toLocaleString() %> | <%= new Intl.NumberFormat(undefined, "
        '{style: "currency", currency: "EUR"}).format(2) %> | '
        "<%= Intl.NumberFormat().resolvedOptions().locale %> | "
        "<%= new Date(Date.UTC(2024, 2, 1)).toLocaleDateString(undefined, "
        '{timeZone: "UTC"}) %> | <%= ["b", "ä", "a"].sort(function (x, y) '
        '{ return x.localeCompare(y); }).join("") %> | '
        "<%= new Intl.PluralRules().resolvedOptions().locale %> | "
        '<%= (1234.5).toLocaleString("en-US") %>'
    )
    assert renderer.render(template, {}) == wrapped(
        "1.234,5 | 2,00&nbsp;€ | de-DE | 1.3.2024 | aäb | de | 1,234.5"
    )


def test_locale_defaults_keep_what_a_template_can_see_of_the_built_ins(renderer):
    template = (
        "<%= [new Intl.NumberFormat() instanceof Intl.NumberFormat,"
        " new Intl.Collator().constructor === Intl.Collator,"
        " Intl.NumberFormat.name, Intl.NumberFormat.length,"
        " typeof Intl.DateTimeFormat.supportedLocalesOf,"
        " Intl.DateTimeFormat('en-GB', {timeZone: 'UTC'}).format(0),"
        " (0).toLocaleString.name, ''.localeCompare.length].join(' ') %>"
    )
    assert renderer.render(template, {}) == wrapped(
        "true true NumberFormat 0 function 01/01/1970 toLocaleString 1"
    )

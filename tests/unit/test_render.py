"""TemplateRenderer: compile cache, limits, isolation between renders, threads.

What a template prints is covered by the corpus (test_render_corpus.py); this file covers what
the renderer guarantees around it.
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storefront.klevu.render import COMPILED_PER_THREAD, RenderError, TemplateRenderer

BANNER = json.loads((Path(__file__).parent / "template_corpus" / "banner.json")
                    .read_text(encoding="utf-8"))["data"]
LIST_TEMPLATE = ('<ul class="<%= cls %>"><% helper.each(items, function (i, item) { %>'
                 '<li class="kuRECSItem" data-id="<%= item.id %>">'
                 '<%= helper.escapeHTML(item.name) %>'
                 ' <%= helper.processCurrency("EUR", item.price) %></li><% }); %></ul>')


def wrapped(html: str) -> str:
    return f'<div class="klevuWrap">{html}</div>'


@pytest.fixture
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def count_compiles(renderer: TemplateRenderer) -> list[str]:
    """Records each template the calling thread's engine compiles."""
    engine = renderer._engine()
    compiled_texts: list[str] = []
    compile_in_engine = engine._compile

    def counting(text):
        compiled_texts.append(text)
        return compile_in_engine(text)
    engine._compile = counting
    return compiled_texts


# --- compile once per template version ----------------------------------------------------

def test_compiles_each_template_version_once(renderer):
    compiled = count_compiles(renderer)
    first, second = "<p><%= a %></p>", "<p><%= a %>!</p>"
    outputs = [renderer.render(first, {"a": 1}), renderer.render(first, {"a": 2}),
               renderer.render(second, {"a": 3}), renderer.render(first, {"a": 4})]
    assert outputs == [wrapped("<p>1</p>"), wrapped("<p>2</p>"), wrapped("<p>3!</p>"),
                       wrapped("<p>4</p>")]
    assert compiled == [first, second]


def test_least_recently_used_template_is_compiled_again(renderer):
    compiled = count_compiles(renderer)
    templates = [f"<p>{n}</p>" for n in range(COMPILED_PER_THREAD + 1)]
    for template in templates:
        renderer.render(template, {})
    renderer.render(templates[-1], {})   # still cached
    renderer.render(templates[0], {})    # evicted by the last one
    assert compiled == [*templates, templates[0]]


# --- limits ------------------------------------------------------------------------------

def test_template_size_is_counted_in_utf8_bytes():
    renderer = TemplateRenderer(max_template_bytes=11)
    assert renderer.render("<p>éé</p>", {}) == wrapped("<p>éé</p>")   # 9 characters, 11 bytes
    with pytest.raises(RenderError, match="template exceeds 11 bytes"):
        renderer.render("<p>éé!</p>", {})                            # 10 characters, 12 bytes


def test_output_size_is_counted_in_utf8_bytes():
    renderer = TemplateRenderer(max_output_bytes=100)
    assert renderer.render('<%= "é".repeat(50) %>', {}) == wrapped("é" * 50)  # 100 bytes
    with pytest.raises(RenderError, match="output exceeds 100 bytes"):
        renderer.render('<%= "é".repeat(51) %>', {})                          # 102 bytes
    with pytest.raises(RenderError, match="output exceeds 100 characters"):
        renderer.render('<%= "x".repeat(101) %>', {})   # refused before leaving the engine


def test_time_limit_stops_an_endless_loop_promptly():
    renderer = TemplateRenderer(time_limit_ms=50)
    started = time.monotonic()
    with pytest.raises(RenderError, match="interrupted"):
        renderer.render("<% while (true) {} %>", {})
    assert time.monotonic() - started < 1.0


def test_time_limit_applies_to_templates_not_to_engine_set_up():
    """Building an engine takes ~10 ms of CPU; a tight limit must still let it start."""
    assert TemplateRenderer(time_limit_ms=1).render("<p>ok</p>", {}) == wrapped("<p>ok</p>")


def test_memory_limit_is_per_engine_and_configurable():
    template = '<% var s = "x".repeat(10 << 20); %><%= s.length %>'   # a 10 MiB string
    assert TemplateRenderer(memory_limit_bytes=32 << 20).render(template, {}) == wrapped("10485760")
    with pytest.raises(RenderError, match="out of memory"):
        TemplateRenderer(memory_limit_bytes=8 << 20).render(template, {})


# --- what the template sees ----------------------------------------------------------------

def test_translations_table_feeds_helper_translate():
    renderer = TemplateRenderer(translations={"Original price %s": "Prix d'origine : %s"})
    template = ('<p><%= helper.translate("Original price %s", helper.processCurrency("EUR", 5)) %>'
                ' | <%= helper.translate("Sold out") %></p>')
    assert renderer.render(template, {}) == wrapped("<p>Prix d'origine : EUR 5.00 | Sold out</p>")


def test_globals_a_template_creates_are_gone_for_the_next_render(renderer):
    template = '<% seen = (typeof seen === "undefined") ? 1 : seen + 1; %><%= seen %>'
    assert renderer.render(template, {}) == wrapped("1")
    assert renderer.render(template, {}) == wrapped("1")


def test_engine_stopped_by_a_limit_is_replaced():
    """An interrupt skips the engine's own clean-up; only a new engine forgets the global."""
    renderer = TemplateRenderer(time_limit_ms=50)
    with pytest.raises(RenderError, match="interrupted"):
        renderer.render("<% leaked = 1; while (true) {} %>", {})
    assert renderer.render("<%= typeof leaked %>", {}) == wrapped("undefined")


def test_output_stays_inside_the_wrapper(renderer):
    html = renderer.render("</div></div><p>after</p><div>unclosed", {})
    assert html == wrapped("<p>after</p><div>unclosed</div>")


def test_text_that_is_not_unicode_fails_cleanly(renderer):
    with pytest.raises(RenderError, match="not valid text"):
        renderer.render("<%= name %>", {"name": "\ud800"})
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
    cases = [(LIST_TEMPLATE.replace("<ul", f"<ul data-variant=\"{n % 3}\""),
              {"cls": f"list-{n}", "items": records[n:n + 4]}) for n in range(8)]
    cases.append(("<%= data.missing.deeper %>", {}))           # a failing banner in the mix
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


def test_a_template_whose_render_never_ends_is_refused_at_once_afterwards():
    """QuickJS cannot interrupt a backtracking regex; the guard keeps it to one stuck thread."""
    renderer = TemplateRenderer(time_limit_ms=50)  # runaway after 1 s
    hog = '<%= /(a+)+$/.test("a".repeat(26) + "b") %>'
    first = threading.Thread(target=_swallow, args=(renderer.render, hog, {}))
    first.start()
    time.sleep(1.3)
    started = time.monotonic()
    with pytest.raises(RenderError, match="ran away"):
        renderer.render(hog, {})
    assert time.monotonic() - started < 0.5
    assert renderer.render("<p>fine</p>", {}) == '<div class="klevuWrap"><p>fine</p></div>'
    first.join(60)


def _swallow(fn, *args):
    with contextlib.suppress(RenderError):
        fn(*args)

"""Chromium and the server print every template of the corpus the same way.

The project's own JavaScript (``storefront/klevu/render/js/``: the files the server's engine
loads, in the same order, set up by the same ``start.js``) runs in Chromium, in a dedicated worker
of a page whose language is the shop's locale and whose time zone is the server's. (A worker, as the
hardening freezes every object reachable from the global object, and a page's `window` holds
host objects that cannot be frozen.) Every corpus case with an expected HTML must
come out of Chromium exactly as it comes out of the server's engine, before sanitizing: text,
attributes and their order. Nobody else's code is involved, so this keeps the server's engine
honest about ``Intl``, ``toLocaleString``, ``localeCompare``, ``Date`` parsing and the dialect.

Data-driven from ``tests/unit/template_corpus/``: a case added there is compared here. A case
whose browser output differs by design (a browser page has ``window``, ``fetch``, timers...)
holds Chromium's exact output in ``NAME.browser``. Cases that expect an error are the server's own
limits and refusals (endless loops, memory bombs): a browser page would hang on them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from storefront.klevu.render.engine import ENGINE_SCRIPTS, TemplateRenderer

JS_DIR = Path(__file__).parents[2] / "storefront" / "klevu" / "render" / "js"
CORPUS = Path(__file__).parents[1] / "unit" / "template_corpus"
CASES = sorted(
    path.stem for path in CORPUS.glob("*.tmpl") if (CORPUS / f"{path.stem}.html").exists()
)


def arguments(name: str) -> dict:
    data_file = CORPUS / f"{name}.json"
    if not data_file.exists():
        data_file = CORPUS / "banner.json"
    return json.loads(data_file.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


# The worker: the engine's scripts, then a loop answering render requests.
WORKER_LOOP = """
(function () {
    var renderTools = null;   // not a global: the hardening makes globals read-only
    onmessage = function (event) {
        var request = event.data;
        try {
            if (request.start) {
                // No translations, no registered currencies: the renderer's defaults.
                renderTools = startKlevuEngine("{}", "{}", request.locale,
                                               request.maxStringChars);
                postMessage({timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
                             locale: Intl.NumberFormat().resolvedOptions().locale});
            } else {
                postMessage({html: renderKlevuTemplate(compileKlevuTemplate(request.template),
                                                       renderTools, request.payload,
                                                       request.maxChars)});
            }
        } catch (error) {
            postMessage({error: String(error)});
        }
    };
})();
"""

# Page side: one request at a time, answered by the worker's next message.
ASK_WORKER = """(request) => new Promise((resolve) => {
    window.parityWorker.onmessage = (event) => resolve(event.data);
    window.parityWorker.postMessage(request);
})"""


@pytest.fixture(scope="module")
def chromium(browser: Browser, renderer: TemplateRenderer) -> Iterator[Page]:
    """A page running the engine's scripts in a worker, started like the server's engine."""
    time_zone = renderer.render_raw("<%= Intl.DateTimeFormat().resolvedOptions().timeZone %>", {})
    context = browser.new_context(locale=renderer.locale, timezone_id=time_zone)
    page = context.new_page()
    page.set_content("<!doctype html><title>template parity</title>")
    source = "\n".join((JS_DIR / name).read_text(encoding="utf-8") for name in ENGINE_SCRIPTS)
    page.evaluate(
        "(source) => { window.parityWorker = new Worker(URL.createObjectURL("
        "new Blob([source], {type: 'text/javascript'}))); }",
        source + WORKER_LOOP,
    )
    started = page.evaluate(
        ASK_WORKER,
        {"start": True, "locale": renderer.locale, "maxStringChars": renderer.max_string_chars},
    )
    assert started == {"timeZone": time_zone, "locale": renderer.locale}
    yield page
    context.close()


def test_the_corpus_has_cases_to_compare():
    assert len(CASES) >= 20
    assert {
        "intl_number_format",
        "intl_date_time_format",
        "intl_plural_rules",
        "to_locale_string",
        "locale_compare",
        "date_parsing",
    } <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_chromium_prints_what_the_server_prints(chromium, renderer, name):
    template = (CORPUS / f"{name}.tmpl").read_text(encoding="utf-8")
    args = arguments(name)
    payload = {
        key: value
        for key, value in (
            ("data", args["data"]),
            ("dataLocal", args.get("dataLocal")),
            ("scope", args.get("scope")),
        )
        if value is not None
    }
    answer = chromium.evaluate(
        ASK_WORKER,
        {
            "template": template,
            "payload": json.dumps(payload),
            "maxChars": renderer.max_output_bytes,
        },
    )
    assert "error" not in answer, answer["error"]
    in_chromium = answer["html"]
    on_server = renderer.render_raw(
        template, args["data"], data_local=args.get("dataLocal"), scope=args.get("scope")
    )
    by_design = CORPUS / f"{name}.browser"
    if by_design.exists():
        assert in_chromium == by_design.read_text(encoding="utf-8")
        assert on_server != in_chromium
    else:
        assert in_chromium == on_server

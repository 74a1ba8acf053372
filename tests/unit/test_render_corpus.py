"""Every template in template_corpus/ renders to its expected HTML or fails with its expected error.

The corpus is the behaviour contract of the Klevu dialect on the server: output forms, helpers,
`with (data)` names, the call arguments, the sanitizer's verdict on hostile data and templates,
and each way a template can fail. See template_corpus/README.md for the file conventions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storefront.klevu.render.engine import RenderError, TemplateRenderer

CORPUS = Path(__file__).parent / "template_corpus"
CASES = sorted(path.stem for path in CORPUS.glob("*.tmpl"))


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def _render(renderer: TemplateRenderer, name: str) -> str:
    data_file = CORPUS / f"{name}.json"
    if not data_file.exists():
        data_file = CORPUS / "banner.json"
    arguments = json.loads(data_file.read_text(encoding="utf-8"))
    return renderer.render(
        (CORPUS / f"{name}.tmpl").read_text(encoding="utf-8"),
        arguments["data"],
        data_local=arguments.get("dataLocal"),
        scope=arguments.get("scope"),
    )


def test_every_case_has_exactly_one_expectation():
    for name in CASES:
        expectations = [(CORPUS / f"{name}{suffix}").exists() for suffix in (".html", ".error")]
        assert expectations.count(True) == 1, name


@pytest.mark.parametrize("name", [n for n in CASES if (CORPUS / f"{n}.html").exists()])
def test_renders_expected_html(renderer, name):
    expected = (CORPUS / f"{name}.html").read_text(encoding="utf-8").removesuffix("\n")
    assert _render(renderer, name) == expected


@pytest.mark.parametrize("name", [n for n in CASES if (CORPUS / f"{n}.error").exists()])
def test_fails_with_expected_error_and_renderer_recovers(renderer, name):
    expected = (CORPUS / f"{name}.error").read_text(encoding="utf-8").strip()
    with pytest.raises(RenderError) as failure:
        _render(renderer, name)
    assert expected in str(failure.value)
    # Limits included, a failure leaves the renderer usable for the next banner.
    assert renderer.render("<p><%= 1 + 1 %></p>", {}) == '<div class="klevuWrap"><p>2</p></div>'

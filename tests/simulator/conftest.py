"""Fixtures for the Klevu simulator's tests: an app per test, and small request helpers."""

from __future__ import annotations

import json
import re

import pytest
import quickjs

from storefront.simulator import API_KEY, create_app


@pytest.fixture
def app():
    return create_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def config(client):
    """``config(recs_key, sids=...)`` → the parsed settings answer."""

    def get(recs_key: str, **params):
        response = client.get(
            f"/recommendations/{API_KEY}/settings/{recs_key}", query_string=params
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return get


@pytest.fixture
def search(client):
    """``search(type, **settings)`` → (status, body) for one record query."""

    def post(type_of_request: str = "RECS_TRENDING", *, context: dict | None = None, **settings):
        body = {
            "context": {"apiKeys": [API_KEY], **(context or {})},
            "recordQueries": [{"id": "q", "typeOfRequest": type_of_request, "settings": settings}],
        }
        response = client.post("/cs/v2/search", json=body)
        return response.status_code, response.get_json()

    return post


@pytest.fixture
def ids(search):
    """``ids(type, **settings)`` → the record ids of a successful query, in order."""

    def get(type_of_request: str = "RECS_TRENDING", **settings):
        status, body = search(type_of_request, **settings)
        assert status == 200, body
        return [r["id"] for r in body["queryResults"][0]["records"]]

    return get


# A reference compiler for Klevu's Underscore dialect (docs/klevu-wire-format.md §4), small
# enough to trust: <% code %>, <%= raw %>, <%- encodeURIComponent %>, run as
# (data, dataLocal, helper).
_TAG = re.compile(r"<%([=-]?)([\s\S]+?)%>")
_HELPERS = """
var helper = {
  escapeHTML: function (s) {
    if (s === null || s === undefined) { return ""; }
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]; });
  },
  each: function (list, fn) { for (var i = 0; i < list.length; i++) { fn(i, list[i]); } },
  processCurrency: function (currency, amount) { return currency + " " + amount.toFixed(2); },
  translate: function (s) { return s; }
};
"""


def _compile(template: str) -> str:
    parts, pos = [], 0
    for match in _TAG.finditer(template):
        parts.append(f"__p += {json.dumps(template[pos : match.start()])};")
        kind, code = match.groups()
        if kind == "=":
            parts.append(f"__t = ({code}); __p += (__t == null ? '' : __t);")
        elif kind == "-":
            parts.append(f"__p += encodeURIComponent({code});")
        else:
            parts.append(code)
        pos = match.end()
    parts.append(f"__p += {json.dumps(template[pos:])};")
    body = "\n".join(parts)
    return (
        f"function render(data, dataLocal, helper, scope) {{ var __t, __p = '';"
        f" with (data || {{}}) {{ {body} }} return __p; }}"
    )


@pytest.fixture
def render():
    """``render(template, data)`` → the HTML the template produces."""

    def run(template: str, data: dict) -> str:
        context = quickjs.Context()
        context.eval(_HELPERS + _compile(template))
        return context.eval(f"render({json.dumps(data)}, {{}}, helper, {{}})")

    return run

"""The template's data, as JSv2 builds it (docs/klevu-wire-format.md §4)."""

from __future__ import annotations

import pytest

from storefront.klevu.banners.template_data import (
    metadata_with_defaults,
    product_banner_data,
    static_banner_data,
)

SEARCH = {
    "context": {"apiKeys": ["k"]},
    "recordQueries": [
        {"id": "other", "settings": {"limit": 1}},
        {"id": "klevuRECSItemList", "settings": {"limit": 12, "query": {"term": "*"}}},
    ],
}


@pytest.mark.parametrize(
    "metadata, counts",
    [
        ({"title": "t"}, (12, 4)),  # JSv2 writes the defaults in
        ({"maxProducts": 6, "productThreshold": 0}, (6, 0)),  # the config's own are kept
        ({"maxProducts": "6", "productThreshold": None}, (12, 4)),  # nonsense falls back
    ],
)
def test_metadata_carries_the_count_defaults(metadata, counts):
    result = metadata_with_defaults(metadata)
    assert (result["maxProducts"], result["productThreshold"]) == counts
    assert {k: v for k, v in result.items() if k not in ("maxProducts", "productThreshold")} == {
        k: v for k, v in metadata.items() if k not in ("maxProducts", "productThreshold")
    }


def test_a_product_banner_gets_every_query_answer_and_the_search_settings():
    """JSv2's data.query: {meta, filters, result} per query id; ours are the records shown."""
    config = {"metadata": {"title": "t"}, "staticContent": [], "search": {}}
    answers = [
        {"id": "klevuRECSItemList", "meta": {"qTime": 3}, "filters": [], "records": [{}, {}]},
        {"id": "merchantExtra", "meta": {"qTime": 1}, "records": [{"id": "9"}]},
        {"records": []},  # no id: not addressable
    ]
    data = product_banner_data(config, [{"id": "1"}], answers, SEARCH)
    assert data == {
        "query": {
            "klevuRECSItemList": {"meta": {"qTime": 3}, "filters": [], "result": [{"id": "1"}]},
            "merchantExtra": {"meta": {"qTime": 1}, "result": [{"id": "9"}]},
        },
        "metadata": {"title": "t", "maxProducts": 12, "productThreshold": 4},
        "settings": {"limit": 12, "query": {"term": "*"}},
    }


def test_a_static_banner_gets_the_whole_config():
    config = {
        "metadata": {"title": "t", "maxProducts": 3},
        "search": {"basePath": "x"},
        "staticContent": [{"targetUrl": "/"}],
        "templates": {"base": "..."},
    }
    data = static_banner_data(config)
    assert data == {**config, "metadata": {"title": "t", "maxProducts": 3, "productThreshold": 4}}
    assert "query" not in data

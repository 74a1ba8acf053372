"""Every demo banner variant searches cleanly and fills its banner, with page context as the
storefront adds it (docs/klevu-wire-format.md §2, "What each page adds to the record query")."""

import json

import pytest

from storefront.catalog import load_catalog
from storefront.simulator.recs_configs import demo_configs

PAGE_CONTEXT = {
    "HOME": {},
    "CATEGORY": {"query": {"term": "*", "categoryPath": "Home;Lighting"}},
    "PRODUCT": {
        "context": {
            "recentObjects": [{"typeOfRecord": "KLEVU_PRODUCT", "records": [{"id": "10003"}]}],
            "sourceObjects": [
                {
                    "typeOfRecord": "KLEVU_PRODUCT",
                    "records": [{"id": "10003"}, {"itemGroupId": "50002"}],
                }
            ],
        },
        "excludeIds": [{"key": "itemGroupId", "value": "50002"}],
    },
    "CHECKOUT": {
        "context": {
            "recentObjects": [
                {"typeOfRecord": "KLEVU_PRODUCT", "records": [{"id": "10003"}, {"id": "10033"}]}
            ]
        },
        "excludeIds": [
            {"key": "itemGroupId", "value": "50002"},
            {"key": "itemGroupId", "value": "50025"},
        ],
    },
}
RECENT = {
    "customANDQuery": "id:(10040 OR 10002)",
    "topIds": [{"key": "id", "value": "10040"}, {"key": "id", "value": "10002"}],
    "limit": 2,
}
VARIANTS = [
    (key, variant.segment)
    for key, config in demo_configs().items()
    for variant in (config.default, *config.segment_variants)
]


@pytest.mark.parametrize("recs_key, segment", VARIANTS)
def test_variant_fills_its_banner(client, config, recs_key, segment):
    answer = config(recs_key, **({"sids": segment} if segment else {}))
    meta = answer["metadata"]
    payload = json.loads(answer["search"]["payload"])
    settings = payload["recordQueries"][0]["settings"]
    page = RECENT if meta["logic"] == "RECENTLY_VIEWED" else PAGE_CONTEXT[meta["pageType"]]
    settings.update(page)
    response = client.post("/cs/v2/search", json=payload)
    assert response.status_code == 200, response.get_json()
    records = response.get_json()["queryResults"][0]["records"]
    assert meta["productThreshold"] <= len(records) <= meta["maxProducts"]


def banner_ids(client, config, recs_key, sids=None):
    answer = config(recs_key, **({"sids": sids} if sids else {}))
    response = client.post(
        "/cs/v2/search", data=answer["search"]["payload"], content_type="application/json"
    )
    return [r["id"] for r in response.get_json()["queryResults"][0]["records"]]


def test_each_home_variant_shows_other_products_than_the_default(client, config):
    default = banner_ids(client, config, "k-home-picks")
    for variant in demo_configs()["k-home-picks"].segment_variants:
        assert banner_ids(client, config, "k-home-picks", variant.segment) != default


def test_search_base_path_answers_the_payload(client, config):
    answer = config("k-home-picks", sids="seg_home")
    path = "/" + answer["search"]["basePath"].split("/", 1)[1]
    response = client.post(path, data=answer["search"]["payload"], content_type="application/json")
    records = response.get_json()["queryResults"][0]["records"]
    assert records and all(r["category"].startswith("Home;;") for r in records)
    home = [p for p in load_catalog().products if p.category.path[0] == "Home"]
    assert records[0]["id"] == max(home, key=lambda p: p.added).id

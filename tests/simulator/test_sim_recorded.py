"""Serving a recorded account (``recorded.py``): which recorded answer a request gets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from storefront.simulator import create_app, scenarios

CONFIG: dict[str, Any] = {
    "metadata": {
        "title": "Live picks",
        "recsKey": "k-live",
        "pageType": "HOME",
        "logic": "TRENDING",
        "spotKey": "spot-live",
        "enabled": True,
    },
    "search": {"basePath": "eucs1.ksearchnet.com/cs/v2/search", "payload": "{}"},
}
VIP = {
    **CONFIG,
    "metadata": {**CONFIG["metadata"], "title": "Live VIP picks", "segmentKey": "seg_vip"},
}
TRENDING: dict[str, Any] = {
    "id": "klevuRECSItemList",
    "typeOfRequest": "RECS_TRENDING",
    "settings": {"limit": 8, "typeOfRecords": ["KLEVU_PRODUCT"]},
}
PACK = {
    "title": "Recorded",
    "description": "A live account.",
    "account": {"api_key": "klevu-live", "recs": {"HOME": "k-live"}},
    "recorded": {
        "configs": {"k-live": {"": CONFIG, "seg_style,seg_vip": VIP}},
        "searches": [
            {
                "request": {**TRENDING, "settings": {"limit": 4}},
                "answer": {"records": [{"id": "a"}]},
            },
            {"request": TRENDING, "answer": {"records": [{"id": "b"}]}},
        ],
    },
}


@pytest.fixture
def client(tmp_path):
    path = tmp_path / "live.json"
    path.write_text(json.dumps(PACK))
    return create_app({"SIMULATOR_SCENARIO": str(path)}).test_client()


def test_the_config_for_the_visitors_segments_in_any_order_else_the_anonymous_one(client):
    def title(sids: str) -> str:
        answer = client.get(f"/recommendations/klevu-live/settings/k-live?sids={sids}")
        assert answer.status_code == 200
        return answer.get_json()["metadata"]["title"]

    assert title("seg_vip,seg_style") == title("seg_style,seg_vip") == "Live VIP picks"
    assert title("") == title("seg_home") == "Live picks"
    basepath = client.get("/recommendations/klevu-live/settings/k-live").get_json()["search"]
    assert basepath["basePath"].startswith("localhost/")  # searched here, not at Klevu
    assert client.get("/recommendations/klevu-live/settings/k-other").status_code == 404
    assert client.get("/recommendations/klevu-simulator/settings/k-live").status_code == 404


def test_a_search_gets_the_recorded_answer_closest_to_its_query(client):
    edited = {**TRENDING, "id": "q1", "settings": {**TRENDING["settings"], "context": {"x": 1}}}
    body = {"context": {"apiKeys": ["klevu-live"]}, "recordQueries": [edited]}
    [answer] = client.post("/cs/v2/search", json=body).get_json()["queryResults"]
    assert answer == {"records": [{"id": "b"}], "id": "q1"}
    other = {**body, "recordQueries": [{**TRENDING, "typeOfRequest": "RECS_SIMILAR"}]}
    assert client.post("/cs/v2/search", json=other).status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"account": {"api_key": "k"}},
        {"account": {"api_key": "k", "recs": {"CART": "k-live"}}},
        {"recorded": {"configs": {"k-live": {"": {"no": "metadata"}}}}},
        {"recorded": {"configs": {}, "searches": [{"request": {}}]}},
    ],
)
def test_a_recorded_pack_missing_a_part_is_refused(change):
    with pytest.raises(scenarios.BadPack):
        scenarios.parse_pack("live", {**PACK, **change})

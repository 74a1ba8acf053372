"""Analytics collector: three dialects, empty 200s, refusals, duplicate counting (§5)."""

import copy
import json

import pytest

from storefront.simulator import API_KEY

URL = "/analytics/collect"
ITEM = {
    "item_id": "10004",
    "item_name": "Summit Tent, rust",
    "price": "131.99",
    "currency": "EUR",
    "item_brand": "Northbound",
    "item_category": "Outdoor;;Tents",
    "item_variant_id": "10004",
    "item_group_id": "50002",
    "index": 2,
}

STOREFRONT = {  # the storefront's own (klevu-recs.js) dialect
    "event": "view_recs_list",
    "event_apikey": API_KEY,
    "user_profile": {"session_id": "a7c0"},
    "event_data": {
        "tags": ["recsPageType:HOME"],
        "list_id": "spot-home-picks",
        "list_name": "Deals we saved for you",
        "list_logic": "CUSTOM_LOGIC",
        "spot_id": "spot-home-picks",
        "spot_name": "Home page: top picks",
        "segment_id": "seg_bargain",
        "segment_name": "Bargain hunters",
        "items": [{**ITEM, "index": 1, "item_id": "10010", "quantity": 1}, {**ITEM, "quantity": 1}],
    },
}
CORE = {  # @klevu/core
    "event": "select_recs_list",
    "event_version": "1.0.0",
    "event_apikey": API_KEY,
    "user_profile": {"sessionId": "b8d1"},
    "event_data": {
        "list_id": "k-home-picks",
        "list_name": "Trending now",
        "list_logic": "TRENDING",
        "items": [ITEM],
    },
}
FLAT = {  # the older flat dialect
    "event": "view_recs_list",
    "event_apikey": API_KEY,
    "event_list_id": "k-home-recent",
    "event_list_name": "Still looking for these?",
    "event_list_logic": "RECENTLY_VIEWED",
    "event_tags": ["recsPageType:HOME"],
    "items": [ITEM],
}


def post(client, events, ids=None):
    headers = {"X-Storefront-Event-Ids": ",".join(ids)} if ids is not None else {}
    return client.post(URL, json=events, headers=headers)


def received(client):
    return client.get("/_sim/events").get_json()


@pytest.mark.parametrize(
    "event, dialect, session",
    [(STOREFRONT, "storefront", "a7c0"), (CORE, "core", "b8d1"), (FLAT, "flat", None)],
)
def test_each_dialect_is_accepted_with_an_empty_200(client, event, dialect, session):
    response = post(client, [event])
    assert response.status_code == 200 and response.data == b""
    [kept] = received(client)["events"]
    assert kept["payload"] == event
    assert kept["summary"]["dialect"] == dialect
    assert kept["summary"]["session_id"] == session
    assert kept["summary"]["items"][-1] == {
        "item_id": "10004",
        "item_name": "Summit Tent, rust",
        "index": 2,
        "price": "131.99",
    }


def test_summary_names_list_segment_and_page(client):
    post(client, [STOREFRONT])
    summary = received(client)["events"][0]["summary"]
    assert (
        summary["event"],
        summary["list_id"],
        summary["list_name"],
        summary["segment_id"],
        summary["page_type"],
    ) == ("view_recs_list", "spot-home-picks", "Deals we saved for you", "seg_bargain", "HOME")
    assert [i["index"] for i in summary["items"]] == [1, 2]


def test_events_are_kept_in_order_across_requests(client):
    post(client, [STOREFRONT, CORE])
    post(client, [FLAT])
    events = received(client)["events"]
    assert [e["payload"] for e in events] == [STOREFRONT, CORE, FLAT]
    assert [e["seq"] for e in events] == [1, 2, 3]
    counts = client.get("/_sim/state").get_json()["counts"]
    assert (counts["collect_requests"], counts["events"]) == (2, 3)


def test_event_ids_count_unique_and_duplicate_deliveries(client):
    post(client, [STOREFRONT, CORE], ids=["e1", "e2"])
    post(client, [CORE, FLAT], ids=["e2", "e3"])  # a retried batch overlapping the first
    post(client, [FLAT])  # no ids: counted as unique
    body = received(client)
    assert body["totals"] == {"received": 5, "unique": 4, "duplicates": 1}
    assert [(e["event_id"], e["duplicate"]) for e in body["events"]] == [
        ("e1", False),
        ("e2", False),
        ("e2", True),
        ("e3", False),
        (None, False),
    ]


def test_event_ids_must_align_with_the_events(client):
    response = post(client, [STOREFRONT, CORE], ids=["only-one"])
    assert response.status_code == 400
    assert received(client)["totals"]["received"] == 0


def without(event, *path):
    event = copy.deepcopy(event)
    target = event
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return event


def changed(event, value, *path):
    event = copy.deepcopy(event)
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event


@pytest.mark.parametrize(
    "events",
    [
        {},
        [],
        "view_recs_list",
        [1],
        [{"event": "view_recs_list"}],
        [without(STOREFRONT, "event")],
        [without(STOREFRONT, "event_apikey")],
        [without(STOREFRONT, "event_data", "list_id")],
        [changed(STOREFRONT, "recsPageType:HOME", "event_data", "tags")],
        [changed(STOREFRONT, {"item_id": "1"}, "event_data", "items")],
        [changed(STOREFRONT, 0, "event_data", "items", 0, "index")],
        [changed(STOREFRONT, "1", "event_data", "items", 0, "index")],
        [without(STOREFRONT, "event_data", "items", 0, "item_id")],
        [changed(CORE, [], "event_data", "items")],  # a click with no item
        [changed(CORE, 1, "event_version")],
        [changed(CORE, "b8d1", "user_profile")],
        [without(FLAT, "event_list_id")],
        [STOREFRONT, {"nothing": "here"}],  # one bad event refuses the whole batch
    ],
)
def test_invalid_batches_are_400_and_nothing_is_kept(client, events):
    response = post(client, events)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert received(client)["totals"]["received"] == 0


def test_non_json_body_is_400(client):
    assert client.post(URL, data="[{", content_type="application/json").status_code == 400


def test_beacon_style_text_plain_body_is_accepted(client):
    response = client.post(URL, data=json.dumps([STOREFRONT]), content_type="text/plain")
    assert response.status_code == 200


def test_unknown_api_key_is_404(client):
    response = post(client, [changed(STOREFRONT, "klevu-other", "event_apikey")])
    assert response.status_code == 404
    assert received(client)["totals"]["received"] == 0

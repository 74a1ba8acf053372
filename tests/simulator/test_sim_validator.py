"""The dashboard's analytics check: each kind of event Klevu accepts but cannot use is marked
with its reason; correct events in each dialect pass. The shop's own events are checked over
real sockets in tests/e2e/test_event_check.py."""

from __future__ import annotations

import pytest

from tests.simulator.test_sim_collect import CORE, STOREFRONT, URL, changed, without

STATIC = changed(
    changed(
        changed(
            without(STOREFRONT, "event_data", "items"),
            [{"targetUrl": "/", "contentType": "image"}],
            "event_data",
            "static_content",
        ),
        "STATIC_CONTENT",
        "event_data",
        "action",
    ),
    "k-checkout-together",
    "event_data",
    "list_id",
)
STATIC = changed(
    changed(STATIC, ["recsPageType:CHECKOUT"], "event_data", "tags"),
    "seg_bargain",
    "event_data",
    "segment_id",
)


def checked(client, event: dict) -> dict:
    assert client.post(URL, json=[event]).status_code == 200  # Klevu would take it too
    return client.get("/_sim/events").get_json()["events"][-1]


@pytest.mark.parametrize("event", [STOREFRONT, CORE, STATIC], ids=["storefront", "core", "static"])
def test_correct_events_pass(client, event):
    assert checked(client, event)["problems"] == []


@pytest.mark.parametrize(
    "event, reason",
    [
        (changed(STOREFRONT, "add_to_cart", "event"), "event 'add_to_cart'"),
        (without(STOREFRONT, "user_profile"), "no session id"),
        (without(STOREFRONT, "event_data", "list_name"), "list_name missing"),
        (without(STOREFRONT, "event_data", "list_logic"), "list_logic missing"),
        (changed(STOREFRONT, "k-nowhere", "event_data", "list_id"), "list_id 'k-nowhere'"),
        (changed(STOREFRONT, [], "event_data", "tags"), "tags lack recsPageType"),
        (
            changed(STOREFRONT, ["recsPageType:PRODUCT"], "event_data", "tags"),
            "the banner is on HOME",
        ),
        (changed(STOREFRONT, "seg_gone", "event_data", "segment_id"), "segment_id 'seg_gone'"),
        (without(STOREFRONT, "event_data", "items"), "view_recs_list without items"),
        (
            without(STOREFRONT, "event_data", "items", 0, "item_group_id"),
            "items[1].item_group_id missing",
        ),
        (
            without(STOREFRONT, "event_data", "items", 1, "item_variant_id"),
            "items[2].item_variant_id missing",
        ),
        (without(STOREFRONT, "event_data", "items", 0, "index"), "items[1].index missing"),
        (changed(STOREFRONT, 3, "event_data", "items", 1, "index"), "items[2].index is 3"),
        (changed(STOREFRONT, "cheap", "event_data", "items", 0, "price"), "is not a number"),
        (without(STOREFRONT, "event_data", "items", 0, "currency"), "price without a currency"),
        (without(STATIC, "event_data", "static_content"), "without static_content"),
        (without(STATIC, "event_data", "action"), "without action STATIC_CONTENT"),
        (
            changed(STOREFRONT, [{"targetUrl": "/"}], "event_data", "static_content"),
            "static_content in an event for a product banner",
        ),
    ],
)
def test_each_broken_event_is_marked_with_its_reason(client, event, reason):
    found = checked(client, event)["problems"]
    assert len(found) == 1 and reason in found[0], found
    page = client.get("/_sim/").get_data(as_text=True)
    assert 'data-valid="false"' in page
    assert 'data-testid="event-problem"' in page
    assert client.get("/_sim/events").get_json()["failing"] == 1

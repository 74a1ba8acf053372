"""The four steps end to end in Chromium: persona → banner changes → click reaches Klevu."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.helpers import persona_segments, wait_until

HOME_PICKS = "k-home-picks"


def test_persona_changes_the_home_banner(shopper, klevu_config, screenshot):
    page = shopper.page
    page.goto("/")
    shopper.accepts_consent()
    title = shopper.banner(HOME_PICKS).locator(".kuRECS-title")
    expect(title).to_have_text(klevu_config(HOME_PICKS)["metadata"]["title"])
    anonymous_ids = shopper.item_ids(HOME_PICKS)

    shopper.becomes("maya")
    page.goto("/")
    expect(page.get_by_test_id("identity-badge")).to_contain_text("Maya")
    maya = klevu_config(HOME_PICKS, persona_segments("maya"))["metadata"]["title"]
    expect(title).to_have_text(maya)
    assert shopper.item_ids(HOME_PICKS) != anonymous_ids
    screenshot(page, "home-maya")


def test_click_reaches_klevu_with_its_index(shopper, received):
    page = shopper.page
    shopper.becomes("maya")
    page.goto("/")
    items = shopper.items(HOME_PICKS)
    expect(items.first).to_be_visible()
    product_id = shopper.item_ids(HOME_PICKS)[2]
    items.nth(2).locator("a").first.click()
    expect(page).to_have_url(re.compile(rf"/p/{product_id}$"))

    [event] = wait_until(
        lambda: received("select_recs_list"),
        10,
        "the simulator received no select_recs_list from this browser",
    )
    assert event["event_data"]["items"] == [
        {**event["event_data"]["items"][0], "item_id": product_id, "index": 3}
    ]
    assert event["event_data"]["segment_id"] == persona_segments("maya")[0]
    assert event["event_data"]["tags"] == ["recsPageType:HOME"]

"""The four steps end to end in Chromium: persona → banner changes → click reaches Klevu."""
from __future__ import annotations

import re

import requests
from playwright.sync_api import Page, expect

from tests.helpers import wait_until

HOME_PICKS = '[data-klevu-banner="k-home-picks"]'


def simulator_title(sim, sids: str = "") -> str:
    """What the config CDN says the banner title is for these segments (the expected answer)."""
    params = {"sids": sids} if sids else {}
    config = requests.get(f"{sim.url}/recommendations/klevu-simulator/settings/k-home-picks",
                          params=params, timeout=5).json()
    return config["metadata"]["title"]


def banner_ids(page: Page) -> list[str]:
    return page.locator(f"{HOME_PICKS} .kuRECSItem").evaluate_all(
        "els => els.map(e => e.getAttribute('data-id'))")


def test_persona_changes_the_home_banner(page: Page, sim, base_url):
    page.goto("/")
    page.get_by_test_id("consent-accept").click()
    title = page.locator(f"{HOME_PICKS} .kuRECS-title")
    expect(title).to_have_text(simulator_title(sim))
    anonymous_ids = banner_ids(page)

    page.goto("/demo/personas")
    page.get_by_test_id("persona-maya").click()
    page.goto("/")
    expect(page.get_by_test_id("identity-badge")).to_contain_text("Maya")
    expect(title).to_have_text(simulator_title(sim, "seg_outdoor"))
    assert banner_ids(page) != anonymous_ids
    page.screenshot(path="test-results/home-maya.png", full_page=True)


def test_click_reaches_klevu_with_its_index(page: Page, sim, base_url):
    page.goto("/demo/personas")
    page.get_by_test_id("persona-maya").click()
    page.goto("/")
    items = page.locator(f"{HOME_PICKS} .kuRECSItem")
    expect(items.first).to_be_visible()
    third = items.nth(2)
    product_id = third.get_attribute("data-id")
    third.locator("a").first.click()
    expect(page).to_have_url(re.compile(rf"/p/{product_id}$"))

    def selected():
        return [e["payload"] for e in sim.events()["events"]
                if e["payload"]["event"] == "select_recs_list"]
    received = wait_until(selected)
    assert received, "the simulator received no select_recs_list"
    event = received[-1]
    assert event["event_data"]["items"] == [
        {**event["event_data"]["items"][0], "item_id": product_id, "index": 3}]
    assert event["event_data"]["segment_id"] == "seg_outdoor"
    assert event["event_data"]["tags"] == ["recsPageType:HOME"]

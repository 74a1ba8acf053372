"""Step 4 in Chromium: what a shopper does with a banner reaches Klevu, once, and no more.

A banner counts as seen after a second in view (a glance does not count); a click or Enter on
a product sends one ``select_recs_list`` with that product at its position and never holds up
the navigation. The evidence is what the simulator's collector received (``/_sim/events``,
delivered asynchronously by the outbox relay); the browser's own requests are only watched,
to count the beacons it sent.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.conftest import PRODUCTS, Shopper
from tests.helpers import wait_until

BANNER = "k-product-similar"          # the only banner on a product page, below the product
PRODUCT = next(iter(PRODUCTS.values()))
DWELL_MS = 1000                        # how long a banner must stay in view to count as seen


@pytest.fixture
def product_page(shopper: Shopper, page: Page, klevu_config) -> dict:
    """A consenting anonymous visitor on a product page; the banner's config metadata."""
    page.goto("/")
    shopper.accepts_consent()   # the consent bar would otherwise cover the banner
    page.goto(f"/p/{PRODUCT['id']}")
    expect(shopper.items(BANNER).first).to_be_attached()
    return klevu_config(BANNER, pid=PRODUCT["id"], gpid=PRODUCT["itemGroupId"])["metadata"]


def beacons_of(page: Page) -> list[Request]:
    """Beacon posts from now on, watched (not changed) as the browser sends them."""
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/klevu/events") else None)
    return sent


def test_a_glance_is_no_impression_a_second_in_view_is_exactly_one(product_page, shopper,
                                                                   page: Page, received):
    beacons = beacons_of(page)
    banner = shopper.banner(BANNER)
    expect(banner).not_to_be_in_viewport(ratio=0.5)

    # A glance: scrolled past, in view for well under a second.
    banner.scroll_into_view_if_needed()
    expect(banner).to_be_in_viewport(ratio=0.5)
    page.wait_for_timeout(DWELL_MS * 0.3)
    page.evaluate("window.scrollTo(0, 0)")
    expect(banner).not_to_be_in_viewport(ratio=0.5)
    page.wait_for_timeout(DWELL_MS * 1.3)       # a wrongly started timer would have fired
    assert beacons == [], "a glance was reported as an impression"

    # A real look: the impression reaches Klevu, with every product at its position.
    banner.scroll_into_view_if_needed()
    views = wait_until(lambda: received("view_recs_list", list_id=product_page["spotKey"]))
    assert len(views) == 1, views
    data = views[0]["event_data"]
    assert data["list_name"] == product_page["title"]
    assert data["tags"] == ["recsPageType:PRODUCT"]
    assert [(i["item_id"], i["index"]) for i in data["items"]] == [
        (item_id, index) for index, item_id in enumerate(shopper.item_ids(BANNER), start=1)]

    # Looking again on the same page view is not a second impression.
    page.evaluate("window.scrollTo(0, 0)")
    expect(banner).not_to_be_in_viewport(ratio=0.5)
    banner.scroll_into_view_if_needed()
    page.wait_for_timeout(DWELL_MS * 1.3)
    assert len(beacons) == 1, [b.url for b in beacons]
    assert len(received("view_recs_list", list_id=product_page["spotKey"])) == 1


@pytest.mark.parametrize("how", ["mouse", "keyboard"])
def test_choosing_a_product_reports_it_at_its_index_and_goes_there(how, product_page, shopper,
                                                                    page: Page, received,
                                                                    base_url):
    items = shopper.items(BANNER)
    position = 2 if how == "mouse" else items.count()      # 1-based, as Klevu counts
    item = items.nth(position - 1)
    product_id = item.get_attribute("data-id")
    link = item.get_by_role("link").first
    expect(link).to_have_attribute("href", re.compile(rf"/p/{product_id}$"))
    navigations = []
    page.on("request", lambda r: navigations.append(r.url)
            if r.is_navigation_request() and r.frame == page.main_frame else None)

    if how == "mouse":
        link.click()
    else:
        link.focus()
        page.keyboard.press("Enter")

    expect(page).to_have_url(f"{base_url}/p/{product_id}")
    expect(page.get_by_test_id("product-name")).to_have_text(PRODUCTS[product_id]["name"])
    assert navigations == [f"{base_url}/p/{product_id}"], "the click took a detour"
    selects = wait_until(lambda: received("select_recs_list", list_id=product_page["spotKey"]))
    assert len(selects) == 1, selects
    data = selects[0]["event_data"]
    assert [(i["item_id"], i["index"]) for i in data["items"]] == [(product_id, position)]
    assert data["list_name"] == product_page["title"]

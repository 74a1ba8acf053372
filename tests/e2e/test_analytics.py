"""Step 4 in Chromium: what a shopper does with a banner reaches Klevu, once, and no more.

By default a banner is reported as JSv2 reports it, once rendered: one ``view_recs_list`` per
banner per page view right after load, below the fold too. With ``KLEVU_VIEW_RULE=visible`` it
counts as seen after a second in view (a glance does not count). A click or Enter on a
``.kuRECSItemClick`` product sends one ``select_recs_list`` with that product at its position
and never holds up the navigation; other links in a banner send nothing. The evidence is what
the simulator's collector received (``/_sim/events``, delivered asynchronously by the outbox
relay); the browser's own requests are only watched, to count the beacons it sent.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Request, expect

from storefront.klevu.analytics.recently_viewed import format_ids, parse
from tests.e2e.conftest import PRODUCTS, Shopper
from tests.helpers import persona_segments, wait_until

BANNER = "k-product-similar"  # the only banner on a product page, below the product
CHECKOUT_BANNER = "k-checkout-together"  # a static sale image for bargain hunters (sam)
PRODUCT = next(iter(PRODUCTS.values()))
DWELL_MS = 1000  # how long a banner must stay in view to count as seen


def open_product_page(shopper: Shopper, page: Page, klevu_config, shop: str = "") -> dict:
    """A consenting anonymous visitor on a product page; the banner's config metadata."""
    page.goto(f"{shop}/")
    shopper.accepts_consent()  # the consent bar would otherwise cover the banner
    page.goto(f"{shop}/p/{PRODUCT['id']}")
    expect(shopper.items(BANNER).first).to_be_attached()
    return klevu_config(BANNER, pid=PRODUCT["id"], gpid=PRODUCT["itemGroupId"])["metadata"]


@pytest.fixture
def product_page(shopper: Shopper, page: Page, klevu_config) -> dict:
    return open_product_page(shopper, page, klevu_config)


def beacons_of(page: Page, kind: str | None = None) -> list[Request]:
    """Beacon posts from now on (of one ``type``, if given), watched as the browser sends them."""
    sent: list[Request] = []

    def watch(request: Request) -> None:
        if request.url.endswith("/klevu/events") and (
            kind is None or (request.post_data_json or {}).get("type") == kind
        ):
            sent.append(request)

    page.on("request", watch)
    return sent


def test_by_default_each_banner_is_reported_once_right_after_load_even_below_the_fold(
    shopper: Shopper, page: Page, klevu_config, received
):
    """JSv2 sends view_recs_list as soon as it has rendered a banner, seen or not."""
    metadata = open_product_page(shopper, page, klevu_config)
    banner = shopper.banner(BANNER)
    views = wait_until(
        lambda: received("view_recs_list", list_id=metadata["recsKey"]),
        message="no impression after load",
    )
    expect(banner).not_to_be_in_viewport(ratio=0.5)  # never scrolled to: "visible" waits
    assert len(views) == 1, views
    assert [i["item_id"] for i in views[0]["event_data"]["items"]] == shopper.item_ids(BANNER)

    beacons = beacons_of(page, "view")
    banner.scroll_into_view_if_needed()  # looking at it is no second impression
    page.wait_for_timeout(DWELL_MS * 1.3)
    assert beacons == []
    page.reload()  # a new page view is a new impression
    expect(shopper.items(BANNER).first).to_be_attached()
    wait_until(
        lambda: len(received("view_recs_list", list_id=metadata["recsKey"])) == 2,
        message="the second page view was not reported",
    )
    assert len(beacons) == 1, [b.post_data for b in beacons]


def test_with_the_visible_rule_a_glance_is_no_impression_a_second_in_view_is_one(
    visible_rule_shop, shopper, page: Page, klevu_config, received
):
    product_page = open_product_page(shopper, page, klevu_config, visible_rule_shop)
    beacons = beacons_of(page)
    banner = shopper.banner(BANNER)
    expect(banner).not_to_be_in_viewport(ratio=0.5)

    # A glance: scrolled past, in view for well under a second.
    banner.scroll_into_view_if_needed()
    expect(banner).to_be_in_viewport(ratio=0.5)
    page.wait_for_timeout(DWELL_MS * 0.3)
    page.evaluate("window.scrollTo(0, 0)")
    expect(banner).not_to_be_in_viewport(ratio=0.5)
    page.wait_for_timeout(DWELL_MS * 1.3)  # a wrongly started timer would have fired
    assert beacons == [], "a glance was reported as an impression"

    # A real look: the impression reaches Klevu, with every product at its position.
    banner.scroll_into_view_if_needed()
    views = wait_until(lambda: received("view_recs_list", list_id=product_page["recsKey"]))
    assert len(views) == 1, views
    data = views[0]["event_data"]
    assert data["list_name"] == product_page["title"]
    assert data["tags"] == ["recsPageType:PRODUCT"]
    assert [(i["item_id"], i["index"]) for i in data["items"]] == [
        (item_id, index) for index, item_id in enumerate(shopper.item_ids(BANNER), start=1)
    ]

    # Looking again on the same page view is not a second impression.
    page.evaluate("window.scrollTo(0, 0)")
    expect(banner).not_to_be_in_viewport(ratio=0.5)
    banner.scroll_into_view_if_needed()
    page.wait_for_timeout(DWELL_MS * 1.3)
    assert len(beacons) == 1, [b.url for b in beacons]
    assert len(received("view_recs_list", list_id=product_page["recsKey"])) == 1


@pytest.mark.parametrize("how", ["mouse", "keyboard"])
def test_choosing_a_product_reports_it_at_its_index_and_goes_there(
    how, product_page, shopper, page: Page, received, base_url
):
    items = shopper.items(BANNER)
    position = 2 if how == "mouse" else items.count()  # 1-based, as Klevu counts
    item = items.nth(position - 1)
    product_id = item.get_attribute("data-id")
    link = item.get_by_role("link").first
    expect(link).to_have_attribute("href", re.compile(rf"/p/{product_id}$"))
    navigations = []
    page.on(
        "request",
        lambda r: (
            navigations.append(r.url)
            if r.is_navigation_request() and r.frame == page.main_frame
            else None
        ),
    )

    if how == "mouse":
        link.click()
    else:
        link.focus()
        page.keyboard.press("Enter")

    expect(page).to_have_url(f"{base_url}/p/{product_id}")
    expect(page.get_by_test_id("product-name")).to_have_text(PRODUCTS[product_id]["name"])
    assert navigations == [f"{base_url}/p/{product_id}"], "the click took a detour"
    selects = wait_until(lambda: received("select_recs_list", list_id=product_page["recsKey"]))
    assert len(selects) == 1, selects
    data = selects[0]["event_data"]
    assert [(i["item_id"], i["index"]) for i in data["items"]] == [(product_id, position)]
    assert data["list_name"] == product_page["title"]


def test_a_click_on_another_link_in_a_banner_sends_nothing(
    shopper: Shopper, page: Page, context, base_url
):
    """JSv2 counts clicks only on .kuRECSItemClick: the recently viewed banner's "Keep
    browsing" link is a plain link."""
    page.goto("/")
    shopper.accepts_consent()
    clicked = next(iter(PRODUCTS))
    value = format_ids([clicked])
    context.add_cookies([{"name": "klevu_recent_clicks", "value": value, "url": base_url}])
    page.goto("/")
    banner = shopper.banner("k-home-recent")
    expect(shopper.items("k-home-recent")).to_have_count(1)
    selects = beacons_of(page, "select")
    banner.locator("a.kuRECS-more").click()
    expect(page).to_have_url(re.compile(r"/\?from=recently-viewed$"))
    page.wait_for_timeout(500)
    assert selects == []


@pytest.mark.parametrize("screen, resolution", [((1280, 800), "desktop"), ((390, 844), "mobile")])
def test_a_static_banner_reports_the_image_the_screen_shows(
    shopper: Shopper, page: Page, klevu_config, received, screen, resolution
):
    """The sale banner holds a desktop and a phone image and its stylesheet shows one per
    width: its view and its click name the one this screen shows, in Klevu's fields."""
    page.set_viewport_size({"width": screen[0], "height": screen[1]})
    config = klevu_config(CHECKOUT_BANNER, persona_segments("sam"))
    [image] = [i for i in config["staticContent"][0]["image"] if i["resolution"] == resolution]
    shopper.becomes("sam")
    shopper.adds_to_cart(PRODUCT["id"])
    page.goto("/checkout")
    banner = shopper.banner(CHECKOUT_BANNER)
    picture = banner.locator(f'img[src="{image["url"]}"]')
    expect(picture).to_be_visible()
    expect(banner.locator("img").and_(page.locator(":visible"))).to_have_count(1)
    expected = {
        "content_type": "image",
        "resolution": resolution,
        "index": 1,
        "banner_image_url": image["url"],
        "banner_alt_tag": image["altTag"],
    }
    [view] = wait_until(
        lambda: received("view_recs_list", list_id=CHECKOUT_BANNER), message="no static view"
    )
    assert view["event_data"]["static_content"] == [expected]

    with page.expect_navigation():
        picture.click()
    [select] = wait_until(
        lambda: received("select_recs_list", list_id=CHECKOUT_BANNER), message="no static click"
    )
    assert select["event_data"]["static_content"] == [expected]
    assert select["event_data"]["action"] == "STATIC_CONTENT"


def test_a_click_whose_link_has_an_empty_id_reports_its_kcresultitem(
    product_page, shopper, page: Page, received
):
    """JSv2 falls back from an empty data-id to the closest .kuRECSItem or .kcResultItem."""
    item = shopper.items(BANNER).nth(1)
    product_id = item.get_attribute("data-id")
    link = item.get_by_role("link").first.element_handle()  # the element, not the n-th match
    link.evaluate(
        "a => { a.setAttribute('data-id', '');"
        " a.closest('.kuRECSItem').className = 'kcResultItem'; }"
    )
    with page.expect_navigation():
        link.click()
    [select] = wait_until(lambda: received("select_recs_list", list_id=product_page["recsKey"]))
    assert [i["item_id"] for i in select["event_data"]["items"]] == [product_id]


def test_the_beacon_remembers_an_id_of_any_catalogue(product_page, shopper, page: Page):
    """Ids with ".", "/", ":", spaces or quotes are kept, as the server reads them back."""
    odd = 'sku.10/blue: "large" é'
    link = shopper.items(BANNER).nth(0).get_by_role("link").first.element_handle()
    link.evaluate("(a, id) => a.setAttribute('data-id', id)", odd)
    with page.expect_navigation():
        link.click()
    assert parse(shopper.cookie("klevu_recent_clicks"))[0] == odd


def test_without_consent_a_click_is_not_remembered(shopper: Shopper, page: Page, klevu_config):
    """JSv2 writes its "recently viewed" cookie only with the visitor's consent."""
    page.goto("/")
    shopper.declines_consent()
    page.goto(f"/p/{PRODUCT['id']}")
    link = shopper.items(BANNER).first.get_by_role("link").first
    with page.expect_navigation():
        link.click()
    assert shopper.cookie("klevu_recent_clicks") is None
    page.goto("/")
    expect(shopper.banner("k-home-recent")).to_have_count(0)

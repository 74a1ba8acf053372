"""Steps 2 and 3 in Chromium: every page type shows the banner Klevu's config chose.

A visitor walks home → category → product → cart → checkout. On each page the banner must be
the variant the simulator's config CDN answers for the visitor's segments and the page's
context (title), show between ``productThreshold`` and ``maxProducts`` products, reserve its
images' space before they load (no layout shift), and already be in the HTML the server sent.
Screenshots of every page land in test-results/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import ConsoleMessage, Page, Route, expect

from storefront.klevu.analytics.recently_viewed import parse
from tests.e2e.conftest import CATEGORIES, PRODUCTS, Shopper
from tests.helpers import persona_segments

HOME_PICKS, HOME_RECENT = "k-home-picks", "k-home-recent"
CATEGORY_BANNER, PRODUCT_BANNER, CHECKOUT_BANNER = (
    "k-category-trending",
    "k-product-similar",
    "k-checkout-together",
)
CATEGORY = next(iter(CATEGORIES))  # the first category of the catalog
HIDE, STATIC = "HIDE_RECOMMENDATION", "STATIC_CONTENT"

# In the served HTML (no JavaScript): each banner's title and the ids of its products.
BANNERS_IN_HTML = """html => {
  const doc = new DOMParser().parseFromString(html, "text/html");
  return Object.fromEntries([...doc.querySelectorAll("[data-klevu-banner]")].map(b => [
    b.dataset.klevuBanner,
    {title: (b.querySelector(".kuRECS-title") || {}).textContent?.trim() ?? null,
     ids: [...b.querySelectorAll(".kuRECSItem")].map(e => e.dataset.id)}]));
}"""

# Every picture of a banner: its declared size, its box, whether it is shown and loaded.
BANNER_IMAGES = """banner => [...banner.querySelectorAll("img")].map(img => {
  const box = img.getBoundingClientRect();
  return {src: img.getAttribute("src"), width: img.getAttribute("width"),
          height: img.getAttribute("height"), boxWidth: box.width, boxHeight: box.height,
          shown: getComputedStyle(img).display !== "none",
          loaded: img.complete && img.naturalWidth > 0};
})"""

# Where the banner sits in the document (not the viewport) and how big it is.
DOCUMENT_BOX = """el => { const r = el.getBoundingClientRect();
  return {top: Math.round(r.top + scrollY), height: Math.round(r.height)}; }"""


class ImageGate:
    """Holds every picture request until ``release()``: the page is measured before any
    image has loaded, then again after, so space not reserved for an image shows up."""

    held: list[Route]

    def __init__(self, page: Page):
        self.page, self.held, self.open = page, [], False
        page.route("**/img/**", self._handle)

    def _handle(self, route: Route) -> None:
        if self.open:
            route.continue_()
        else:
            self.held.append(route)

    def hold(self) -> None:
        self.open = False

    def release(self) -> None:
        self.open = True
        while self.held:
            self.held.pop().continue_()


def visit(
    shopper: Shopper, gate: ImageGate, url: str, recs_key: str, config: dict, screenshot, shot: str
) -> list[str]:
    """Open ``url`` and check its ``recs_key`` banner against the config; the banner's ids."""
    page, meta = shopper.page, config["metadata"]
    gate.hold()
    response = page.goto(url, wait_until="domcontentloaded")
    assert response is not None and response.ok, url
    served = page.evaluate(BANNERS_IN_HTML, response.text())
    banner = shopper.banner(recs_key)

    if meta["action"] == HIDE or meta["enabled"] is False:
        assert recs_key not in served, f"{url}: {recs_key} should be hidden"
        expect(banner).to_have_count(0)
        gate.release()
        screenshot(page, shot)
        return []

    # Served by the server: the banner, its title and its products are in the initial HTML.
    assert recs_key in served, f"{url}: no {recs_key} banner in the HTML the server sent"
    assert served[recs_key]["title"] == meta["title"]
    expect(banner.locator(".kuRECS-title")).to_have_text(meta["title"])
    ids = shopper.item_ids(recs_key)
    assert ids == served[recs_key]["ids"]
    if meta["action"] == STATIC:
        assert ids == [], "a static-content banner lists no products"
    else:
        assert meta["productThreshold"] <= len(ids) <= meta["maxProducts"], (url, len(ids), meta)

    # No layout shift: every picture declares its size, and the banner (and all above it)
    # keeps its place and size from before any picture loaded to after all have.
    images = banner.evaluate(BANNER_IMAGES)
    assert images, f"{url}: {recs_key} shows no pictures"
    assert not any(i["loaded"] for i in images), "pictures loaded before the measurement"
    for image in images:
        assert (image["width"] or "").isdigit() and int(image["width"]) > 0, image
        assert (image["height"] or "").isdigit() and int(image["height"]) > 0, image
        if image["shown"]:
            assert image["boxWidth"] > 0 and image["boxHeight"] > 0, image
    before = banner.evaluate(DOCUMENT_BOX)
    gate.release()
    banner.scroll_into_view_if_needed()
    page.wait_for_function(
        """banner => [...banner.querySelectorAll("img")]
        .filter(img => getComputedStyle(img).display !== "none")
        .every(img => img.complete && img.naturalWidth > 0)""",
        arg=banner.element_handle(),
    )
    assert banner.evaluate(DOCUMENT_BOX) == before, f"{url}: the banner moved or grew"
    shown = [image for image in banner.evaluate(BANNER_IMAGES) if image["shown"]]
    assert shown, f"{url}: {recs_key} shows no picture once loaded"
    for image in shown:  # drawn at its own proportions, not squashed into another shape
        assert image["boxWidth"] / image["boxHeight"] == pytest.approx(
            int(image["width"]) / int(image["height"]), rel=0.02
        ), image
    screenshot(page, shot)
    return ids


@pytest.mark.parametrize("persona", [None, "maya", "priya"], ids=lambda p: p or "anonymous")
def test_every_page_type_shows_the_banner_klevu_chose(
    persona, shopper: Shopper, page: Page, klevu_config, screenshot
):
    errors: list[str] = []  # on a demo stage, the browser's console is open too

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    if persona:
        shopper.becomes(persona)
    else:
        page.goto("/")
        shopper.accepts_consent()
    segments = persona_segments(persona)
    who = persona or "anonymous"
    gate = ImageGate(page)

    visit(
        shopper,
        gate,
        "/",
        HOME_PICKS,
        klevu_config(HOME_PICKS, segments),
        screenshot,
        f"{who}-home",
    )

    category = CATEGORIES[CATEGORY]
    shown = visit(
        shopper,
        gate,
        f"/c/{CATEGORY}",
        CATEGORY_BANNER,
        klevu_config(CATEGORY_BANNER, segments, cp=";".join(category["path"])),
        screenshot,
        f"{who}-category",
    )
    assert {PRODUCTS[i]["categorySlug"] for i in shown} == {CATEGORY}

    product = PRODUCTS[shown[0]]
    related = visit(
        shopper,
        gate,
        f"/p/{product['id']}",
        PRODUCT_BANNER,
        klevu_config(PRODUCT_BANNER, segments, pid=product["id"], gpid=product["itemGroupId"]),
        screenshot,
        f"{who}-product",
    )
    assert product["itemGroupId"] not in {PRODUCTS[i]["itemGroupId"] for i in related}, (
        "the product page recommends the product itself"
    )

    gate.release()
    shopper.adds_to_cart(product["id"])
    add_ons = visit(
        shopper,
        gate,
        "/checkout",
        CHECKOUT_BANNER,
        klevu_config(CHECKOUT_BANNER, segments),
        screenshot,
        f"{who}-checkout",
    )
    assert product["itemGroupId"] not in {PRODUCTS[i]["itemGroupId"] for i in add_ons}, (
        "the checkout banner offers what is already in the cart"
    )
    assert errors == [], "the browser's console showed errors"


def clicks_in_banner(shopper: Shopper, recs_key: str, product_id: str) -> None:
    shopper.page.goto("/")
    shopper.banner(recs_key).locator(f'.kuRECSItemClick[data-id="{product_id}"]').click()
    expect(shopper.page.get_by_test_id("product-name")).to_have_text(PRODUCTS[product_id]["name"])


def test_recently_viewed_is_the_products_clicked_in_banners_newest_first(
    shopper: Shopper, page: Page, klevu_config, screenshot
):
    """Klevu's "recently viewed": products chosen in its banners, not product pages seen."""
    config = klevu_config(HOME_RECENT)
    assert config["metadata"]["logic"] == "RECENTLY_VIEWED"
    page.goto("/")
    shopper.accepts_consent()
    expect(shopper.items(HOME_PICKS).first).to_be_visible()
    expect(shopper.banner(HOME_RECENT)).to_have_count(0)
    first, second, third, unclicked = shopper.item_ids(HOME_PICKS)[:4]

    page.goto(f"/p/{unclicked}")  # a product page on its own is not "recently viewed"
    for product_id in (first, second, third):
        clicks_in_banner(shopper, HOME_PICKS, product_id)
    page.goto("/")
    expect(shopper.banner(HOME_RECENT).locator(".kuRECS-title")).to_have_text(
        config["metadata"]["title"]
    )
    assert shopper.item_ids(HOME_RECENT) == [third, second, first]

    clicks_in_banner(shopper, HOME_PICKS, first)
    page.goto("/")
    expect(shopper.items(HOME_RECENT).first).to_have_attribute("data-id", first)
    assert shopper.item_ids(HOME_RECENT) == [first, third, second]
    assert parse(shopper.cookie("klevu_recent_clicks")) == (first, third, second)
    shopper.banner(HOME_RECENT).scroll_into_view_if_needed()
    screenshot(page, "anonymous-home-recently-viewed")


def checkout_as(shopper: Shopper, persona: str) -> None:
    shopper.becomes(persona)
    shopper.adds_to_cart(next(iter(PRODUCTS)))
    shopper.page.goto("/checkout")
    expect(shopper.page.locator(".order-lines")).to_be_visible()


def test_checkout_shows_vips_no_upsell(shopper: Shopper, page: Page, klevu_config, screenshot):
    config = klevu_config(CHECKOUT_BANNER, persona_segments("oliver"))
    assert config["metadata"]["action"] == HIDE
    checkout_as(shopper, "oliver")

    expect(shopper.banner(CHECKOUT_BANNER)).to_have_count(0)
    assert f'data-klevu-banner="{CHECKOUT_BANNER}"' not in page.request.get("/checkout").text()
    screenshot(page, "oliver-checkout-hidden")


def test_checkout_shows_bargain_hunters_the_static_promo(
    shopper: Shopper, page: Page, klevu_config, screenshot, base_url
):
    config = klevu_config(CHECKOUT_BANNER, persona_segments("sam"))
    assert config["metadata"]["action"] == STATIC
    promo = config["staticContent"][0]
    desktop = next(i for i in promo["image"] if i["resolution"] == "desktop")
    checkout_as(shopper, "sam")

    banner = shopper.banner(CHECKOUT_BANNER)
    expect(banner.locator(".kuRECSItem")).to_have_count(0)
    picture = page.locator(f'img[src="{desktop["url"]}"]').and_(
        page.get_by_alt_text(desktop["altTag"], exact=True)
    )
    image = banner.locator(picture)
    expect(image).to_be_visible()
    expect(banner.get_by_role("link").filter(has=picture)).to_have_attribute(
        "href", re.compile(re.escape(promo["targetUrl"]) + "$")
    )
    assert image.evaluate("img => img.complete && img.naturalWidth > 0"), "promo did not load"
    box = image.bounding_box()
    width, height = image.get_attribute("width"), image.get_attribute("height")
    assert box is not None and width and height, "promo has no box or no width and height"
    assert box["width"] / box["height"] == pytest.approx(int(width) / int(height), rel=0.02)
    served = page.evaluate(BANNERS_IN_HTML, page.request.get("/checkout").text())
    assert served[CHECKOUT_BANNER]["title"] == config["metadata"]["title"]
    screenshot(page, "sam-checkout-promo")

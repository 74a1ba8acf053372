"""The page inspector in Chromium: its story of a page view is what Klevu actually received.

For each page type, as an anonymous visitor and as two personas, every fact the panel shows
(segments, the config request's ``sids``, the variant, the search's record count) is checked
against the simulator's journal entries made while that very page loaded; identities against
the personas file. Step 4 is checked against the collector: a click shows as delivered.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import CATEGORIES, PRODUCTS, Shopper
from tests.helpers import exchange_id, persona_segments, wait_until

PRODUCT = next(iter(PRODUCTS.values()))
PAGES = {
    "home": "/",
    "category": f"/c/{next(iter(CATEGORIES))}",
    "product": f"/p/{PRODUCT['id']}",
    "checkout": "/checkout",
}


def journal_since(sim, seq: int, kind: str) -> list[dict]:
    return [
        call["detail"]
        for call in sim.state()["recent"]
        if call["seq"] > seq and call["kind"] == kind
    ]


def last_seq(sim) -> int:
    return max((call["seq"] for call in sim.state()["recent"]), default=0)


@pytest.mark.parametrize("persona", [None, "maya", "oliver"])
def test_inspector_tells_what_klevu_received_on_every_page(
    persona, shopper: Shopper, page: Page, sim
):
    page.goto("/")
    shopper.accepts_consent()
    if persona:
        shopper.becomes(persona)
    for name, path in PAGES.items():
        before = last_seq(sim)
        page.goto(path)
        panel = shopper.opens_inspector()
        configs = {c["recsKey"]: c for c in journal_since(sim, before, "config")}
        searches = [
            q["results"] for s in journal_since(sim, before, "search") for q in s["queries"]
        ]

        identity = panel.get_by_test_id("inspector-identity")
        expect(identity).to_have_attribute("data-consent", "granted")
        expect(identity).to_have_attribute(
            "data-exchange", exchange_id(persona)[:6] + "…" if persona else ""
        )
        segments = panel.get_by_test_id("inspector-segments")
        expect(segments).to_have_attribute("data-segments", ",".join(persona_segments(persona)))

        banners = panel.get_by_test_id("inspector-banner")
        assert banners.count() == len(configs) > 0, (name, configs)
        shown_counts = []
        for index in range(banners.count()):
            banner = banners.nth(index)
            key = banner.get_attribute("data-recs-key") or ""
            asked = configs[key]
            assert asked["sids"] == persona_segments(persona), (name, key)
            url = banner.get_by_test_id("inspector-config-url").inner_text()
            sent = parse_qs(urlsplit(url.split(" ", 1)[1]).query)
            assert sent.get("sids", [""])[0].split(",") == (asked["sids"] or [""]), url
            assert sent.get("pid", [None])[0] == asked["pid"]
            assert banner.get_attribute("data-segment") == (
                "" if asked["variant"] == "default" else asked["variant"]
            )
            assert banner.get_attribute("data-title") == asked["title"]
            assert banner.get_attribute("data-source") == "fresh"
            records = banner.get_attribute("data-records")
            if records:
                shown_counts.append(int(records))
            if banner.get_attribute("data-shown") == "true":
                expect(shopper.banner(key)).to_be_attached()
            else:
                expect(shopper.banner(key)).to_have_count(0)
                expect(banner.get_by_test_id("inspector-reason")).not_to_be_empty()
        assert sorted(shown_counts) == sorted(searches), (name, shown_counts, searches)
        assert "klevu-simulator" not in panel.inner_html(), "the api key is shown unmasked"


def test_inspector_follows_a_view_and_a_click_to_the_collector(shopper: Shopper, page: Page, sim):
    page.goto("/")
    shopper.accepts_consent()
    page.goto(PAGES["product"])
    shopper.opens_inspector()
    banner_key = "k-product-similar"
    view = shopper.inspected_event("view_recs_list", banner_key)
    shopper.banner(banner_key).scroll_into_view_if_needed()
    expect(view).to_have_attribute("data-state", "delivered", timeout=15_000)

    chosen = shopper.items(banner_key).first
    chosen_id = chosen.get_attribute("data-id")
    chosen.locator("a").first.click()
    page.wait_for_url(f"**/p/{chosen_id}")
    shopper.opens_inspector()
    click = shopper.inspected_event("select_recs_list", banner_key, earlier=True)
    expect(click).to_have_attribute("data-state", "delivered", timeout=15_000)
    wait_until(
        lambda: [
            e
            for e in sim.events()["events"]
            if e["summary"]["event"] == "select_recs_list"
            and e["summary"]["items"][0]["item_id"] == chosen_id
        ],
        message="the collector did not receive the click the inspector reports",
    )


def test_step_four_turns_delivered_live_once_the_banner_is_seen(
    visible_rule_shop: str, shopper: Shopper, page: Page
):
    """With ``KLEVU_VIEW_RULE=visible`` nothing is reported until the banner is seen: the open
    panel shows that, then the delivery, without a reload."""
    banner_key = "k-product-similar"
    page.goto(f"{visible_rule_shop}/")
    shopper.accepts_consent()
    page.goto(f"{visible_rule_shop}{PAGES['product']}")
    shopper.opens_inspector()
    view = shopper.inspected_event("view_recs_list", banner_key)
    expect(view).to_have_attribute("data-state", "waiting")
    expect(shopper.banner(banner_key)).not_to_be_in_viewport(ratio=0.5)

    shopper.banner(banner_key).scroll_into_view_if_needed()
    expect(view).to_have_attribute("data-state", "delivered", timeout=15_000)

"""The two example tests of docs/testing.md: copy one to start your own.

They use only what the QA kit documents: the ``shopper`` page object, the ``sim`` simulator
(reset for each test), ``klevu_config`` for what Klevu would answer, ``received`` for what
reached the collector, and ``wait_until`` for anything that happens in the background.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Shopper
from tests.helpers import persona_segments, wait_until


def test_a_persona_sees_the_banner_for_their_segment(shopper: Shopper, page: Page, klevu_config):
    page.goto("/")
    shopper.accepts_consent()
    shopper.becomes("maya")  # as if Maya clicked her Klaviyo email
    page.goto("/")

    expected = klevu_config("k-home-picks", persona_segments("maya"))["metadata"]["title"]
    expect(shopper.banner("k-home-picks")).to_contain_text(expected)


def test_a_click_reaches_klevu_although_the_collector_fails_every_other_call(
    shopper: Shopper, page: Page, sim, received
):
    sim.faults(collect={"fail_every": 2, "status": 503})  # the simulator's control API
    page.goto("/")
    shopper.accepts_consent()

    chosen = shopper.items("k-home-picks").nth(1)
    product_id = chosen.get_attribute("data-id")
    chosen.locator("a").first.click()
    expect(page.get_by_test_id("product-name")).to_be_visible()

    clicks = wait_until(
        lambda: received("select_recs_list"),
        seconds=20,
        message="the click never reached the collector",
    )
    assert [item["item_id"] for item in clicks[0]["event_data"]["items"]] == [product_id]
    assert clicks[0]["event_data"]["items"][0]["index"] == 2

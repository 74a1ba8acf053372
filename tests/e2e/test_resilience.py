"""Klevu sick, the shop not: in Chromium, with Klevu's search hung, a returning shopper's home
page is interactive within the page budget and still shows the banner, from stale answers."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from storefront import create_app
from tests.helpers import LiveServer, app_config, start_simulator

BUDGET_MS = 800
HOME_PICKS = '[data-klevu-banner="k-home-picks"]'


@pytest.fixture
def sick_klevu_shop(tmp_path):
    """A simulator of its own (the hung calls it is left with must not reach other tests) and
    a shop whose search answers go stale after one second."""
    simulator = start_simulator()
    shop = LiveServer(
        create_app(
            app_config(
                simulator.url,
                tmp_path,
                OUTBOX_RELAY_IN_APP=False,
                KLEVU_SEARCH_TTL="1",
                KLEVU_CONFIG_TTL="1",
                KLEVU_PAGE_BUDGET_MS=str(BUDGET_MS),
            )
        )
    )
    yield simulator, shop
    shop.stop()
    simulator.process.terminate()
    simulator.process.wait(timeout=10)


def test_with_search_hung_the_page_is_interactive_within_the_budget_with_the_stale_banner(
    page: Page, sick_klevu_shop, screenshot
):
    simulator, shop = sick_klevu_shop
    page.goto(f"{shop.url}/")
    page.get_by_test_id("consent-accept").click()
    page.goto(f"{shop.url}/")
    expect(page.locator(HOME_PICKS)).to_be_visible()
    title = page.locator(f"{HOME_PICKS} .kuRECS-title").inner_text()
    time.sleep(1.2)  # the answers are stale now
    simulator.faults(search={"latency_ms": 10_000}, config={"latency_ms": 10_000})

    started = time.monotonic()
    page.goto(f"{shop.url}/", wait_until="domcontentloaded")
    interactive = time.monotonic() - started

    assert interactive < (BUDGET_MS + 700) / 1000  # generous: a shared machine
    expect(page.locator(f"{HOME_PICKS} .kuRECS-title")).to_have_text(title)
    expect(page.locator(f"{HOME_PICKS} .kuRECSItem").first).to_be_visible()
    assert page.evaluate("document.readyState") in ("interactive", "complete")
    screenshot(page, "resilience-search-hung-stale-banner")

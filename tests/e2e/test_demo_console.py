"""The simulator's demo console in Chromium: one click takes a Klevu service down, the shop
keeps serving and its inspector says why; another brings it back.

The console is driven the way a sales engineer drives it (buttons on the dashboard page, which
post to the simulator's own control API from that page); the plan it set is read back from
``/_sim/faults``, and the shop's side from its pages and inspector.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import PRODUCTS, Shopper

HOME_BANNER = "k-home-picks"
PRODUCT_BANNER = "k-product-similar"
# With an answers cache a banner may be served stale while search is down; without one it is
# left out. Either way the page is served and the inspector names the failing call.
DOWN_SOURCES = ("failed", "stale")


@pytest.fixture
def console(context: BrowserContext, sim) -> Page:
    dashboard = context.new_page()
    dashboard.goto(f"{sim.url}/_sim/")
    expect(dashboard.get_by_test_id("demo-console")).to_be_visible()
    return dashboard


def test_search_down_and_back(console: Page, shopper: Shopper, page: Page, sim):
    page.goto("/")
    shopper.accepts_consent()
    expect(shopper.banner(HOME_BANNER)).to_be_attached()

    console.get_by_test_id("console-down-search").click()
    expect(console.get_by_test_id("fault-plan")).to_contain_text("search")
    expect(console.get_by_test_id("fault-plan")).to_contain_text("down")
    assert sim.state()["faults"]["search"]["down"] is True

    response = page.goto("/")
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", name="New this season")).to_be_visible()
    shopper.opens_inspector()
    told = shopper.inspected_banner(HOME_BANNER)
    assert told.get_attribute("data-source") in DOWN_SOURCES
    if told.get_attribute("data-source") == "failed":
        expect(shopper.banner(HOME_BANNER)).to_have_count(0)
        expect(told.get_by_test_id("inspector-reason")).to_contain_text("search")
        expect(told.get_by_test_id("inspector-reason")).to_contain_text("HTTP 503")

    console.get_by_test_id("console-restore").click()
    expect(console.get_by_test_id("fault-plan")).to_contain_text("No simulated faults")
    page.reload()
    shopper.opens_inspector()
    expect(shopper.inspected_banner(HOME_BANNER)).to_have_attribute("data-source", "fresh")
    expect(shopper.inspected_banner(HOME_BANNER)).to_have_attribute("data-shown", "true")
    expect(shopper.banner(HOME_BANNER)).to_be_attached()


def test_collector_down_the_outbox_catches_up(console: Page, shopper: Shopper, page: Page):
    page.goto("/")
    shopper.accepts_consent()
    console.get_by_test_id("console-down-collect").click()
    expect(console.get_by_test_id("fault-plan")).to_contain_text("collect")

    page.goto(f"/p/{next(iter(PRODUCTS))}")
    shopper.opens_inspector()
    shopper.banner(PRODUCT_BANNER).scroll_into_view_if_needed()
    view = shopper.inspected_event("view_recs_list", PRODUCT_BANNER)
    expect(view).to_have_attribute("data-state", "retrying", timeout=15_000)

    console.get_by_test_id("console-restore").click()
    expect(view).to_have_attribute("data-state", "delivered", timeout=30_000)
    console.reload()
    delivered = console.get_by_test_id("received-event").first
    expect(delivered.get_by_test_id("delivery-delay")).to_contain_text("+")


def test_the_dashboard_shows_no_console_error(context: BrowserContext, sim):
    """On stage the browser's console is open: the dashboard asks for nothing it lacks (its
    favicon included)."""
    dashboard = context.new_page()
    errors: list[str] = []
    dashboard.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    dashboard.goto(f"{sim.url}/_sim/")
    expect(dashboard.get_by_test_id("demo-console")).to_be_visible()
    dashboard.wait_for_load_state("networkidle")
    assert errors == []

"""``Server-Timing`` in Chromium: the Klevu steps of a page, where DevTools shows them.

Read through the Performance API (``performance.getEntriesByType('navigation')[0]
.serverTiming``), as DevTools' Timing tab does, for a banner page and a page without banners.
"""

from __future__ import annotations

from playwright.sync_api import Page

from tests.e2e.conftest import Shopper

SERVER_TIMING = """() => performance.getEntriesByType("navigation")[0].serverTiming
    .map(t => ({name: t.name, duration: t.duration, description: t.description}))"""


def test_the_browser_sees_each_klevu_step_of_a_banner_page(
    page: Page, shopper: Shopper, screenshot
):
    page.goto("/")
    shopper.accepts_consent()
    shopper.becomes("maya")
    page.goto("/")
    assert shopper.banner("k-home-picks").count() == 1
    timing = {entry["name"]: entry for entry in page.evaluate(SERVER_TIMING)}
    assert {"segments", "config", "search", "render", "total"} <= set(timing)
    assert all(entry["duration"] >= 0 for entry in timing.values())
    # Steps are parts of the page's time (each banner's config and search ran in parallel,
    # so only one banner's share is compared).
    assert timing["segments"]["duration"] <= timing["total"]["duration"]
    # How many times the step ran: once per configured banner at least (a warm try that
    # finds the cache stale is timed too).
    shown = page.locator("[data-klevu-banner]").count()
    assert int(timing["config"]["description"].removeprefix("n=")) >= shown
    print({name: round(entry["duration"], 1) for name, entry in timing.items()})
    screenshot(page, "server-timing-home")

    page.goto("/cart")
    names = [entry["name"] for entry in page.evaluate(SERVER_TIMING)]
    assert names == ["total"]

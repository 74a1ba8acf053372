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
    assert {"config", "search", "render", "total"} <= set(timing)
    # Step 1 came from the segments cookie the persona switch left in the browser: read in
    # microseconds, not a step the page waited on, so not timed.
    assert "segments" not in timing
    assert all(entry["duration"] >= 0 for entry in timing.values())
    # How many times the step ran: once per configured banner at least (a warm try that
    # finds the cache stale is timed too).
    shown = page.locator("[data-klevu-banner]").count()
    assert int(timing["config"]["description"].removeprefix("n=")) >= shown
    print({name: round(entry["duration"], 1) for name, entry in timing.items()})
    screenshot(page, "server-timing-home")

    # Without that cookie, step 1 asks the shop's cache: timed, a part of the page's time.
    page.context.clear_cookies(name="klevu_segments")
    page.goto("/")
    timing = {entry["name"]: entry for entry in page.evaluate(SERVER_TIMING)}
    assert timing["segments"]["duration"] <= timing["total"]["duration"]

    page.goto("/cart")
    names = [entry["name"] for entry in page.evaluate(SERVER_TIMING)]
    assert names == ["total"]

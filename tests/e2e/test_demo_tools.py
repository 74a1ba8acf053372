"""The demo's tools in Chromium: personas side by side, the scenario packs of the console, and
the dashboard's check of every analytics event. Screenshots as in test_demo_screens.py (README
images with ``--update-screenshots``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, expect

from storefront.simulator import scenarios
from tests.e2e.conftest import Shopper
from tests.e2e.test_demo_screens import WIDTHS, keep, serious_violations
from tests.helpers import persona_segments, wait_until


@pytest.mark.parametrize("width", WIDTHS)
def test_personas_side_by_side(
    width: str, shopper: Shopper, page: Page, klevu_config, pytestconfig
):
    page.set_viewport_size(WIDTHS[width])
    page.goto("/demo/personas")
    shopper.accepts_consent()
    page.get_by_test_id("personas-compare").click()
    columns = page.get_by_test_id("compare-column")
    expect(columns).to_have_count(3)
    for index, persona in enumerate(("anonymous", "maya", "oliver")):
        column = columns.nth(index)
        expect(column).to_have_attribute("data-persona", persona)
        title = klevu_config(
            "k-home-picks", persona_segments(None if persona == "anonymous" else persona)
        )["metadata"]["title"]
        expect(column.locator('[data-klevu-banner="k-home-picks"]')).to_contain_text(title)
    boxes = [columns.nth(i).bounding_box() for i in range(3)]
    assert all(boxes)
    xs = [box["x"] for box in boxes if box]
    ys = [box["y"] for box in boxes if box]
    if width == "desktop":  # side by side
        assert xs == sorted(xs) and len(set(xs)) == 3 and len(set(ys)) == 1
    else:  # stacked
        assert len(set(xs)) == 1 and ys == sorted(ys) and len(set(ys)) == 3
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    assert serious_violations(page) == []
    path = Path(pytestconfig.getoption("--output")) / f"compare-{width}.png"
    page.evaluate("document.querySelector('.site-header').style.position = 'static'")
    page.get_by_test_id("compare").screenshot(path=str(path))
    keep(path, f"compare-{width}", pytestconfig.getoption("--update-screenshots"))


def test_the_inspector_links_to_this_page_side_by_side(shopper: Shopper, page: Page):
    page.goto("/")
    shopper.accepts_consent()
    shopper.becomes("sam")
    page.goto("/c/home-kitchen")
    shopper.opens_inspector()
    page.get_by_test_id("inspector-compare").click()
    expect(page.get_by_test_id("compare-label")).to_contain_text("Category: ")
    first = page.get_by_test_id("compare-column").first
    expect(first).to_have_attribute("data-persona", "sam")
    expect(first).to_have_attribute("data-segments", "seg_bargain")
    assert "category=home-kitchen" in page.url


def test_a_scenario_pack_from_the_console(
    context: BrowserContext, shopper: Shopper, page: Page, sim, pytestconfig
):
    dashboard = context.new_page()
    dashboard.set_viewport_size(WIDTHS["desktop"])
    dashboard.goto(f"{sim.url}/_sim/")
    dashboard.get_by_test_id("scenario-segment-hides-banner").click()
    pack = scenarios.builtin("segment-hides-banner")
    expect(dashboard.get_by_test_id("active-scenario")).to_contain_text(pack.title)
    expect(dashboard.get_by_test_id("active-scenario-description")).to_have_text(pack.description)

    page.goto("/")
    shopper.accepts_consent()
    shopper.becomes("maya")
    page.goto("/")
    expect(page.get_by_test_id("page-title")).to_be_visible()
    expect(shopper.banner("k-home-picks")).to_have_count(0)  # as the description says

    dashboard.bring_to_front()
    dashboard.reload()  # the live view keeps the description while the pack is on
    expect(dashboard.get_by_test_id("active-scenario-description")).to_have_text(pack.description)
    assert serious_violations(dashboard) == []
    path = Path(pytestconfig.getoption("--output")) / "scenario-console.png"
    dashboard.locator("body").screenshot(path=str(path))
    keep(path, "scenario-console", pytestconfig.getoption("--update-screenshots"))

    expect(dashboard.get_by_test_id("scenario-segment-hides-banner")).to_have_class(
        re.compile("is-active")
    )
    dashboard.get_by_test_id("console-reset").click()
    expect(dashboard.get_by_test_id("active-scenario")).to_have_count(0)
    expect(dashboard.get_by_test_id("scenario-segment-hides-banner")).not_to_have_class(
        re.compile("is-active")
    )
    page.goto("/")
    expect(shopper.banner("k-home-picks")).to_have_count(1)


def test_the_shops_own_events_pass_the_check_and_a_broken_one_shows_why(
    context: BrowserContext, shopper: Shopper, page: Page, sim
):
    page.goto("/")
    shopper.accepts_consent()
    shopper.becomes("oliver")
    page.goto("/")
    shopper.banner("k-home-picks").scroll_into_view_if_needed()
    shopper.items("k-home-picks").nth(2).locator("a").first.click()
    expect(page.get_by_test_id("product-name")).to_be_visible()

    def received_three() -> list[dict]:
        events = sim.events()["events"]
        return events if len(events) >= 3 else []

    events = wait_until(received_three, 20, "the shop's impressions and click did not arrive")
    kinds = {e["summary"]["event"] for e in events}
    assert kinds == {"view_recs_list", "select_recs_list"}
    assert [e["problems"] for e in events] == [[]] * len(events)

    broken = dict(events[0]["payload"])
    broken["event_data"] = {**broken["event_data"], "list_id": "k-retired"}
    requests.post(f"{sim.url}/analytics/collect", json=[broken], timeout=5).raise_for_status()

    dashboard = context.new_page()
    dashboard.goto(f"{sim.url}/_sim/")
    expect(
        dashboard.locator('[data-testid=received-event][data-valid="true"]').first
    ).to_be_visible()
    received = sim.events()
    assert received["failing"] == 1  # every event of the shop's passes; the broken one does not
    assert [e["problems"] for e in received["events"] if e["payload"] != broken] == [[]] * (
        len(received["events"]) - 1
    )
    failing = dashboard.locator('[data-testid=received-event][data-valid="false"]')
    expect(failing).to_have_count(1)
    expect(failing.get_by_test_id("event-problem")).to_contain_text(
        "list_id 'k-retired' is neither a recs key nor a spot key of this account"
    )
    expect(dashboard.get_by_test_id("failing-events")).to_contain_text("1")

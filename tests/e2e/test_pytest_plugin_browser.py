"""The plugin's ``persona`` fixture on a Playwright browser context, against the plugin's own
``storefront`` (the shop and simulator processes it starts)."""

from __future__ import annotations

import requests
from playwright.sync_api import BrowserContext, Page, expect

from tests.helpers import persona_segments


def test_a_persona_on_a_browser_context_sees_their_banner(
    storefront, persona, context: BrowserContext, page: Page
):
    persona(context, "sam")
    page.goto(f"{storefront.url}/")
    expected = requests.get(
        f"{storefront.simulator_url}/recommendations/klevu-simulator/settings/k-home-picks",
        params={"sids": ",".join(persona_segments("sam"))},
        timeout=5,
    ).json()["metadata"]["title"]
    expect(page.locator('[data-klevu-banner="k-home-picks"]')).to_contain_text(expected)
    expect(page.get_by_test_id("identity-badge")).to_have_attribute("data-persona", "sam")

"""Browser-test fixtures: a shopper who clicks through the demo, and what Klevu answered.

Expected values never come from the test itself: banner titles, limits and actions come from
the simulator's config CDN for the visitor's segments (``klevu_config``), segments from the
personas file, product facts from the catalog file, and what reached Klevu from the
simulator's ``/_sim/events`` — only this browser's events (``received``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from playwright.sync_api import BrowserContext, Locator, Page, expect

from storefront import create_app
from tests.helpers import LiveServer, app_config

CATALOG = json.loads((Path(__file__).parents[2] / "storefront/data/catalog.json").read_text())
PRODUCTS = {p["id"]: p for p in CATALOG["products"]}
CATEGORIES = {c["slug"]: c for c in CATALOG["categories"]}


class Shopper:
    """One visitor in one browser context, doing what a person does on the demo pages."""

    def __init__(self, page: Page):
        self.page = page

    # -- identity and consent ----------------------------------------------------------------
    def accepts_consent(self) -> None:
        self.page.get_by_test_id("consent-accept").click()
        expect(self.page.get_by_test_id("identity-badge")).to_have_attribute(
            "data-consent", "granted"
        )

    def declines_consent(self) -> None:
        self.page.get_by_test_id("consent-decline").click()
        expect(self.page.get_by_test_id("identity-badge")).to_have_attribute(
            "data-consent", "denied"
        )

    def becomes(self, persona_key: str) -> None:
        """The demo switcher, standing in for a click on that persona's Klaviyo email."""
        self.page.goto("/demo/personas")
        self.page.get_by_test_id(f"persona-{persona_key}").click()
        expect(self.page.get_by_test_id("identity-badge")).to_have_attribute(
            "data-persona", persona_key
        )

    def forgets_me(self) -> None:
        self.page.goto("/demo/personas")
        self.page.get_by_test_id("forget-me").click()
        expect(self.page.get_by_test_id("identity-badge")).to_have_attribute("data-persona", "")

    def segments(self) -> list[str]:
        """What the shop resolved for this browser (its own cookies), via /klevu/segments."""
        response = self.page.request.get("/klevu/segments")
        assert response.ok, response.status
        return response.json()["segments"]

    def cookie(self, name: str) -> str | None:
        return next((c["value"] for c in self.page.context.cookies() if c["name"] == name), None)

    # -- shopping ------------------------------------------------------------------------------
    def banner(self, recs_key: str) -> Locator:
        return self.page.locator(f'[data-klevu-banner="{recs_key}"]')

    def items(self, recs_key: str) -> Locator:
        return self.banner(recs_key).locator(".kuRECSItem")

    def item_ids(self, recs_key: str) -> list[str]:
        return self.items(recs_key).evaluate_all("els => els.map(e => e.dataset.id)")

    # -- the page inspector ("How this page was personalised") --------------------------------
    def opens_inspector(self) -> Locator:
        """Opens the panel (closed on every page load) and returns it."""
        panel = self.page.get_by_test_id("inspector")
        if panel.get_attribute("open") is None:
            self.page.get_by_test_id("inspector-toggle").click()
        expect(panel).to_have_attribute("open", "")
        return panel

    def inspected_banner(self, recs_key: str) -> Locator:
        return self.page.locator(f'[data-testid="inspector-banner"][data-recs-key="{recs_key}"]')

    def inspected_event(self, event: str, recs_key: str, *, earlier: bool = False) -> Locator:
        """Step 4's line for one event of a banner: of this page view, or of the previous."""
        events = self.page.get_by_test_id(
            "inspector-earlier-events" if earlier else "inspector-events"
        )
        return events.locator(f'[data-event="{event}"][data-banner="{recs_key}"]').first

    def adds_to_cart(self, product_id: str) -> None:
        self.page.goto(f"/p/{product_id}")
        self.page.get_by_test_id("add-to-cart").click()
        expect(self.page).to_have_url(re.compile(r"/cart$"))
        expect(self.page.locator(".cart-table")).to_contain_text(PRODUCTS[product_id]["name"])


@pytest.fixture
def shopper(page: Page) -> Shopper:
    return Shopper(page)


@pytest.fixture
def visible_rule_shop(simulator, tmp_path):
    """A second shop, configured with ``KLEVU_VIEW_RULE=visible``."""
    server = LiveServer(create_app(app_config(simulator.url, tmp_path, KLEVU_VIEW_RULE="visible")))
    yield server.url
    server.stop()


@pytest.fixture
def klevu_config(sim) -> Callable[..., dict]:
    """The config CDN's answer for a banner, asked for as the shop must.

    docs/klevu-wire-format.md §2.
    """

    def config(recs_key: str, segments: list[str] | tuple[str, ...] = (), **params) -> dict:
        query = {"sids": ",".join(segments), **params}
        response = requests.get(
            f"{sim.url}/recommendations/klevu-simulator/settings/{recs_key}",
            params={k: v for k, v in query.items() if v},
            timeout=5,
        )
        response.raise_for_status()
        return response.json()

    return config


@pytest.fixture
def received(sim, context: BrowserContext) -> Callable[..., list[dict]]:
    """Analytics events the simulator received from *this* browser's Klevu session.

    ``received("view_recs_list", list_id="k-...")`` → the unique payloads, oldest first.
    Filtering on the session keeps a late delivery from an earlier test out of the count.
    """

    def events(kind: str, **event_data) -> list[dict]:
        session = next(
            (c["value"] for c in context.cookies() if c["name"] == "klevu_session"), None
        )
        assert session, "this browser has no Klevu session cookie"
        return [
            e["payload"]
            for e in sim.events()["events"]
            if not e["duplicate"]
            and e["payload"].get("event") == kind
            and (e["payload"].get("user_profile") or {}).get("session_id") == session
            and all(e["payload"]["event_data"].get(k) == v for k, v in event_data.items())
        ]

    return events


@pytest.fixture
def screenshot(pytestconfig) -> Callable[[Page, str], Path]:
    """Full-page screenshots into pytest-playwright's output folder (test-results/)."""
    folder = Path(pytestconfig.getoption("--output"))

    def take(page: Page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.evaluate("window.scrollTo(0, 0)")  # else the sticky header lands mid-picture
        page.screenshot(path=str(path), full_page=True)
        return path

    return take

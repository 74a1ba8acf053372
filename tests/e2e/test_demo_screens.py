"""The demo's two screens, the page inspector and the demo console, at desktop and phone widths:
screenshots for people to look at, and axe-core for what a machine can check.

Screenshots land in test-results/; with ``--update-screenshots`` the test also copies them
into docs/, where the README shows them, so they are redone from the running shop rather than
drawn by hand. axe-core (tests/e2e/vendor/) runs in the page: no serious or critical
violation is allowed, so every control has an accessible name and enough contrast.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, ViewportSize, expect

from tests.e2e.conftest import Shopper

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
DOCS = Path(__file__).parents[2] / "docs"
WIDTHS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}
BANNER = "k-home-picks"


def serious_violations(page: Page, selector: str | None = None) -> list[dict]:
    """axe-core's serious and critical findings for the page (or one element of it).

    Evaluated through the DevTools protocol rather than added as a <script>, so a strict
    Content-Security-Policy on the page does not stop it.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)
    found = page.evaluate(
        """async selector => {
        const context = selector ? document.querySelector(selector) : document;
        const result = await axe.run(context, {resultTypes: ["violations"]});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                            nodes: v.nodes.map(n => n.target.join(" "))}));
    }""",
        selector,
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def keep(path: Path, name: str, update: bool) -> None:
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    if update:
        shutil.copyfile(path, DOCS / f"{name}.png")


@pytest.fixture
def update_docs(pytestconfig) -> bool:
    return bool(pytestconfig.getoption("--update-screenshots"))


@pytest.mark.parametrize("width", WIDTHS)
def test_inspector_screens(
    width: str, shopper: Shopper, page: Page, update_docs: bool, pytestconfig
):
    page.set_viewport_size(WIDTHS[width])
    page.goto("/")
    shopper.accepts_consent()
    shopper.becomes("maya")
    page.goto("/")
    panel = shopper.opens_inspector()
    shopper.banner(BANNER).scroll_into_view_if_needed()
    expect(shopper.inspected_event("view_recs_list", BANNER)).to_have_attribute(
        "data-state", "delivered", timeout=15_000
    )

    assert serious_violations(page, "[data-testid=inspector]") == []
    assert serious_violations(page) == []

    path = Path(pytestconfig.getoption("--output")) / f"inspector-{width}.png"
    # The sticky header would sit on top of the panel while Playwright scrolls through it.
    # Through the CSSOM: the page's CSP refuses the <style> element the `style` option adds.
    page.evaluate("document.querySelector('.site-header').style.position = 'static'")
    panel.screenshot(path=str(path))
    keep(path, f"inspector-{width}", update_docs)


@pytest.mark.parametrize("width", WIDTHS)
def test_console_screens(
    width: str,
    context: BrowserContext,
    shopper: Shopper,
    page: Page,
    sim,
    update_docs: bool,
    pytestconfig,
):
    page.goto("/")
    shopper.accepts_consent()
    shopper.banner(BANNER).scroll_into_view_if_needed()
    dashboard = context.new_page()
    dashboard.set_viewport_size(WIDTHS[width])
    dashboard.goto(f"{sim.url}/_sim/")
    dashboard.get_by_test_id("console-down-search").click()
    expect(dashboard.get_by_test_id("fault-plan")).to_contain_text("search")
    expect(dashboard.get_by_test_id("received-event").first).to_be_visible(timeout=15_000)

    assert serious_violations(dashboard) == []

    path = Path(pytestconfig.getoption("--output")) / f"console-{width}.png"
    dashboard.screenshot(path=str(path), full_page=width == "desktop")
    keep(path, f"console-{width}", update_docs)

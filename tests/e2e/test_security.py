"""The security posture in Chromium: the CSP breaks nothing, and holds when it has to.

- Every page type, as an anonymous visitor and as a persona: no CSP violation at all (a
  ``securitypolicyviolation`` listener in every frame, and Chromium's console), while banners
  are styled, impressions reach Klevu, and the consent, cart, checkout and persona forms work;
  the same forms work with JavaScript off.
- Another site (``localhost`` is another site than ``127.0.0.1``) posting to each form route
  and to the beacon from a real page: 403, and the cart, consent and outbox are unchanged.
- A hostile Klevu config (template, CSS and product data) served by a simulator in this
  process: nothing runs, nothing loads from a foreign host, the page stays put and visible.
  With the sanitizer switched off (``STOREFRONT_UNSAFE_NO_SANITIZE``, tests only), the hostile
  scripts reach the page and the CSP alone keeps them from running.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import replace

import pytest
import requests
from flask import Flask, request
from playwright.sync_api import Browser, BrowserContext, Page, expect

from storefront import create_app
from storefront.catalog import load_catalog
from storefront.simulator import create_app as create_simulator, looks
from storefront.simulator.records import Indexed
from storefront.simulator.state import EXTENSION, install
from tests.helpers import LiveServer, app_config, wait_until

CATALOG = load_catalog()
PRODUCT, OTHER_PRODUCT = CATALOG.products[0], CATALOG.products[5]
CATEGORY = CATALOG.categories[0]

# Reports every CSP violation of every frame (srcdoc frames included) to the test.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", e => window.reportCsp(
  {directive: e.effectiveDirective, blocked: e.blockedURI, page: location.href,
   sample: e.sample}), true);
"""
# A banner is styled by its config's CSS only if the nonce let its <style> element in.
BANNER_CSS_APPLIED = """el => getComputedStyle(el).getPropertyValue("--kuRECS-radius").trim()"""


def watch_csp(context: BrowserContext, page: Page) -> list[dict]:
    """CSP violations from now on, from the DOM event and from Chromium's console."""
    seen: list[dict] = []
    context.expose_function("reportCsp", lambda violation: seen.append(violation))
    context.add_init_script(CSP_LISTENER)
    page.on(
        "console",
        lambda message: (
            seen.append({"console": message.text})
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return seen


def expect_styled_banners(page: Page, *, at_least: int = 0) -> None:
    """Every Klevu banner on the page wears its config's CSS (variants may hide a banner)."""
    containers = page.locator("[data-klevu-banner] .kuRECS-container")
    if at_least:
        expect(containers.first).to_be_visible()
    radii = containers.evaluate_all(f"els => els.map({BANNER_CSS_APPLIED})")
    assert len(radii) >= at_least and set(radii) <= {"12px"}, f"unstyled banners: {radii}"


# -- zero violations, everything works --------------------------------------------------------
@pytest.mark.parametrize("persona", [None, "maya"], ids=["anonymous", "persona"])
def test_every_page_type_works_with_zero_csp_violations(
    persona, shopper, page: Page, context, received, screenshot
):
    violations = watch_csp(context, page)
    page.goto("/")
    expect(page.get_by_test_id("consent-banner")).to_be_visible()
    if persona:
        shopper.becomes(persona)  # the personas form (counts as consent)
        page.goto("/")
    else:
        shopper.accepts_consent()  # the consent banner's form
    expect_styled_banners(page, at_least=1)
    banner = page.locator("[data-klevu-token]").first
    banner.scroll_into_view_if_needed()
    wait_until(
        lambda: received("view_recs_list"), 20, "the beacon's impression never reached Klevu"
    )
    screenshot(page, f"security-home-{persona or 'anonymous'}")

    page.goto(f"/c/{CATEGORY.slug}")
    expect_styled_banners(page)
    shopper.adds_to_cart(PRODUCT.id)  # product page, then its form
    page.goto(f"/p/{OTHER_PRODUCT.id}")
    expect_styled_banners(page)
    page.get_by_test_id("add-to-cart").click()
    page.locator(".cart-table tr", has_text=OTHER_PRODUCT.name).get_by_role(
        "button", name="Remove"
    ).click()
    expect(page.locator(".cart-table")).not_to_contain_text(OTHER_PRODUCT.name)
    page.goto("/checkout")
    expect_styled_banners(page)
    page.get_by_role("button", name="Place order").click()
    expect(page.locator(".flash")).to_contain_text("nothing was charged")
    page.goto("/demo/personas")
    page.get_by_test_id("forget-me").click()
    expect(page.get_by_test_id("identity-badge")).to_have_attribute("data-persona", "")
    missing = page.goto("/no-such-page")
    assert missing is not None and missing.status == 404
    screenshot(page, f"security-404-{persona or 'anonymous'}")
    assert violations == []


def test_the_simulator_dashboard_runs_its_script_with_zero_csp_violations(sim, page: Page, context):
    violations = watch_csp(context, page)
    page.goto(f"{sim.url}/_sim/")
    page.evaluate("document.getElementById('live').dataset.old = 'yes'")
    # The page's own script swaps in a fresh copy of the live section every 2 s.
    expect(page.locator("#live")).not_to_have_attribute("data-old", "yes", timeout=10_000)
    expect(page.locator("#live")).to_be_visible()
    assert violations == []


def test_the_forms_work_without_javascript(browser: Browser, base_url):
    context = browser.new_context(base_url=base_url, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto("/")
        page.get_by_test_id("consent-accept").click()
        expect(page.get_by_test_id("identity-badge")).to_have_attribute("data-consent", "granted")
        page.goto(f"/p/{PRODUCT.id}")
        page.get_by_test_id("add-to-cart").click()
        expect(page.locator(".cart-table")).to_contain_text(PRODUCT.name)
        page.goto("/demo/personas")
        page.get_by_test_id("persona-maya").click()
        expect(page.get_by_test_id("identity-badge")).to_have_attribute("data-persona", "maya")
    finally:
        context.close()


# -- another site posting ---------------------------------------------------------------------
class ForeignSite:
    """Another site (served as ``localhost``, the shop being ``127.0.0.1``): it serves the
    pages a test gives it and counts every request that reaches it."""

    def __init__(self):
        self.pages: dict[str, str] = {}
        self.hits: list[str] = []
        self._lock = threading.Lock()
        app = Flask("foreign")

        @app.route("/<path:name>", methods=["GET", "POST"])
        def anything(name: str):
            with self._lock:
                self.hits.append(request.full_path)
            return self.pages.get(name, ""), 200 if name in self.pages else 404

        self.server = LiveServer(app)
        self.url = self.server.url.replace("127.0.0.1", "localhost")

    def page(self, name: str, html: str) -> str:
        self.pages[name] = f"<!doctype html><title>{name}</title>{html}"
        return f"{self.url}/{name}"


@pytest.fixture
def foreign():
    site = ForeignSite()
    yield site
    site.server.stop()


FORMS = {
    "/cart/add": {"product_id": OTHER_PRODUCT.id},
    "/cart/remove": {"product_id": PRODUCT.id},
    "/checkout": {},
    "/consent": {"choice": "decline", "next": "/"},
    "/demo/persona": {"persona": "maya", "next": "/"},
    "/demo/forget": {"next": "/"},
}


def visitor(page: Page, shopper) -> tuple[bool, bool, str | None, str | None]:
    page.goto("/cart")
    cart = page.locator(".cart-table")
    badge = page.get_by_test_id("identity-badge")
    return (
        cart.filter(has_text=PRODUCT.name).count() == 1,
        cart.filter(has_text=OTHER_PRODUCT.name).count() == 1,
        badge.get_attribute("data-consent"),
        badge.get_attribute("data-persona"),
    )


@pytest.mark.parametrize("path", FORMS)
def test_another_sites_form_is_refused_and_changes_nothing(
    path, foreign, shopper, page: Page, base_url, screenshot
):
    page.goto("/")
    shopper.accepts_consent()
    shopper.adds_to_cart(PRODUCT.id)
    before = visitor(page, shopper)
    fields = "".join(
        f'<input type="hidden" name="{k}" value="{v}">' for k, v in FORMS[path].items()
    )
    attack = foreign.page(
        "attack",
        f'<form id="f" method="post" action="{base_url}{path}">'
        f'{fields}</form><script>document.getElementById("f").submit()</script>',
    )
    with page.expect_response(f"{base_url}{path}") as answer:
        page.goto(attack)
    assert answer.value.status == 403
    expect(page.locator(".error-page")).to_contain_text("sent from another site")
    if path == "/cart/add":
        screenshot(page, "security-refused-form")
    assert visitor(page, shopper) == before == (True, False, "granted", "")


def test_another_sites_beacon_is_refused_and_queues_nothing(foreign, page: Page, base_url):
    html = requests.get(f"{base_url}/p/{PRODUCT.id}", timeout=10).text
    token = re.search(r'data-klevu-token="([^"]+)"', html)
    assert token, "the product page has no banner token"
    body = json.dumps({"type": "view", "token": token.group(1)})
    attack = foreign.page(
        "beacon",
        f"<script>fetch({json.dumps(base_url + '/klevu/events')}, "
        f"{{method: 'POST', mode: 'no-cors', body: {json.dumps(body)}}})"
        "</script>",
    )
    with page.expect_response(f"{base_url}/klevu/events") as answer:
        page.goto(attack)
    assert answer.value.status == 403
    # The same event from the shop's own page is new: the refused one was never queued.
    own = requests.post(
        f"{base_url}/klevu/events",
        data=body,
        timeout=10,
        headers={"Origin": base_url, "Sec-Fetch-Site": "same-origin"},
    )
    assert (own.status_code, own.json()["duplicate"]) == (202, False)


# -- a hostile Klevu config -------------------------------------------------------------------
def script_vectors(foreign_url: str) -> str:
    """Markup that runs script, each marking ``window.__pwned`` and calling the foreign host."""
    run = "window.top.__pwned='{}';new Image().src='" + foreign_url + "/ran-{}'"
    return "".join(
        [
            f"<script>{run.format('script', 'script')}</script>",
            f'<img src="/img/none.png" onerror="{run.format("onerror", "onerror")}">',
            f'<a class="js-link" href="javascript:{run.format("href", "href")}">'
            "javascript link</a>",
            f"<svg><script>{run.format('svg', 'svg')}</script></svg>",
            '<iframe srcdoc="<script>parent.__pwned=&quot;srcdoc&quot;</script>"></iframe>',
            f'<img src="{foreign_url}/pixel.png" alt="">',
        ]
    )


def layout_vectors(foreign_url: str) -> str:
    """Markup that would take the visitor elsewhere or load from elsewhere without script."""
    return (
        f'<base href="{foreign_url}/">'
        f'<meta http-equiv="refresh" content="0;url={foreign_url}/refresh">'
        f'<form action="{foreign_url}/form" method="post"><input name="q" value="card">'
        f"<button>go</button></form>"
        f'<link rel="stylesheet" href="{foreign_url}/link.css">'
        f'<object data="{foreign_url}/object"></object>'
        f'<div style="position:fixed;inset:0;z-index:99999;background:#000">cover</div>'
        '<p class="inline-styled" style="color: rgb(1, 2, 3)">styled inline</p>'
    )


def hostile_css(foreign_url: str, *, layout: bool) -> str:
    css = (
        f'@import url("{foreign_url}/import.css");\n'
        ".kuRECS-container { --kuRECS-radius: 12px; }\n"
        f'.kuRECS-title {{ background: url("{foreign_url}/bg.png"); }}\n'
        ".kuRECS-header { width: expression(alert(1)); }\n"
        "</style><script>window.top.__pwned='style-breakout'</script><style>\n"
    )
    if layout:
        css += (
            "body { display: none; }\n"
            ".kuRECS-container { position: fixed; inset: 0; z-index: 99999; }\n"
        )
    return css


def hostile_records(index: tuple[Indexed, ...], foreign_url: str) -> tuple[Indexed, ...]:
    """Product data with markup in names and URLs, and images on the foreign host."""

    def record(n: int, entry: Indexed) -> Indexed:
        if n >= 3:
            return entry
        return Indexed(
            entry.product,
            {
                **entry.record,
                "name": f"<img src=x onerror=\"window.top.__pwned='name'\">{entry.product.name}",
                "url": (
                    "javascript:window.top.__pwned='url'"
                    if n == 0
                    else f"/p/{entry.product.id}\"><script>window.top.__pwned='url'</script>"
                ),
                "image": f"{foreign_url}/product-{n}.png",
                "imageUrl": f"{foreign_url}/p{n}.png",
            },
        )

    return tuple(record(n, entry) for n, entry in enumerate(index))


@pytest.fixture
def hostile_shop(request, foreign, tmp_path, monkeypatch):
    """A simulator in this process whose every banner look is hostile, and a shop using it;
    ``request.param`` is whether the shop's sanitizer is on."""
    sanitize = request.param
    template = (
        script_vectors(foreign.url)
        + (layout_vectors(foreign.url) if sanitize else "")
        + looks.template("grid")
    )
    monkeypatch.setattr(looks, "template", lambda look: template)
    monkeypatch.setattr(looks, "stylesheet", lambda: hostile_css(foreign.url, layout=sanitize))
    simulator = create_simulator()
    data = simulator.extensions[EXTENSION]["data"]
    install(simulator, replace(data, index=hostile_records(data.index, foreign.url)))
    sim_server = LiveServer(simulator)
    overrides = {} if sanitize else {"STOREFRONT_UNSAFE_NO_SANITIZE": "true"}
    shop = LiveServer(
        create_app(app_config(sim_server.url, tmp_path, OUTBOX_RELAY_IN_APP=False, **overrides))
    )
    yield shop.url, sanitize
    shop.stop()
    sim_server.stop()


@pytest.mark.parametrize(
    "hostile_shop", [True, False], ids=["sanitized", "sanitizer-off"], indirect=True
)
def test_a_hostile_config_runs_nothing_loads_nothing_foreign_and_moves_nothing(
    hostile_shop, foreign, page: Page, context, screenshot
):
    shop_url, sanitize = hostile_shop
    violations = watch_csp(context, page)
    page.goto(f"{shop_url}/", wait_until="load")
    served = requests.get(f"{shop_url}/", timeout=10).text
    if not sanitize:  # the hostile scripts really are in the page: only the CSP stands
        assert "<script>window.top.__pwned='script'" in served
        # The CSS is a stylesheet of its own now: its "</style>" cannot end anything.
        assert "data-klevu-css" in served and "</style><script>window.top" not in served
    expect(page.locator("[data-klevu-banner]").first).to_be_attached()
    page.locator("[data-klevu-banner]").first.scroll_into_view_if_needed()
    link = page.get_by_text("javascript link").first
    link.click()
    page.wait_for_timeout(1500)  # time for a refresh, a late script or image to happen

    assert page.evaluate("window.__pwned") is None
    assert foreign.hits == [], "a request left for a foreign host"
    assert page.url == f"{shop_url}/"
    header = page.locator(".site-header")
    expect(header).to_be_visible()
    expect(page.locator("#main")).to_be_visible()
    on_top = page.evaluate("""() => { const h = document.querySelector('.site-header');
        const r = h.getBoundingClientRect();
        return h.contains(document.elementFromPoint(r.left + 20, r.top + r.height / 2)); }""")
    assert on_top, "something covers the page"
    screenshot(page, f"security-hostile-{'sanitized' if sanitize else 'sanitizer-off'}")
    if sanitize:  # a safe inline style keeps working: it moved into the banner's stylesheet
        expect(page.locator(".inline-styled")).to_have_css("color", "rgb(1, 2, 3)")
        assert "style-src-attr" not in {v.get("directive") for v in violations}, violations
    if not sanitize:
        blocked = {v.get("directive") for v in violations}
        assert {"script-src-elem", "script-src-attr", "img-src"} <= blocked, violations


# -- two payloads that got past the sanitizer, with the CSP off ----------------------------------
BEACON_HREF = (
    '<a class="kuRECSItemClick" data-klevu-href="javascript:window.top.__pwned=\'klevu-href\'" '
    'href="<%= helper.escapeHTML(data.query.klevuRECSItemList.result[0].url) %>">sneaky</a>'
    '<a data-klevu-href="javascript:window.top.__pwned=\'plain\'" href="/klevu/click?t=x">'
    "plain</a>"
)
COVER_BY_VARIABLE = (
    ".kuRECS-container { --p: fixed; position: var(--p); inset: 0; z-index: 2147483647 }"
)


@pytest.fixture
def sneaky_shop(tmp_path, monkeypatch):
    """A simulator whose banners carry both payloads, and a shop (sanitizer on) using it."""
    template = looks.template("grid")
    monkeypatch.setattr(looks, "template", lambda look: BEACON_HREF + template)
    monkeypatch.setattr(looks, "stylesheet", lambda: COVER_BY_VARIABLE)
    sim_server = LiveServer(create_simulator())
    config = app_config(
        sim_server.url, tmp_path, OUTBOX_RELAY_IN_APP=False, KLEVU_PAGE_BUDGET_MS="5000"
    )
    shop = LiveServer(create_app(config))
    yield shop.url
    shop.stop()
    sim_server.stop()


def test_template_beacon_attributes_and_css_variables_do_nothing_even_without_the_csp(
    sneaky_shop, browser: Browser
):
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{sneaky_shop}/", wait_until="load")
        expect(page.locator("[data-klevu-banner]").first).to_be_attached()
        page.wait_for_timeout(300)  # the beacon has run (DOMContentLoaded)
        hrefs = page.eval_on_selector_all("a", "links => links.map(a => a.href)")
        assert hrefs and not [h for h in hrefs if h.lower().startswith("javascript:")], hrefs
        page.get_by_text("sneaky").first.click()
        page.wait_for_timeout(500)
        assert page.evaluate("window.__pwned") is None
        page.goto(f"{sneaky_shop}/", wait_until="load")
        positions = page.eval_on_selector_all(
            ".kuRECS-container", "els => els.map(e => getComputedStyle(e).position)"
        )
        assert positions and "fixed" not in positions, positions
        on_top = page.evaluate("""() => { const h = document.querySelector('.site-header');
            const r = h.getBoundingClientRect();
            return h.contains(document.elementFromPoint(r.left + 20, r.top + r.height / 2)); }""")
        assert on_top, "a banner covers the page"
    finally:
        context.close()

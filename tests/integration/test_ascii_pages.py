"""The shop's pages are ASCII, over real sockets: the templates write every character beyond
ASCII as a character reference, and so does a Klevu banner (once per answer), so Python
encodes a page to UTF-8 by a copy (docs/performance.md). What the browser reads is the same."""

from __future__ import annotations

import html
import re

from storefront import create_app
from tests.helpers import LiveServer, app_config, browser_session

BANNER_RE = re.compile(r'<section class="klevu-banner.*?</section>', re.DOTALL)


def test_every_shop_page_is_ascii_and_reads_as_before(sim, tmp_path):
    # A euro sign in every Klevu price, as `make run` registers it.
    config = app_config(
        sim.url,
        tmp_path,
        KLEVU_CURRENCY_FORMATS='{"EUR": {"string": "€"}}',
        STOREFRONT_INSPECTOR="false",  # as shoppers see them (the demo's panel quotes data)
        OUTBOX_RELAY_IN_APP=False,
    )
    shop = LiveServer(create_app(config))
    try:
        visitor = browser_session("maya")
        home = visitor.get(f"{shop.url}/", timeout=10)
        product = visitor.get(f"{shop.url}/p/10001", timeout=10)
        visitor.post(
            f"{shop.url}/cart/add",
            data={"product_id": "10001"},
            headers={"Sec-Fetch-Site": "same-origin"},
            timeout=10,
        )
        pages = {
            "home": home,
            "category": visitor.get(f"{shop.url}/c/outdoor-tents", timeout=10),
            "product": product,
            "cart": visitor.get(f"{shop.url}/cart", timeout=10),
            "checkout": visitor.get(f"{shop.url}/checkout", timeout=10),
        }
    finally:
        shop.stop()

    for name, page in pages.items():
        assert page.status_code == 200, name
        assert page.content.isascii(), (name, {c for c in page.text if not c.isascii()})
    banner = BANNER_RE.search(home.text)
    assert banner, "the home page shows its banner"
    assert "&#8364;" in banner[0] and "€" in html.unescape(banner[0])  # Klevu's prices
    assert "&euro;" in home.text  # the shop's own prices
    assert "In stock &middot; Colour" in product.text or "Back soon &middot;" in product.text

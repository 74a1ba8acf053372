"""The demo account the simulator serves, and the settings that point a shop at it.

The shop has no notion of a simulator: like for a live Klevu account, it learns where Klevu
is, the api key, the recs keys per page type and Klaviyo's company id from its settings
(``storefront/config.py``). Whoever starts the two together passes ``shop_environment``:
``make run`` (``storefront/__main__.py``), the tests and the benchmarks.
"""

from __future__ import annotations

API_KEY = "klevu-simulator"
COMPANY_ID = "DemoCo"  # the Klaviyo company the demo personas' exchange ids belong to
DEFAULT_PORT = 5001

# The banners the demo places on each page type, in order (all served by recs_configs.json).
RECS = {
    "HOME": "k-home-picks,k-home-recent",
    "CATEGORY": "k-category-trending",
    "PRODUCT": "k-product-similar",
    "CHECKOUT": "k-checkout-together",
}


def shop_environment(url: str) -> dict[str, str]:
    """Environment variables for a shop that talks to the simulator listening at ``url``."""
    return {
        "KLEVU_SIMULATOR_URL": url,
        "KLEVU_API_KEY": API_KEY,
        "KLAVIYO_COMPANY_ID": COMPANY_ID,
        **{f"KLEVU_RECS_{page_type}": keys for page_type, keys in RECS.items()},
    }

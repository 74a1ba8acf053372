"""``/demo/compare`` over real sockets: each persona's column has the banner of their segments,
made by the same code as the real page (a banner template changed in the simulator shows in
both), and the viewer's own cookies and analytics are left alone."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape

import pytest
import requests

from storefront import create_app
from storefront.simulator import create_app as create_simulator, looks
from storefront.simulator.state import EXTENSION, install
from tests.helpers import LiveServer, app_config, browser_session, persona_segments

COLUMN_RE = re.compile(r'data-testid="compare-column" data-persona="(\w+)"')


def columns(html: str) -> dict[str, str]:
    """persona → the page from its column's start to the next column's (or the page's end)."""
    parts = COLUMN_RE.split(html)[1:]
    return dict(zip(parts[::2], parts[1::2], strict=True))


def banner_title(html: str, recs_key: str) -> str | None:
    found = re.search(rf'data-klevu-banner="{recs_key}"[^>]*aria-label="([^"]*)"', html)
    return unescape(found.group(1)) if found else None


def config_title(sim, recs_key: str, segments: list[str]) -> str:
    url = f"{sim.url}/recommendations/klevu-simulator/settings/{recs_key}"
    answer = requests.get(url, params={"sids": ",".join(segments)}, timeout=5).json()
    return answer["metadata"]["title"]


def test_each_column_has_the_banner_of_its_personas_segments(sim, live_shop):
    personas = ["anonymous", "maya", "oliver", "sam"]
    answer = requests.get(
        f"{live_shop.url}/demo/compare", params={"personas": ",".join(personas)}, timeout=30
    )
    assert answer.status_code == 200
    found = columns(answer.text)
    assert list(found) == personas
    titles = {}
    for key, html in found.items():
        segments = persona_segments(None if key == "anonymous" else key)
        titles[key] = banner_title(html, "k-home-picks")
        assert titles[key] == config_title(sim, "k-home-picks", segments), key
        assert f'data-segments="{",".join(segments)}"' in answer.text
        note = re.search(
            r'data-recs-key="k-home-picks"\s+data-shown="true"\s+data-variant="([^"]*)"', html
        )
        assert note and note.group(1) == (segments[0] if segments else "default"), key
    assert len(set(titles.values())) == len(personas)  # four segments, four banners
    assert "data-klevu-token" not in answer.text  # no impression on a persona's behalf


@pytest.mark.parametrize(
    "query, page_label",
    [
        ({"personas": "priya,sam", "page": "category", "category": "home-kitchen"}, "Category"),
        ({"persona": ["oliver", "maya"], "page": "product", "product": "10004"}, "Product"),
    ],
)
def test_a_category_or_a_product_page_can_be_compared(live_shop, query, page_label):
    answer = requests.get(f"{live_shop.url}/demo/compare", params=query, timeout=30)
    assert answer.status_code == 200
    assert re.search(rf'data-testid="compare-label">{page_label}: ', answer.text)
    assert len(columns(answer.text)) == 2
    assert answer.text.count('data-testid="klevu-banner"') >= 1


@pytest.mark.parametrize(
    "query, message",
    [
        ({"personas": "maya"}, "choose 2 to 4 different personas"),
        ({"personas": "maya,maya"}, "choose 2 to 4 different personas"),
        ({"personas": "anonymous,maya,oliver,sam,priya"}, "choose 2 to 4"),
        ({"personas": "maya,nobody"}, "unknown personas nobody"),
        ({"page": "cart"}, "page is one of home, category, product"),
        ({"page": "category", "category": "nowhere"}, "no category 'nowhere'"),
        ({"page": "product", "product": "0"}, "no product '0'"),
    ],
)
def test_a_comparison_that_cannot_be_made_says_why(live_shop, query, message):
    answer = requests.get(f"{live_shop.url}/demo/compare", params=query, timeout=30)
    assert answer.status_code == 400
    assert message in unescape(answer.text)


def test_the_viewers_own_cookies_and_banners_are_left_alone(sim, live_shop):
    viewer = browser_session("priya")
    viewer.get(f"{live_shop.url}/", timeout=30)
    before = viewer.cookies.get_dict()
    answer = viewer.get(f"{live_shop.url}/demo/compare?personas=maya,oliver", timeout=30)
    assert answer.status_code == 200
    assert not any(
        name.startswith("klevu") or name == "__kla_id" for name in answer.cookies.get_dict()
    )
    assert viewer.cookies.get_dict() == before
    html = viewer.get(f"{live_shop.url}/", timeout=30).text
    assert banner_title(html, "k-home-picks") == config_title(sim, "k-home-picks", ["seg_home"])


@pytest.fixture
def marked_simulator(monkeypatch):
    """A simulator in this process whose grid banners carry a marker the demo's do not."""
    grid = looks.template("grid")
    monkeypatch.setattr(
        looks,
        "template",
        lambda look: (
            '<p class="template-marker">changed template</p>' + grid if look == "grid" else grid
        ),
    )
    simulator = create_simulator()
    install(simulator, replace(simulator.extensions[EXTENSION]["data"]))
    server = LiveServer(simulator)
    yield server
    server.stop()


def test_a_template_change_shows_on_the_real_page_and_in_the_comparison(marked_simulator, tmp_path):
    shop = LiveServer(
        create_app(app_config(marked_simulator.url, tmp_path, OUTBOX_RELAY_IN_APP=False))
    )
    try:
        requests.get(f"{shop.url}/", timeout=30)  # the first banner page starts the engine
        real = browser_session("maya").get(f"{shop.url}/", timeout=30).text
        compared = requests.get(f"{shop.url}/demo/compare?personas=anonymous,maya", timeout=30).text
    finally:
        shop.stop()
    assert real.count("changed template") == 1  # Maya's grid banner
    assert all("changed template" in html for html in columns(compared).values())

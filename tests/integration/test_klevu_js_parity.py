"""Where the shop behaves like Klevu's JavaScript, over real sockets: shop ↔ simulator.

A static-content banner reports its view and click with ``static_content`` (the image
shown, in @klevu/core's fields); a config without ``enabled`` shows nothing; the config request
keeps ``sids``' comma raw, as ``@klevu/core`` sends it.
"""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from storefront import create_app
from storefront.catalog import load_catalog
from tests.helpers import LiveServer, app_config, browser_session, wait_until

TOKEN_RE = r'data-klevu-banner="{key}"[^>]*?data-klevu-token="([^"]+)"'


@pytest.fixture
def shop(sim, tmp_path):
    servers: list[LiveServer] = []

    def start(**env: str) -> str:
        servers.append(LiveServer(create_app(app_config(sim.url, tmp_path, **env))))
        return servers[-1].url

    yield start
    for server in servers:
        server.stop()


def received(sim, event: str) -> list[dict]:
    return [e["payload"] for e in sim.events()["events"] if e["payload"]["event"] == event]


def test_a_static_banners_view_and_click_reach_the_collector_with_static_content(sim, shop):
    url = shop()
    sam = browser_session("sam")  # seg_bargain: the checkout banner is a static sale image
    product = load_catalog().products[0]
    sam.post(f"{url}/cart/add", data={"product_id": product.id}, timeout=10)
    html = sam.get(f"{url}/checkout", timeout=10).text
    banner = re.search(r'<section[^>]*data-klevu-banner="k-checkout-together"[^>]*>', html)
    assert banner and "data-klevu-static" in banner.group(0)
    found = re.search(TOKEN_RE.format(key="k-checkout-together"), html)
    assert found, "the static banner carries no token"
    token = unescape(found.group(1))
    answer = sam.post(
        f"{url}/klevu/events",
        data=json.dumps({"type": "view", "token": token}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Sec-Fetch-Site": "same-origin"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    [link] = re.findall(r'<a class="kuRECS-promoLink" href="(/klevu/click\?[^"]+)"', html)
    followed = sam.get(f"{url}{unescape(link)}", allow_redirects=False, timeout=10)
    assert followed.status_code == 302

    [view] = wait_until(lambda: received(sim, "view_recs_list"), message="no static view")
    [click] = wait_until(lambda: received(sim, "select_recs_list"), message="no static click")
    for event in (view, click):
        assert event["event_data"]["action"] == "STATIC_CONTENT"
        assert event["event_data"]["tags"] == ["recsPageType:CHECKOUT"]
        assert event["event_data"]["segment_id"] == "seg_bargain"
        assert "items" not in event["event_data"]
    # Nobody said which image was shown (no beacon here): the desktop one, as @klevu/core.
    [shown] = view["event_data"]["static_content"]
    assert shown["resolution"] == "desktop" and shown["index"] == 1
    assert shown["banner_image_url"].endswith("-desktop.svg") and shown["banner_alt_tag"]
    assert followed.headers["Location"] == "/"
    assert click["event_data"]["static_content"] == [shown]


def test_a_banner_whose_config_has_no_enabled_is_hidden(sim, shop):
    url = shop(KLEVU_RECS_HOME="k-home-draft,k-home-picks")
    html = browser_session().get(f"{url}/", timeout=10).text
    assert 'data-klevu-banner="k-home-picks"' in html
    assert 'data-klevu-banner="k-home-draft"' not in html
    calls = sim.state()["recent"]
    asked = [c["detail"]["recsKey"] for c in calls if c["kind"] == "config"]
    assert sorted(asked) == ["k-home-draft", "k-home-picks"]  # asked, then not shown
    searches = [c for c in calls if c["kind"] == "search"]
    assert len(searches) == 1  # only the enabled banner searched


def test_the_config_url_carries_sids_with_a_raw_comma(sim, shop):
    url = shop()
    browser_session("oliver").get(f"{url}/", timeout=10)  # two segments: seg_vip, seg_style
    picks = [
        c["detail"]
        for c in sim.state()["recent"]
        if c["kind"] == "config" and c["detail"]["recsKey"] == "k-home-picks"
    ]
    assert picks[-1]["query"] == "sids=seg_vip,seg_style"
    assert picks[-1]["sids"] == ["seg_vip", "seg_style"]

"""Issue 2's four steps over real sockets: the shop ↔ the simulator, no mocks anywhere."""

from __future__ import annotations

import re
from html import unescape

import pytest
import requests

from tests.helpers import browser_session, wait_until

BANNER_RE = re.compile(
    r'<section class="klevu-banner[^"]*"\s+data-klevu-banner="([^"]+)"'
    r'[^>]*?data-klevu-token="([^"]+)"'
)


def config_calls(sim) -> list[dict]:
    return [c["detail"] for c in sim.state()["recent"] if c["kind"] == "config"]


@pytest.mark.parametrize(
    "persona, segment", [(None, None), ("maya", "seg_outdoor"), ("priya", "seg_home")]
)
def test_home_banner_is_the_segment_variant_in_the_initial_html(sim, live_shop, persona, segment):
    html = browser_session(persona).get(f"{live_shop.url}/", timeout=10).text
    picks = [c for c in config_calls(sim) if c["recsKey"] == "k-home-picks"][-1]
    assert picks["sids"] == ([segment] if segment else [])
    assert picks["variant"] == (segment or "default")
    assert 'data-klevu-banner="k-home-picks"' in html
    assert unescape(picks["title"]) in unescape(html)
    # Klevu's CSS, scoped to the banner, is a stylesheet linked from the head.
    stylesheet = re.search(
        r'<link rel="stylesheet" href="([^"]+)" data-klevu-css="k-home-picks">', html
    )
    assert stylesheet
    css = requests.get(f"{live_shop.url}{stylesheet.group(1)}", timeout=10).text
    assert '[data-klevu-banner="k-home-picks"]' in css


def test_click_without_javascript_records_and_redirects(sim, live_shop):
    shopper = browser_session("maya")
    html = shopper.get(f"{live_shop.url}/", timeout=10).text
    links = re.findall(r'href="(/klevu/click\?[^"]+)"', html)
    assert links, "banner links do not go through the click route"
    link = unescape(links[1])
    found = re.search(r"id=(\d+)", link)
    assert found, link
    product_id = found.group(1)
    answer = shopper.get(f"{live_shop.url}{link}", allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/p/{product_id}")

    def select_events():
        return [
            e["payload"]
            for e in sim.events()["events"]
            if e["payload"]["event"] == "select_recs_list"
        ]

    received = wait_until(select_events)
    assert len(received) == 1
    event = received[0]
    assert event["event_apikey"] == "klevu-simulator"
    assert event["user_profile"]["session_id"]
    data = event["event_data"]
    assert data["tags"] == ["recsPageType:HOME"]
    assert data["segment_id"] == "seg_outdoor"
    assert data["list_id"] and data["list_name"] and data["list_logic"]
    [item] = data["items"]
    assert item["item_id"] == product_id and item["index"] == 2 and item["quantity"] == 1
    assert set(item) >= {"item_name", "price", "currency", "item_variant_id", "item_group_id"}


def test_beacon_impression_reaches_the_collector(sim, live_shop):
    shopper = browser_session("oliver")
    html = shopper.get(f"{live_shop.url}/", timeout=10).text
    tokens = dict(BANNER_RE.findall(html))
    answer = shopper.post(
        f"{live_shop.url}/klevu/events",
        data=f'{{"type":"view","token":"{unescape(tokens["k-home-picks"])}"}}',
        headers={"Content-Type": "text/plain;charset=UTF-8", "Sec-Fetch-Site": "same-origin"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text

    def views():
        return [
            e["payload"]
            for e in sim.events()["events"]
            if e["payload"]["event"] == "view_recs_list"
        ]

    [event] = wait_until(views)
    assert event["event_data"]["segment_id"] == "seg_vip"
    assert [i["index"] for i in event["event_data"]["items"]] == list(
        range(1, len(event["event_data"]["items"]) + 1)
    )

"""Control endpoints and the "What Klevu received" dashboard."""

import json

import pytest

from storefront.simulator import API_KEY
from tests.helpers import exchange_id


def demo_traffic(client, exchange_id):
    sid = client.post(
        f"/visitor/public/1.0/{API_KEY}/session", json={"apiKey": API_KEY}
    ).get_json()["sessionId"]
    client.post(
        f"/visitor/public/1.0/{API_KEY}/session",
        json={
            "apiKey": API_KEY,
            "sessionId": sid,
            "sessionInfo": {
                "connectorInfo": [{"connectorType": "klaviyo", "exchangeId": exchange_id("oliver")}]
            },
        },
    )
    client.get(f"/recommendations/{API_KEY}/settings/k-home-picks?sids=seg_vip,seg_style")
    client.post(
        "/cs/v2/search",
        json={
            "context": {"apiKeys": [API_KEY]},
            "recordQueries": [
                {
                    "id": "klevuRECSItemList",
                    "typeOfRequest": "RECS_CUSTOM",
                    "settings": {"limit": 2},
                }
            ],
        },
    )
    client.post(
        "/analytics/collect",
        headers={"X-Storefront-Event-Ids": "ev-1"},
        json=[
            {
                "event": "select_recs_list",
                "event_apikey": API_KEY,
                "user_profile": {"session_id": sid},
                "event_data": {
                    "tags": ["recsPageType:HOME"],
                    "list_id": "spot-home-picks",
                    "list_name": "The premium edit, for our VIPs",
                    "list_logic": "CUSTOM_LOGIC",
                    "segment_id": "seg_vip",
                    "segment_name": "VIP customers",
                    "items": [{"item_id": "10024", "item_name": "Field Jacket", "index": 3}],
                },
            }
        ],
    )


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_state_counts_every_kind_and_lists_recent_calls_newest_first(client):
    demo_traffic(client, exchange_id)
    state = client.get("/_sim/state").get_json()
    assert state["counts"] == {
        "session_new": 1,
        "session_refresh": 0,
        "connector": 1,
        "config": 1,
        "search": 1,
        "collect_requests": 1,
        "events": 1,
        "rejected": 0,
        "faulted": 0,
    }
    assert [c["kind"] for c in state["recent"]] == [
        "collect_requests",
        "search",
        "config",
        "connector",
        "session_new",
    ]
    assert state["sessions"] == 1
    assert state["settings"] == {"segment_ttl": 300, "session_ttl": 3600}


def test_recent_calls_are_bounded():
    from storefront.simulator import create_app

    client = create_app({"SIMULATOR_JOURNAL_SIZE": 3}).test_client()
    for _ in range(5):
        client.get(f"/recommendations/{API_KEY}/settings/k-home-picks")
    state = client.get("/_sim/state").get_json()
    assert len(state["recent"]) == 3 and state["counts"]["config"] == 5


def test_reset_forgets_everything(client):
    demo_traffic(client, exchange_id)
    client.post("/_sim/settings", json={"segment_ttl": 1})
    assert client.post("/_sim/reset").status_code == 200
    state = client.get("/_sim/state").get_json()
    assert set(state["counts"].values()) == {0} and state["recent"] == []
    assert state["settings"]["segment_ttl"] == 300 and state["sessions"] == 0
    assert client.get("/_sim/events").get_json()["events"] == []


@pytest.mark.parametrize(
    "body", [{"segment_ttl": -1}, {"segment_ttl": "5"}, {"ttl": 5}, {"session_ttl": True}, [5]]
)
def test_bad_settings_are_400(client, body):
    assert client.post("/_sim/settings", json=body).status_code == 400
    assert client.get("/_sim/settings").get_json() == {"segment_ttl": 300, "session_ttl": 3600}


def test_dashboard_shows_what_klevu_received(client):
    demo_traffic(client, exchange_id)
    response = client.get("/_sim/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for shown in (
        "What Klevu received",
        "k-home-picks",
        "seg_vip",
        "RECS_CUSTOM",
        "The premium edit, for our VIPs",
        "Field Jacket",
        'value="3"',
        "VIP customers",
        "click",
    ):
        assert shown in page
    assert "http://" not in page and "https://" not in page  # no external assets
    # Script and styles are files (a strict CSP allows no inline ones); the view refreshes.
    assert '<script src="/static/dashboard.js"' in page and "<style" not in page
    assert "<script>" not in page and " style=" not in page and "onclick" not in page
    script = client.get("/static/dashboard.js").get_data(as_text=True)
    assert "setInterval(refresh, REFRESH_MS)" in script and "REFRESH_MS = 2000" in script


def test_dashboard_escapes_what_it_received(client):
    client.post(
        "/analytics/collect",
        json=[
            {
                "event": "view_recs_list",
                "event_apikey": API_KEY,
                "event_data": {"list_id": "<script>alert(1)</script>", "items": []},
            }
        ],
    )
    page = client.get("/_sim/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_unknown_paths_are_json_404(client):
    response = client.get("/nope")
    assert response.status_code == 404 and "error" in response.get_json()


# -- who may post to the control routes -------------------------------------------------------
CONTROL_POSTS = [
    ("/_sim/reset", None),
    ("/_sim/faults", {"search": {"status": 503}}),
    ("/_sim/settings", {"segment_ttl": 1}),
]


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
    ids=["cross-site", "sibling-subdomain", "foreign-origin", "opaque-origin"],
)
@pytest.mark.parametrize("path, body", CONTROL_POSTS)
def test_cross_site_control_posts_are_403_and_change_nothing(client, path, body, headers):
    demo_traffic(client, exchange_id)
    before = client.get("/_sim/state").get_json()
    answer = client.post(
        path, data=json.dumps(body), headers=headers, content_type="text/plain"
    )  # a form-like post needs no preflight
    assert answer.status_code == 403 and "cross-site" in answer.get_json()["error"]
    after = client.get("/_sim/state").get_json()
    assert after["counts"].pop("rejected") == before["counts"].pop("rejected", 0) + 1  # shown
    assert (after["counts"], after["settings"], after["faults"]) == (
        before["counts"],
        before["settings"],
        before["faults"],
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},  # the dashboard's buttons
        {},  # tests, curl
    ],
    ids=["dashboard", "not-a-browser"],
)
@pytest.mark.parametrize("path, body", CONTROL_POSTS)
def test_own_dashboard_and_api_clients_may_post(client, path, body, headers):
    assert client.post(path, json=body, headers=headers).status_code == 200


def test_dashboard_has_the_shops_security_headers_and_nonces(client):
    page = client.get("/_sim/")
    policy = page.headers["Content-Security-Policy"]
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    html = page.get_data(as_text=True)
    # Its styles and script are files; the script tag carries the nonce all the same.
    assert html.count(f'nonce="{nonce}"') == 1 and "<style" not in html
    assert f'<script src="/static/dashboard.js" nonce="{nonce}" defer>' in html


def test_delivery_delay_counts_from_the_first_attempt_and_duplicates_are_marked(
    client, monkeypatch
):
    from tests.helpers import FakeClock

    clock = FakeClock()
    monkeypatch.setattr("storefront.simulator.journal.time.time", clock)
    event = {
        "event": "view_recs_list",
        "event_apikey": API_KEY,
        "event_data": {"list_id": "spot-home-picks", "items": []},
    }
    headers = {"X-Storefront-Event-Ids": "ev-9"}
    client.post("/_sim/faults", json={"collect": {"down": True}})
    assert client.post("/analytics/collect", headers=headers, json=[event]).status_code == 503
    client.post("/_sim/faults", json={"collect": None})
    clock.advance(12.5)
    assert client.post("/analytics/collect", headers=headers, json=[event]).status_code == 200
    clock.advance(1)
    client.post("/analytics/collect", headers=headers, json=[event])
    first, again = client.get("/_sim/events").get_json()["events"]
    assert (first["delay_s"], first["duplicate"]) == (12.5, False)
    assert (again["delay_s"], again["duplicate"]) == (13.5, True)
    page = client.get("/_sim/").get_data(as_text=True)
    assert "+12.5 s" in page and 'data-duplicate="true"' in page

"""Visitor service: sessions, refresh continuity, Klaviyo segments.

docs/klevu-wire-format.md §1.
"""

import pytest

from storefront.simulator import API_KEY
from tests.helpers import exchange_id

URL = f"/visitor/public/1.0/{API_KEY}/session"


def klaviyo(session_id, exchange_id):
    return {
        "apiKey": API_KEY,
        "sessionId": session_id,
        "sessionInfo": {"connectorInfo": [{"connectorType": "klaviyo", "exchangeId": exchange_id}]},
    }


@pytest.mark.parametrize(
    "body",
    [
        {"apiKey": API_KEY},
        {"apiKey": API_KEY, "sessionInfo": {"connectorInfo": []}},  # @klevu/core's first call
    ],
)
def test_first_call_opens_a_session_without_segments(client, body):
    response = client.post(URL, json=body)
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["apiKey"] == API_KEY
    assert isinstance(answer["sessionId"], str) and len(answer["sessionId"]) >= 16
    assert answer["segmentInfo"] == {"segments": [], "ttl": 3600}


def test_each_new_session_gets_its_own_id(client):
    first = client.post(URL, json={"apiKey": API_KEY}).get_json()["sessionId"]
    second = client.post(URL, json={"apiKey": API_KEY}).get_json()["sessionId"]
    assert first != second


def test_reposting_a_live_session_id_refreshes_it(client):
    sid = client.post(URL, json={"apiKey": API_KEY}).get_json()["sessionId"]
    again = client.post(URL, json={"apiKey": API_KEY, "sessionId": sid}).get_json()
    assert again["sessionId"] == sid
    counts = client.get("/_sim/state").get_json()["counts"]
    assert (counts["session_new"], counts["session_refresh"]) == (1, 1)


def test_unknown_session_id_gets_a_new_one(client):
    answer = client.post(URL, json={"apiKey": API_KEY, "sessionId": "not-a-session"}).get_json()
    assert answer["sessionId"] != "not-a-session"


def test_expired_session_id_gets_a_new_one(client):
    client.post("/_sim/settings", json={"session_ttl": 0})
    sid = client.post(URL, json={"apiKey": API_KEY}).get_json()["sessionId"]
    assert (
        client.post(URL, json={"apiKey": API_KEY, "sessionId": sid}).get_json()["sessionId"] != sid
    )


@pytest.mark.parametrize(
    "persona, segments",
    [("maya", ["seg_outdoor"]), ("oliver", ["seg_vip", "seg_style"]), ("lena", [])],
)
def test_klaviyo_connector_answers_the_personas_segments(client, persona, segments):
    sid = client.post(URL, json={"apiKey": API_KEY}).get_json()["sessionId"]
    answer = client.post(URL, json=klaviyo(sid, exchange_id(persona))).get_json()
    assert answer["sessionId"] == sid
    assert answer["segmentInfo"] == {"segments": segments, "ttl": 300}


def test_exchange_id_with_base64_padding_still_matches(client):
    padded = exchange_id("sam").replace(".", "=.")
    answer = client.post(URL, json=klaviyo("x", padded)).get_json()
    assert answer["segmentInfo"]["segments"] == ["seg_bargain"]


def test_unknown_exchange_id_has_no_segments(client):
    unknown = "J8fjcn003Wy6b-3ILNlOyZXabW6dcFwTyeuxrowMers.McN66"
    answer = client.post(URL, json=klaviyo("x", unknown))
    assert answer.get_json()["segmentInfo"]["segments"] == []


def test_segment_ttl_is_settable(client):
    assert client.post("/_sim/settings", json={"segment_ttl": 7}).get_json()["segment_ttl"] == 7
    answer = client.post(URL, json=klaviyo("x", exchange_id("maya"))).get_json()
    assert answer["segmentInfo"]["ttl"] == 7


def test_other_connectors_are_ignored(client):
    body = {
        "apiKey": API_KEY,
        "sessionInfo": {"connectorInfo": [{"connectorType": "shopify", "customerId": "1"}]},
    }
    assert client.post(URL, json=body).get_json()["segmentInfo"] == {"segments": [], "ttl": 3600}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"apiKey": "another-key"},
        {"apiKey": API_KEY, "sessionId": 5},
        {"apiKey": API_KEY, "sessionInfo": {"connectorInfo": {"connectorType": "klaviyo"}}},
        {"apiKey": API_KEY, "sessionInfo": {"connectorInfo": [{"exchangeId": "a.b"}]}},
        {"apiKey": API_KEY, "sessionInfo": {"connectorInfo": [{"connectorType": "klaviyo"}]}},
        {"apiKey": API_KEY, "sessionInfo": "klaviyo"},
    ],
)
def test_malformed_bodies_are_400_json(client, body):
    response = client.post(URL, json=body)
    assert response.status_code == 400
    assert "error" in response.get_json()


def test_body_that_is_not_json_is_400(client):
    response = client.post(URL, data="{nope", content_type="application/json")
    assert response.status_code == 400


def test_unknown_api_key_is_404_json(client):
    response = client.post(
        "/visitor/public/1.0/klevu-other/session", json={"apiKey": "klevu-other"}
    )
    assert response.status_code == 404
    assert "not found" in response.get_json()["error"]


def test_calls_are_counted_by_kind(client):
    sid = client.post(URL, json={"apiKey": API_KEY}).get_json()["sessionId"]
    client.post(URL, json=klaviyo(sid, exchange_id("maya")))
    client.post(URL, json={})
    state = client.get("/_sim/state").get_json()
    assert {k: state["counts"][k] for k in ("session_new", "connector", "rejected")} == {
        "session_new": 1,
        "connector": 1,
        "rejected": 1,
    }
    connector = state["recent"][1]
    assert connector["kind"] == "connector" and connector["detail"]["segments"] == ["seg_outdoor"]
    # the journal does not keep whole exchange ids
    assert exchange_id("maya").split(".")[0] not in str(state)

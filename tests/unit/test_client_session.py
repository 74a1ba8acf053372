"""Step 1's call as the client makes it: the body both Klevu libraries send, and the ttl."""

from __future__ import annotations

import json

import pytest
import responses

from storefront.config import klevu_settings
from storefront.klevu.client import DEFAULT_SESSION_TTL, KlevuClient, parse_session_answer
from storefront.simulator.account import shop_environment

SIM = "http://klevu.test"
SESSION_URL = f"{SIM}/visitor/public/1.0/klevu-simulator/session"


@responses.activate
@pytest.mark.parametrize(
    "session_id, exchange_id, expected",
    [
        (None, None, {"sessionInfo": {"connectorInfo": []}}),
        ("s-1", None, {"sessionId": "s-1", "sessionInfo": {"connectorInfo": []}}),
        (
            "s-1",
            "x.Co",
            {
                "sessionId": "s-1",
                "sessionInfo": {
                    "connectorInfo": [{"connectorType": "klaviyo", "exchangeId": "x.Co"}]
                },
            },
        ),
    ],
)
def test_the_body_always_carries_the_connector_list(session_id, exchange_id, expected):
    """JSv2 and @klevu/core both send ``sessionInfo.connectorInfo``, empty without Klaviyo."""
    call = responses.post(SESSION_URL, json={"sessionId": "s-2"})
    KlevuClient(klevu_settings(shop_environment(SIM))).start_session(session_id, exchange_id)
    assert json.loads(call.calls[0].request.body) == {"apiKey": "klevu-simulator", **expected}


@pytest.mark.parametrize(
    "segment_info, ttl",
    [
        (None, DEFAULT_SESSION_TTL),  # no segmentInfo: JSv2 keeps the session 300 s
        ({"segments": []}, DEFAULT_SESSION_TTL),
        ({"segments": [], "ttl": 60}, 60),
        ({"segments": [], "ttl": None}, 0),  # there but unreadable: ask again next page
        ({"segments": [], "ttl": -5}, 0),
    ],
)
def test_an_answer_without_a_ttl_is_kept_300_seconds(segment_info, ttl):
    body = {"sessionId": "s-1", **({} if segment_info is None else {"segmentInfo": segment_info})}
    assert parse_session_answer(body).ttl == ttl
    assert DEFAULT_SESSION_TTL == 300

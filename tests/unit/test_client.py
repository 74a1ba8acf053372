"""What the client's ``on_call`` hooks see (``responses`` stands in for Klevu); the page
inspector's trace of these calls is tested in tests/unit/test_inspector.py."""

from __future__ import annotations

import logging

import pytest
import requests
import responses

from storefront.config import klevu_settings
from storefront.klevu.client import BreakerOpen, Call, KlevuClient, KlevuError
from storefront.simulator.account import shop_environment

SIM = "http://klevu.test"
CONFIG_URL = f"{SIM}/recommendations/klevu-simulator/settings/k-a"


@responses.activate
def test_every_call_made_is_seen_answered_or_not():
    seen: list[Call] = []
    client = KlevuClient(
        klevu_settings(shop_environment(SIM)), breaker_failures=2, on_call=[seen.append]
    )
    responses.get(CONFIG_URL, json={"metadata": {}})
    responses.get(CONFIG_URL, status=503)
    responses.get(CONFIG_URL, body=requests.ConnectionError("refused"))

    client.recs_config("k-a", {})
    for _ in range(2):
        with pytest.raises(KlevuError):
            client.recs_config("k-a", {})
    with pytest.raises(BreakerOpen):  # not made: nothing to see
        client.recs_config("k-a", {})

    assert [(c.method, c.url, c.status, c.error) for c in seen] == [
        ("GET", CONFIG_URL, 200, None),
        ("GET", CONFIG_URL, 503, None),
        ("GET", CONFIG_URL, None, "ConnectionError"),
    ]
    assert all(c.ms is not None for c in seen[:2]) and seen[2].ms is None


@responses.activate
def test_a_hook_that_fails_does_not_fail_the_call(caplog):
    def broken(call: Call) -> None:
        raise RuntimeError("observer bug")

    seen: list[Call] = []
    client = KlevuClient(klevu_settings(shop_environment(SIM)), on_call=[broken, seen.append])
    responses.get(CONFIG_URL, json={"metadata": {"title": "ok"}})

    with caplog.at_level(logging.ERROR):
        reply = client.recs_config("k-a", {})

    assert reply.body["metadata"] == {"title": "ok"}
    assert len(seen) == 1 and "on_call hook" in caplog.text
